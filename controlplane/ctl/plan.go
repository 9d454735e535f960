package ctl

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// Op is what an action does to a resource.
type Op int

// The operations of a plan.
const (
	OpCreate Op = iota + 1
	OpUpdate
	OpDelete
)

// String names the operation as plans print it.
func (o Op) String() string {
	switch o {
	case OpCreate:
		return "create"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
	}
	return fmt.Sprintf("op(%d)", int(o))
}

// Kind is a resource kind that apply manages.
type Kind string

// The kinds apply manages.
const (
	KindPolicy     Kind = "policy"
	KindCollection Kind = "collection"
	KindEndpoint   Kind = "endpoint"
	KindClient     Kind = "client"
	KindProfile    Kind = "access profile"
)

// Action is one change of a plan.
type Action struct {
	Op   Op
	Kind Kind
	// Parent is the name of the collection of an endpoint or the client of a profile.
	Parent string
	// Name is the resource's name.
	Name string
	// Fields are the changed fields of an update: the update mask.
	Fields []string

	// desired is the resource to create or the new values of an update, without ids of
	// references (they are resolved when the action runs, after earlier creates).
	desired proto.Message
	// profile carries a profile's references by name.
	profile *ProfileSpec
	// current is the stored resource of an update or delete: its id and etag.
	current proto.Message
}

// String renders the action as apply prints it.
func (a Action) String() string {
	sign := map[Op]string{OpCreate: "+", OpUpdate: "~", OpDelete: "-"}[a.Op]
	name := a.Name
	if a.Parent != "" {
		name = a.Parent + "/" + a.Name
	}
	s := fmt.Sprintf("%s %s %s %q", sign, a.Op, a.Kind, name)
	if len(a.Fields) > 0 {
		s += " (" + strings.Join(a.Fields, ", ") + ")"
	}
	return s
}

// Plan is the ordered list of actions that brings the control plane to a Spec.
type Plan []Action

// Print writes one line per action, or "no changes".
func (p Plan) Print(w io.Writer) {
	if len(p) == 0 {
		fmt.Fprintln(w, "no changes")
		return
	}
	for _, a := range p {
		fmt.Fprintln(w, a)
	}
}

// Fields compared and sent per kind: what an apply file sets. Everything else is server-set or
// a reference handled by name.
var (
	policyFields     = []string{"description", "rate_limit", "quota"}
	collectionFields = []string{"version", "path", "description"}
	endpointFields   = []string{"method", "path", "recipe_id", "active", "timeout", "description"}
	clientFields     = []string{"description", "email", "active"}
	profileFields    = []string{"collection_ids", "api_token", "jwt", "policy_id", "ip_allow", "ip_deny", "active"}
)

// defaultTimeout is the endpoint timeout the server uses when none is set.
const defaultTimeout = 30 * time.Second

// MakePlan compares the desired spec with the current state. Resources are matched by name
// (endpoints and profiles within their parent). Resources absent from the spec are deleted only
// with prune. Actions are ordered so that references exist before they are used: creates and
// updates of policies, collections, endpoints, clients and profiles, then deletes in reverse.
// Endpoints are deleted before endpoints are written, so a method and path can move between
// endpoints in one apply.
func MakePlan(spec *Spec, cur *State, prune bool) (Plan, error) {
	if err := checkRefs(spec, cur, prune); err != nil {
		return nil, err
	}
	var (
		writes, epDeletes, deletes []Action
	)
	// Policies.
	for _, p := range spec.Policies {
		old, ok := findName(cur.Policies, p.GetName())
		writes = appendWrite(writes, KindPolicy, "", p.GetName(), p, old, ok, diff(p, old, policyFields, normPolicy))
	}
	// Collections and their endpoints.
	for _, cs := range spec.Collections {
		c := cs.Collection
		old, ok := findName(cur.Collections, c.GetName())
		writes = appendWrite(writes, KindCollection, "", c.GetName(), c, old, ok, diff(c, old, collectionFields, nil))
		var curEps []*adminv1.Endpoint
		if ok {
			curEps = cur.Endpoints[old.GetId()]
		}
		for _, e := range cs.Endpoints {
			oldE, okE := findName(curEps, e.GetName())
			writes = appendWrite(writes, KindEndpoint, c.GetName(), e.GetName(), e, oldE, okE, diff(e, oldE, endpointFields, normEndpoint))
		}
		if prune {
			for _, oldE := range byName(curEps) {
				if !slices.ContainsFunc(cs.Endpoints, func(e *adminv1.Endpoint) bool { return e.GetName() == oldE.GetName() }) {
					epDeletes = append(epDeletes, Action{Op: OpDelete, Kind: KindEndpoint, Parent: c.GetName(), Name: oldE.GetName(), current: oldE})
				}
			}
		}
	}
	// Clients and their profiles.
	colNames, polNames := idNames(cur.Collections), idNames(cur.Policies)
	for _, cs := range spec.Clients {
		c := cs.Client
		old, ok := findName(cur.Clients, c.GetName())
		writes = appendWrite(writes, KindClient, "", c.GetName(), c, old, ok, diff(c, old, clientFields, normClient))
		var curPs []*adminv1.AccessProfile
		if ok {
			curPs = cur.Profiles[old.GetId()]
		}
		for _, ps := range cs.Profiles {
			want := profileByName(ps)
			oldP, okP := findName(curPs, ps.Profile.GetName())
			var have *adminv1.AccessProfile
			if okP {
				have = profileWithNames(oldP, colNames, polNames)
			}
			fields := diff(want, have, profileFields, normProfile)
			n := len(writes)
			writes = appendWrite(writes, KindProfile, c.GetName(), ps.Profile.GetName(), ps.Profile, oldP, okP, fields)
			if len(writes) > n {
				writes[n].profile = ps
			}
		}
		if prune {
			for _, oldP := range byName(curPs) {
				if !slices.ContainsFunc(cs.Profiles, func(p *ProfileSpec) bool { return p.Profile.GetName() == oldP.GetName() }) {
					deletes = append(deletes, Action{Op: OpDelete, Kind: KindProfile, Parent: c.GetName(), Name: oldP.GetName(), current: oldP})
				}
			}
		}
	}
	if prune {
		for _, old := range byName(cur.Clients) {
			if !slices.ContainsFunc(spec.Clients, func(c *ClientSpec) bool { return c.Client.GetName() == old.GetName() }) {
				deletes = append(deletes, Action{Op: OpDelete, Kind: KindClient, Name: old.GetName(), current: old})
			}
		}
		for _, old := range byName(cur.Collections) {
			if !slices.ContainsFunc(spec.Collections, func(c *CollectionSpec) bool { return c.Collection.GetName() == old.GetName() }) {
				deletes = append(deletes, Action{Op: OpDelete, Kind: KindCollection, Name: old.GetName(), current: old})
			}
		}
		for _, old := range byName(cur.Policies) {
			if !slices.ContainsFunc(spec.Policies, func(p *adminv1.AccessPolicy) bool { return p.GetName() == old.GetName() }) {
				deletes = append(deletes, Action{Op: OpDelete, Kind: KindPolicy, Name: old.GetName(), current: old})
			}
		}
	}
	plan := append(Plan(writes), epDeletes...)
	sortWrites(plan)
	return append(plan, deletes...), nil
}

// sortWrites orders writes by kind dependency, keeping the file's order within a kind.
func sortWrites(p Plan) {
	rank := func(a Action) int {
		switch {
		case a.Kind == KindPolicy:
			return 0
		case a.Kind == KindCollection:
			return 1
		case a.Kind == KindEndpoint && a.Op == OpDelete:
			return 2
		case a.Kind == KindEndpoint:
			return 3
		case a.Kind == KindClient:
			return 4
		}
		return 5
	}
	sort.SliceStable(p, func(i, j int) bool { return rank(p[i]) < rank(p[j]) })
}

func appendWrite(out []Action, kind Kind, parent, name string, want, old proto.Message, exists bool, fields []string) []Action {
	if !exists {
		return append(out, Action{Op: OpCreate, Kind: kind, Parent: parent, Name: name, desired: want})
	}
	if len(fields) == 0 {
		return out
	}
	return append(out, Action{Op: OpUpdate, Kind: kind, Parent: parent, Name: name, Fields: fields, desired: want, current: old})
}

// checkRefs makes sure every collection and policy a profile names exists after the apply.
func checkRefs(spec *Spec, cur *State, prune bool) error {
	cols, pols := map[string]bool{}, map[string]bool{}
	for _, c := range spec.Collections {
		cols[c.Collection.GetName()] = true
	}
	for _, p := range spec.Policies {
		pols[p.GetName()] = true
	}
	if !prune {
		for _, c := range cur.Collections {
			cols[c.GetName()] = true
		}
		for _, p := range cur.Policies {
			pols[p.GetName()] = true
		}
	}
	for _, c := range spec.Clients {
		for _, p := range c.Profiles {
			where := fmt.Sprintf("access profile %q of client %q", p.Profile.GetName(), c.Client.GetName())
			for _, col := range p.Collections {
				if !cols[col] {
					return fmt.Errorf("%s: collection %q is not defined", where, col)
				}
			}
			if p.Policy != "" && !pols[p.Policy] {
				return fmt.Errorf("%s: policy %q is not defined", where, p.Policy)
			}
		}
	}
	return nil
}

func findName[T named](items []T, name string) (T, bool) {
	for _, it := range items {
		if it.GetName() == name {
			return it, true
		}
	}
	var zero T
	return zero, false
}

func idNames[T named](items []T) map[string]string {
	m := make(map[string]string, len(items))
	for _, it := range items {
		m[it.GetId()] = it.GetName()
	}
	return m
}

// profileByName is the desired profile in comparable form: collection_ids and policy_id hold
// names, sorted, because the file names them and their order carries no meaning.
func profileByName(ps *ProfileSpec) *adminv1.AccessProfile {
	p := proto.Clone(ps.Profile).(*adminv1.AccessProfile)
	p.CollectionIds = slices.Sorted(slices.Values(ps.Collections))
	p.PolicyId = ps.Policy
	return p
}

// profileWithNames is a stored profile in the same comparable form as profileByName.
func profileWithNames(p *adminv1.AccessProfile, cols, pols map[string]string) *adminv1.AccessProfile {
	p = proto.Clone(p).(*adminv1.AccessProfile)
	names := make([]string, 0, len(p.GetCollectionIds()))
	for _, id := range p.GetCollectionIds() {
		if n, ok := cols[id]; ok {
			id = n
		}
		names = append(names, id)
	}
	sort.Strings(names)
	p.CollectionIds = names
	if n, ok := pols[p.GetPolicyId()]; ok {
		p.PolicyId = n
	}
	return p
}

// diff returns the fields of want that differ from have after both are normalised. A nil have
// means the resource does not exist.
func diff[T proto.Message](want, have T, fields []string, norm func(T)) []string {
	if !have.ProtoReflect().IsValid() {
		return nil
	}
	w, h := proto.Clone(want).(T), proto.Clone(have).(T)
	if norm != nil {
		norm(w)
		norm(h)
	}
	wr, hr := w.ProtoReflect(), h.ProtoReflect()
	var out []string
	for _, f := range fields {
		fd := wr.Descriptor().Fields().ByName(protoreflect.Name(f))
		if !fieldEqual(wr, hr, fd) {
			out = append(out, f)
		}
	}
	return out
}

func fieldEqual(a, b protoreflect.Message, fd protoreflect.FieldDescriptor) bool {
	if a.Has(fd) != b.Has(fd) {
		return false
	}
	va, vb := a.Get(fd), b.Get(fd)
	switch {
	case fd.IsList():
		la, lb := va.List(), vb.List()
		if la.Len() != lb.Len() {
			return false
		}
		for i := range la.Len() {
			if !la.Get(i).Equal(lb.Get(i)) {
				return false
			}
		}
		return true
	case fd.Message() != nil:
		return proto.Equal(va.Message().Interface(), vb.Message().Interface())
	}
	return va.Equal(vb)
}

// Normalisers fill server defaults on both sides so that leaving a field out of the file and
// the server's stored default compare equal.
func normPolicy(p *adminv1.AccessPolicy) {
	if r := p.GetRateLimit(); r != nil && r.GetBurst() == r.GetRequests() {
		r.Burst = 0
	}
}

func normEndpoint(e *adminv1.Endpoint) {
	if e.Active == nil {
		e.Active = proto.Bool(false)
	}
	if e.Timeout == nil {
		e.Timeout = durationpb.New(defaultTimeout)
	}
}

func normClient(c *adminv1.Client) {
	if c.Active == nil {
		c.Active = proto.Bool(true)
	}
}

func normProfile(p *adminv1.AccessProfile) {
	if p.Active == nil {
		p.Active = proto.Bool(true)
	}
	// The server stores CIDRs in canonical form ("10.1.2.3/8" is 10.0.0.0/8, an address is /32).
	p.IpAllow, p.IpDeny = canonicalCIDRs(p.IpAllow), canonicalCIDRs(p.IpDeny)
	if j := p.GetJwt(); j != nil {
		// The server keeps only the secret's hash, so that is what is compared.
		if s := j.GetHmacSecret(); s != "" {
			j.HmacSecretSha256 = secretSHA256(s)
			j.Key = nil
		}
		if j.GetClaim() == "sub" {
			j.Claim = ""
		}
		// The default claim value is the profile's own id.
		if j.GetClaimValue() == p.GetId() {
			j.ClaimValue = ""
		}
	}
}

func canonicalCIDRs(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s
		if pfx, err := netip.ParsePrefix(s); err == nil {
			out[i] = pfx.Masked().String()
		} else if a, err := netip.ParseAddr(s); err == nil {
			out[i] = netip.PrefixFrom(a, a.BitLen()).String()
		}
	}
	return out
}
