package xds

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"maps"
	"slices"
	"strconv"
	"sync"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Resources is one compile output: the resources of every served type, keyed by type URL
// ("type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
// "type.googleapis.com/gatehouse.authz.v1.Profile", ...). Every message must have a name
// (GetName, or ClusterName for a ClusterLoadAssignment) that is unique within its type.
type Resources map[string][]proto.Message

// typeSet is the resources of one type in a snapshot.
type typeSet struct {
	version  string
	hash     [sha256.Size]byte
	items    map[string]types.ResourceWithTTL
	plain    map[string]types.Resource
	versions map[string]string // resource name -> content hash, for delta
	bytes    int
	// byMsg and routes keep the encodings of this publish for the next, by message.
	byMsg  map[proto.Message]*encodedResource
	routes map[*route.Route]*encodedRoute
}

// snapshot implements cache.ResourceSnapshot for any type URL. go-control-plane's own
// cache.Snapshot only indexes the Envoy types it knows, so the authz types would be dropped.
// Versions are per type: a type keeps its version while its content is unchanged, so a SotW
// client is only sent the types a revision changed.
//
// Each resource is encoded once, here, and served as that encoding (see encoded): without it
// every response on every stream marshals the route table again. The encodings are kept by
// message for the next snapshot (see encodedResource).
type snapshot struct {
	revision uint64
	types    map[string]*typeSet
	bytes    int
	// routes holds a hash of the encoding of every route of the route tables, all validated.
	routes map[uint64]struct{}
	// seed is the seed of the route hashes; it passes from snapshot to snapshot.
	seed maphash.Seed
}

var _ cache.ResourceSnapshot = (*snapshot)(nil)

// buildSnapshot indexes, encodes, hashes and validates res. A type whose content equals the one
// in prev keeps prev's version; a changed type gets the revision as its version. Resources (and
// routes of a route table) whose encoding equals one in prev were validated then and are not
// again, so a one-endpoint change validates one route, not all of them.
func buildSnapshot(rev uint64, res Resources, prev *snapshot) (*snapshot, error) {
	s := &snapshot{revision: rev, types: make(map[string]*typeSet, len(res)), routes: map[uint64]struct{}{}}
	s.seed = maphash.MakeSeed()
	var old *snapshot
	if prev != nil {
		s.seed, old = prev.seed, prev
	}
	// Types are independent: encode them in parallel, the route table beside the 10,000 authz
	// endpoints.
	type result struct {
		ts     *typeSet
		routes []uint64
		err    error
	}
	results := make(map[string]*result, len(res))
	var wg sync.WaitGroup
	for typeURL, msgs := range res {
		r := &result{}
		results[typeURL] = r
		wg.Go(func() { r.ts, r.routes, r.err = buildType(rev, typeURL, msgs, old, s.seed) })
	}
	wg.Wait()
	var errs []error
	for _, typeURL := range slices.Sorted(maps.Keys(results)) {
		r := results[typeURL]
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		s.types[typeURL] = r.ts
		s.bytes += r.ts.bytes
		for _, h := range r.routes {
			s.routes[h] = struct{}{}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// buildType encodes, hashes and validates the resources of one type. It returns the hashes of
// the routes of a route table type. A message that was in prev's type is served as it was
// then, and a route table reuses the encodings of the routes it shares with prev's.
func buildType(rev uint64, typeURL string, msgs []proto.Message, prev *snapshot, seed maphash.Seed) (*typeSet, []uint64, error) {
	ts := &typeSet{
		items:    make(map[string]types.ResourceWithTTL, len(msgs)),
		plain:    make(map[string]types.Resource, len(msgs)),
		versions: make(map[string]string, len(msgs)),
		byMsg:    make(map[proto.Message]*encodedResource, len(msgs)),
	}
	var old *typeSet
	var known map[uint64]struct{}
	if prev != nil {
		old, known = prev.types[typeURL], prev.routes
	}
	var errs []error
	var routes []uint64
	for _, m := range msgs {
		name := cache.GetResourceName(m)
		if name == "" {
			return nil, nil, fmt.Errorf("%s: resource without a name", typeURL)
		}
		if _, dup := ts.items[name]; dup {
			return nil, nil, fmt.Errorf("%s: duplicate resource %q", typeURL, name)
		}
		if full := m.ProtoReflect().Descriptor().FullName(); typeURL != resource.APITypePrefix+string(full) {
			return nil, nil, fmt.Errorf("%s: resource %q is a %s", typeURL, name, full)
		}
		var e *encodedResource
		if old != nil {
			e = old.byMsg[m]
		}
		if e != nil {
			// Served and validated before, and compile's output is read-only.
			if rc, ok := m.(*route.RouteConfiguration); ok {
				keepRoutes(ts, old, rc)
			}
		} else {
			var err error
			if e, err = encodeResource(ts, old, m, seed, known); err != nil {
				if len(errs) < 10 {
					errs = append(errs, fmt.Errorf("%s %q: %w", typeURL, name, err))
				}
				// Keep the placeholder so a duplicate name is still caught.
				ts.items[name] = types.ResourceWithTTL{}
				continue
			}
		}
		routes = append(routes, e.routes...)
		ts.byMsg[m] = e
		ts.items[name] = types.ResourceWithTTL{Resource: e.raw}
		ts.plain[name] = e.raw
		ts.versions[name] = e.version
		ts.bytes += len(e.b)
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	ts.hash = typeHash(ts.versions)
	ts.version = strconv.FormatUint(rev, 10)
	if old != nil && old.hash == ts.hash {
		ts.version = old.version
	}
	return ts, routes, nil
}

// encodeResource encodes, hashes and validates a message not served before. A resource whose
// encoding equals the one of the same name in old was validated then and is not again; in a
// route table only routes not known from old are validated.
func encodeResource(ts, old *typeSet, m proto.Message, seed maphash.Seed, known map[uint64]struct{}) (*encodedResource, error) {
	rc, ok := m.(*route.RouteConfiguration)
	if !ok {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("marshal: %w", err)
		}
		sum := sha256.Sum256(b)
		version := hex.EncodeToString(sum[:12])
		if old == nil || old.versions[cache.GetResourceName(m)] != version {
			if v, ok := m.(allValidator); ok {
				if err := v.ValidateAll(); err != nil {
					return nil, err
				}
			}
		}
		return &encodedResource{b: b, raw: encoded(b), version: version}, nil
	}
	var prevRoutes map[*route.Route]*encodedRoute
	if old != nil {
		prevRoutes = old.routes
	}
	if ts.routes == nil {
		ts.routes = map[*route.Route]*encodedRoute{}
	}
	b, version, rs, err := encodeRouteTable(rc, seed, prevRoutes, ts.routes)
	if err != nil {
		return nil, err
	}
	shell, msgs := splitRoutes(rc)
	var errs []error
	if err := shell.ValidateAll(); err != nil {
		errs = append(errs, err)
	}
	hashes := make([]uint64, len(rs))
	for i, r := range rs {
		hashes[i] = r.h
		if !r.fresh {
			continue
		}
		if _, seen := known[r.h]; seen {
			continue
		}
		if err := msgs[i].ValidateAll(); err != nil {
			errs = append(errs, fmt.Errorf("route %q: %w", msgs[i].GetName(), err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// Validated now: the next publish treats them as known.
	for _, r := range rs {
		r.fresh = false
	}
	return &encodedResource{b: b, raw: encoded(b), version: version, routes: hashes}, nil
}

// keepRoutes carries the route encodings of a route table served unchanged into ts.
func keepRoutes(ts, old *typeSet, rc *route.RouteConfiguration) {
	if ts.routes == nil {
		ts.routes = make(map[*route.Route]*encodedRoute, len(old.routes))
	}
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			if e, ok := old.routes[r]; ok {
				ts.routes[r] = e
			}
		}
	}
}

// without returns s less one resource, sharing everything else. The changed type keeps prev's
// version while its content equals prev's. A snapshot without that resource is s itself.
func (s *snapshot) without(typeURL, name string, prev *snapshot) *snapshot {
	ts, ok := s.types[typeURL]
	if !ok {
		return s
	}
	if _, ok := ts.items[name]; !ok {
		return s
	}
	out := *s
	out.types = maps.Clone(s.types)
	nts := &typeSet{
		items:    maps.Clone(ts.items),
		plain:    maps.Clone(ts.plain),
		versions: maps.Clone(ts.versions),
		bytes:    ts.bytes,
	}
	delete(nts.items, name)
	delete(nts.plain, name)
	delete(nts.versions, name)
	out.bytes -= ts.bytes
	nts.bytes = 0
	for _, m := range nts.items {
		nts.bytes += proto.Size(m.Resource)
	}
	out.bytes += nts.bytes
	nts.hash = typeHash(nts.versions)
	nts.version = strconv.FormatUint(s.revision, 10)
	if prev != nil {
		if old, ok := prev.types[typeURL]; ok && old.hash == nts.hash {
			nts.version = old.version
		}
	}
	out.types[typeURL] = nts
	return &out
}

// typeHash covers names and per-resource versions in name order, so it does not depend on the
// order compile emitted the resources in.
func typeHash(versions map[string]string) [sha256.Size]byte {
	th := sha256.New()
	for _, n := range slices.Sorted(maps.Keys(versions)) {
		th.Write([]byte(n))
		th.Write([]byte{0})
		th.Write([]byte(versions[n]))
	}
	var out [sha256.Size]byte
	copy(out[:], th.Sum(nil))
	return out
}

// encoded serves a resource as its encoding. go-control-plane marshals each resource of each
// response with proto.Marshal and wraps the bytes in an Any of the request's type URL; an Empty
// whose unknown fields hold the encoding marshals to exactly those bytes, so the work is a copy.
func encoded(b []byte) proto.Message {
	m := &emptypb.Empty{}
	m.ProtoReflect().SetUnknown(b)
	return m
}

// eachRoute calls fn with the encoding of every route of an encoded RouteConfiguration, in
// order. A nested message is encoded exactly as it is alone, so these are the routes' own
// encodings, found without marshaling them again.
func eachRoute(rc []byte, fn func([]byte)) error {
	return eachField(rc, vhostsField, func(vh []byte) error {
		return eachField(vh, routesField, func(r []byte) error { fn(r); return nil })
	})
}

// eachField calls fn with the payload of every length-delimited field num of an encoding.
func eachField(b []byte, num protowire.Number, fn func([]byte) error) error {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return fmt.Errorf("decode route table: %w", protowire.ParseError(l))
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return fmt.Errorf("decode route table: %w", protowire.ParseError(l))
			}
			if err := fn(v); err != nil {
				return err
			}
			b = b[l:]
			continue
		}
		l = protowire.ConsumeFieldValue(n, typ, b)
		if l < 0 {
			return fmt.Errorf("decode route table: %w", protowire.ParseError(l))
		}
		b = b[l:]
	}
	return nil
}

// splitRoutes returns a copy of rc whose virtual hosts have no routes, and the routes in order.
// The copy shares every other field with rc, which stays unmodified.
func splitRoutes(rc *route.RouteConfiguration) (*route.RouteConfiguration, []*route.Route) {
	shell := shallowCopy(rc, "virtual_hosts")
	var routes []*route.Route
	for _, vh := range rc.GetVirtualHosts() {
		shell.VirtualHosts = append(shell.VirtualHosts, shallowCopy(vh, "routes"))
		routes = append(routes, vh.GetRoutes()...)
	}
	return shell, routes
}

// shallowCopy copies the populated fields of m except skip, sharing their values.
func shallowCopy[M proto.Message](m M, skip protoreflect.Name) M {
	src := m.ProtoReflect()
	dst := src.New()
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Name() != skip {
			dst.Set(fd, v)
		}
		return true
	})
	return dst.Interface().(M)
}

// GetVersion returns the version of a type; "" for a type the snapshot does not serve.
func (s *snapshot) GetVersion(typeURL string) string {
	if ts, ok := s.types[typeURL]; ok {
		return ts.version
	}
	return ""
}

// GetResourcesAndTTL returns the resources of a type. The map must not be modified.
func (s *snapshot) GetResourcesAndTTL(typeURL string) map[string]types.ResourceWithTTL {
	if ts, ok := s.types[typeURL]; ok {
		return ts.items
	}
	return nil
}

// GetResources returns the resources of a type. The map must not be modified; it is built once
// because delta watches ask for it on every publish.
func (s *snapshot) GetResources(typeURL string) map[string]types.Resource {
	if ts, ok := s.types[typeURL]; ok {
		return ts.plain
	}
	return nil
}

// ConstructVersionMap is a no-op: the per-resource versions are computed when the snapshot is
// built.
func (s *snapshot) ConstructVersionMap() error { return nil }

// GetVersionMap returns resource name -> content hash for a type.
func (s *snapshot) GetVersionMap(typeURL string) map[string]string {
	if ts, ok := s.types[typeURL]; ok {
		return ts.versions
	}
	return nil
}

// versions returns type URL -> version.
func (s *snapshot) versionsByType() map[string]string {
	out := make(map[string]string, len(s.types))
	for t, ts := range s.types {
		out[t] = ts.version
	}
	return out
}
