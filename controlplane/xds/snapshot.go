package xds

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
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
}

// snapshot implements cache.ResourceSnapshot for any type URL. go-control-plane's own
// cache.Snapshot only indexes the Envoy types it knows, so the authz types would be dropped.
// Versions are per type: a type keeps its version while its content is unchanged, so a SotW
// client is only sent the types a revision changed.
type snapshot struct {
	revision uint64
	types    map[string]*typeSet
	bytes    int
	// routes holds the digests of every route of the route tables, validated.
	routes map[digest]struct{}
}

var _ cache.ResourceSnapshot = (*snapshot)(nil)

// digest is a truncated SHA-256 of a deterministic encoding: a content identity.
type digest [16]byte

// buildSnapshot indexes, hashes and validates res. A type whose content equals the one in prev
// keeps prev's version; a changed type gets the revision as its version. Resources (and routes
// of a route table) whose encoding equals one in prev were validated then and are not again,
// so a one-endpoint change validates one route, not all of them.
func buildSnapshot(rev uint64, res Resources, prev *snapshot) (*snapshot, error) {
	s := &snapshot{revision: rev, types: make(map[string]*typeSet, len(res)), routes: map[digest]struct{}{}}
	h := &hasher{mo: proto.MarshalOptions{Deterministic: true}, prev: prev, next: s}
	var errs []error
	for typeURL, msgs := range res {
		ts := &typeSet{
			items:    make(map[string]types.ResourceWithTTL, len(msgs)),
			plain:    make(map[string]types.Resource, len(msgs)),
			versions: make(map[string]string, len(msgs)),
		}
		var old *typeSet
		if prev != nil {
			old = prev.types[typeURL]
		}
		names := make([]string, 0, len(msgs))
		for _, m := range msgs {
			name := cache.GetResourceName(m)
			if name == "" {
				return nil, fmt.Errorf("%s: resource without a name", typeURL)
			}
			if _, dup := ts.items[name]; dup {
				return nil, fmt.Errorf("%s: duplicate resource %q", typeURL, name)
			}
			if full := m.ProtoReflect().Descriptor().FullName(); typeURL != resource.APITypePrefix+string(full) {
				return nil, fmt.Errorf("%s: resource %q is a %s", typeURL, name, full)
			}
			sum, n, err := h.resource(m)
			if err != nil {
				return nil, fmt.Errorf("%s %q: %w", typeURL, name, err)
			}
			version := hex.EncodeToString(sum[:12])
			if old == nil || old.versions[name] != version {
				if err := h.validate(m); err != nil && len(errs) < 10 {
					errs = append(errs, fmt.Errorf("%s %q: %w", typeURL, name, err))
				}
			}
			ts.items[name] = types.ResourceWithTTL{Resource: m}
			ts.plain[name] = m
			ts.versions[name] = version
			ts.bytes += n
			names = append(names, name)
		}
		// The type hash covers names and per-resource hashes in name order, so it does not
		// depend on the order compile emitted them in.
		slices.Sort(names)
		th := sha256.New()
		for _, n := range names {
			th.Write([]byte(n))
			th.Write([]byte{0})
			th.Write([]byte(ts.versions[n]))
		}
		copy(ts.hash[:], th.Sum(nil))
		ts.version = strconv.FormatUint(rev, 10)
		if old != nil && old.hash == ts.hash {
			ts.version = old.version
		}
		s.types[typeURL] = ts
		s.bytes += ts.bytes
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// hasher encodes resources for their content hashes. A route table is hashed route by route so
// that validation can skip the routes the previous snapshot already had.
type hasher struct {
	mo   proto.MarshalOptions
	buf  []byte
	prev *snapshot
	next *snapshot
	// routeSums are the route digests of the route table being hashed, for validate.
	routeSums []digest
}

func (h *hasher) sum(m proto.Message) (digest, int, error) {
	var err error
	h.buf, err = h.mo.MarshalAppend(h.buf[:0], m)
	if err != nil {
		return digest{}, 0, err
	}
	full := sha256.Sum256(h.buf)
	return digest(full[:16]), len(h.buf), nil
}

// resource returns the content digest and encoded size of m.
func (h *hasher) resource(m proto.Message) (digest, int, error) {
	rc, ok := m.(*route.RouteConfiguration)
	if !ok {
		return h.sum(m)
	}
	shell, routes := splitRoutes(rc)
	sd, total, err := h.sum(shell)
	if err != nil {
		return digest{}, 0, err
	}
	hh := sha256.New()
	hh.Write(sd[:])
	h.routeSums = h.routeSums[:0]
	for _, r := range routes {
		d, n, err := h.sum(r)
		if err != nil {
			return digest{}, 0, err
		}
		total += n
		hh.Write(d[:])
		h.routeSums = append(h.routeSums, d)
		h.next.routes[d] = struct{}{}
	}
	var out digest
	copy(out[:], hh.Sum(nil))
	return out, total, nil
}

// validate runs m's PGV rules; for the route table hashed last, only on routes that are new.
func (h *hasher) validate(m proto.Message) error {
	rc, ok := m.(*route.RouteConfiguration)
	if !ok {
		if v, ok := m.(allValidator); ok {
			return v.ValidateAll()
		}
		return nil
	}
	shell, routes := splitRoutes(rc)
	var errs []error
	if err := shell.ValidateAll(); err != nil {
		errs = append(errs, err)
	}
	for i, r := range routes {
		if h.prev != nil {
			if _, seen := h.prev.routes[h.routeSums[i]]; seen {
				continue
			}
		}
		if err := r.ValidateAll(); err != nil {
			errs = append(errs, fmt.Errorf("route %q: %w", r.GetName(), err))
		}
	}
	return errors.Join(errs...)
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
