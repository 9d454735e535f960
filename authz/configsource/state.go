package configsource

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"

	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

// Type URLs of the authz resources the control plane serves, one resource per
// endpoint, access profile and access policy.
const (
	EndpointTypeURL = "type.googleapis.com/gatehouse.authz.v1.Endpoint"
	ProfileTypeURL  = "type.googleapis.com/gatehouse.authz.v1.Profile"
	PolicyTypeURL   = "type.googleapis.com/gatehouse.authz.v1.Policy"
)

// kind indexes the three resource types; the order is the subscription order.
type kind int

const (
	kindEndpoint kind = iota
	kindProfile
	kindPolicy
	numKinds
)

func (k kind) typeURL() string {
	switch k {
	case kindEndpoint:
		return EndpointTypeURL
	case kindProfile:
		return ProfileTypeURL
	default:
		return PolicyTypeURL
	}
}

func (k kind) short() string {
	switch k {
	case kindEndpoint:
		return "endpoints"
	case kindProfile:
		return "profiles"
	default:
		return "policies"
	}
}

func kindOf(typeURL string) (kind, bool) {
	switch typeURL {
	case EndpointTypeURL:
		return kindEndpoint, true
	case ProfileTypeURL:
		return kindProfile, true
	case PolicyTypeURL:
		return kindPolicy, true
	}
	return 0, false
}

// named is what every authz resource message is: a proto with a name.
type named interface {
	proto.Message
	GetName() string
}

func (k kind) newMessage() named {
	switch k {
	case kindEndpoint:
		return &authzv1.Endpoint{}
	case kindProfile:
		return &authzv1.Profile{}
	default:
		return &authzv1.Policy{}
	}
}

// item is one resource as received, with the version the control plane gave it.
type item struct {
	version string
	msg     named
	raw     []byte // msg as received, binary proto, for the cache
}

// typeState is everything held for one resource type.
type typeState struct {
	system string          // system_version_info of the last response
	items  map[string]item // by resource name
	// sorted caches the sorted messages for assembly; nil when items changed.
	// Slices handed to Apply are never written again, so configs may share them.
	sorted []named
}

// change is one undo step: the item a name had before a response changed it.
type change struct {
	kind    kind
	name    string
	prev    item
	existed bool
}

// state is the resources of all three types plus an undo log of the changes
// not yet applied, so that a rejected or abandoned update can be rolled back
// to the last good config without copying every resource.
type state struct {
	types   [numKinds]typeState
	undo    []change
	sysUndo [numKinds]*string // system version before the first pending change
	dirty   bool              // pending changes alter the assembled config
}

func newState() *state {
	s := &state{}
	for k := range s.types {
		s.types[k].items = make(map[string]item)
	}
	return s
}

// decoded is a response's resources after decoding, before the state changes.
type decoded struct {
	kind    kind
	system  string
	updates []struct {
		name string
		item item
	}
	removed []string
}

// decode checks and unmarshals every resource of a response first, so that a
// malformed response is refused whole and never changes the state halfway.
func decode(resp *discoveryv3.DeltaDiscoveryResponse) (*decoded, error) {
	k, ok := kindOf(resp.GetTypeUrl())
	if !ok {
		return nil, fmt.Errorf("unexpected resource type %q", resp.GetTypeUrl())
	}
	d := &decoded{kind: k, system: resp.GetSystemVersionInfo(), removed: resp.GetRemovedResources()}
	for _, rn := range resp.GetRemovedResourceNames() {
		d.removed = append(d.removed, rn.GetName())
	}
	for _, r := range resp.GetResources() {
		anyRes := r.GetResource()
		if anyRes == nil {
			return nil, fmt.Errorf("%s %q: resource body missing", k.short(), r.GetName())
		}
		if anyRes.GetTypeUrl() != resp.GetTypeUrl() {
			return nil, fmt.Errorf("%s %q: body has type %q", k.short(), r.GetName(), anyRes.GetTypeUrl())
		}
		msg := k.newMessage()
		if err := anyRes.UnmarshalTo(msg); err != nil {
			return nil, fmt.Errorf("%s %q: decode: %w", k.short(), r.GetName(), err)
		}
		name := r.GetName()
		if name == "" {
			name = msg.GetName()
		}
		if name == "" || msg.GetName() != name {
			return nil, fmt.Errorf("%s %q: resource name %q does not match its body's name %q",
				k.short(), r.GetName(), name, msg.GetName())
		}
		d.updates = append(d.updates, struct {
			name string
			item item
		}{name, item{version: r.GetVersion(), msg: msg, raw: anyRes.GetValue()}})
	}
	return d, nil
}

// apply records a decoded response in the state, logging undo steps.
func (s *state) apply(d *decoded) {
	ts := &s.types[d.kind]
	if ts.system != d.system {
		if s.sysUndo[d.kind] == nil {
			prev := ts.system
			s.sysUndo[d.kind] = &prev
		}
		ts.system = d.system
		s.dirty = true
	}
	for _, u := range d.updates {
		prev, existed := ts.items[u.name]
		if existed && prev.version == u.item.version && u.item.version != "" {
			continue // unchanged: a resend after resume
		}
		s.undo = append(s.undo, change{kind: d.kind, name: u.name, prev: prev, existed: existed})
		ts.items[u.name] = u.item
		ts.sorted = nil
		s.dirty = true
	}
	for _, name := range d.removed {
		prev, existed := ts.items[name]
		if !existed {
			continue
		}
		s.undo = append(s.undo, change{kind: d.kind, name: name, prev: prev, existed: true})
		delete(ts.items, name)
		ts.sorted = nil
		s.dirty = true
	}
}

// commit makes the pending changes part of the good state.
func (s *state) commit() {
	s.undo = s.undo[:0]
	s.sysUndo = [numKinds]*string{}
	s.dirty = false
}

// rollback restores the state to what it was at the last commit.
func (s *state) rollback() {
	for i := len(s.undo) - 1; i >= 0; i-- {
		c := s.undo[i]
		ts := &s.types[c.kind]
		if c.existed {
			ts.items[c.name] = c.prev
		} else {
			delete(ts.items, c.name)
		}
		ts.sorted = nil
	}
	for k, v := range s.sysUndo {
		if v != nil {
			s.types[k].system = *v
		}
	}
	s.commit()
}

// removedVersion stands for "removed" in pending's result.
const removedVersion = "(removed)"

// pending lists the resources changed since the last commit with their new
// versions, removedVersion for a removal.
func (s *state) pending() map[resourceKey]string {
	out := make(map[resourceKey]string, len(s.undo))
	for _, c := range s.undo {
		key := resourceKey{c.kind, c.name}
		if it, ok := s.types[c.kind].items[c.name]; ok {
			out[key] = it.version
		} else {
			out[key] = removedVersion
		}
	}
	return out
}

// resourceKey names one resource across types.
type resourceKey struct {
	kind kind
	name string
}

// version names the assembled config from the per-type system versions.
// The control plane versions a type by the store revision that last changed
// it and resends only changed types, so when the versions are revision
// numbers the config is that of the highest one. Opaque versions are used
// as they are when all types agree, else combined.
func (s *state) version() string {
	var highest uint64
	numeric, same := true, true
	for k := range numKinds {
		v := s.types[k].system
		if v != s.types[0].system {
			same = false
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			numeric = false
		}
		highest = max(highest, n)
	}
	switch {
	case numeric:
		return strconv.FormatUint(highest, 10)
	case same:
		return s.types[0].system
	}
	parts := make([]string, 0, numKinds)
	for k := range numKinds {
		parts = append(parts, k.short()+"="+s.types[k].system)
	}
	return strings.Join(parts, ",")
}

// assemble builds the whole config from the current state, every list sorted
// by name so that equal states give equal configs.
func (s *state) assemble() *authzv1.Config {
	cfg := &authzv1.Config{Version: s.version()}
	cfg.Endpoints = sortedAs[*authzv1.Endpoint](s.sortedOf(kindEndpoint))
	cfg.Profiles = sortedAs[*authzv1.Profile](s.sortedOf(kindProfile))
	cfg.Policies = sortedAs[*authzv1.Policy](s.sortedOf(kindPolicy))
	return cfg
}

func (s *state) sortedOf(k kind) []named {
	ts := &s.types[k]
	if ts.sorted == nil {
		names := make([]string, 0, len(ts.items))
		for name := range ts.items {
			names = append(names, name)
		}
		slices.Sort(names)
		ts.sorted = make([]named, len(names))
		for i, name := range names {
			ts.sorted[i] = ts.items[name].msg
		}
	}
	return ts.sorted
}

func sortedAs[T named](in []named) []T {
	out := make([]T, len(in))
	for i, m := range in {
		out[i] = m.(T)
	}
	return out
}

// versions returns the per-type resource versions, the form of the delta
// protocol's initial_resource_versions.
func (s *state) versions() map[string]map[string]string {
	out := make(map[string]map[string]string, numKinds)
	for k := range numKinds {
		vs := make(map[string]string, len(s.types[k].items))
		for name, it := range s.types[k].items {
			vs[name] = it.version
		}
		out[k.typeURL()] = vs
	}
	return out
}

// seed loads the cache as the good state, so that a restarted sidecar
// resumes the delta stream instead of fetching everything.
func (s *state) seed(c cacheContent) {
	for _, r := range c.records {
		s.types[r.kind].items[r.name] = item{version: r.version, msg: r.msg, raw: r.raw}
	}
	for k := range numKinds {
		s.types[k].sorted = nil
	}
}

// cacheWrite returns the cache changes that make the cache equal the
// current state: all of it when full, else the resources in changed.
func (s *state) cacheWrite(version string, full bool, changed map[resourceKey]string) cacheWrite {
	w := cacheWrite{full: full, version: version}
	put := func(k kind, name string, it item) {
		w.put = append(w.put, cacheRecord{kind: k, name: name, version: it.version, raw: it.raw})
	}
	if full {
		for k := range numKinds {
			for name, it := range s.types[k].items {
				put(k, name, it)
			}
		}
		return w
	}
	for key := range changed {
		if it, ok := s.types[key.kind].items[key.name]; ok {
			put(key.kind, key.name, it)
		} else {
			w.del = append(w.del, key)
		}
	}
	return w
}
