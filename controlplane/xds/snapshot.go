package xds

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/proto"
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
}

var _ cache.ResourceSnapshot = (*snapshot)(nil)

// buildSnapshot indexes and hashes res. A type whose content equals the one in prev keeps prev's
// version; a changed type gets the revision as its version.
func buildSnapshot(rev uint64, res Resources, prev *snapshot) (*snapshot, error) {
	s := &snapshot{revision: rev, types: make(map[string]*typeSet, len(res))}
	mo := proto.MarshalOptions{Deterministic: true}
	var buf []byte
	for typeURL, msgs := range res {
		ts := &typeSet{
			items:    make(map[string]types.ResourceWithTTL, len(msgs)),
			plain:    make(map[string]types.Resource, len(msgs)),
			versions: make(map[string]string, len(msgs)),
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
			var err error
			buf, err = mo.MarshalAppend(buf[:0], m)
			if err != nil {
				return nil, fmt.Errorf("%s: marshal %q: %w", typeURL, name, err)
			}
			sum := sha256.Sum256(buf)
			ts.items[name] = types.ResourceWithTTL{Resource: m}
			ts.plain[name] = m
			ts.versions[name] = hex.EncodeToString(sum[:12])
			ts.bytes += len(buf)
			names = append(names, name)
		}
		// The type hash covers names and per-resource hashes in name order, so it does not
		// depend on the order compile emitted them in.
		slices.Sort(names)
		h := sha256.New()
		for _, n := range names {
			h.Write([]byte(n))
			h.Write([]byte{0})
			h.Write([]byte(ts.versions[n]))
		}
		copy(ts.hash[:], h.Sum(nil))
		ts.version = strconv.FormatUint(rev, 10)
		if prev != nil {
			if old, ok := prev.types[typeURL]; ok && old.hash == ts.hash {
				ts.version = old.version
			}
		}
		s.types[typeURL] = ts
		s.bytes += ts.bytes
	}
	return s, nil
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
