package xds

import (
	"context"
	"slices"

	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/proto"
)

// pinner reports the version a node last rejected for a type, so that it is not sent again.
type pinner interface {
	// pinned returns the rejected version of typeURL for node, if any.
	pinned(node, typeURL string) (string, bool)
}

// guardedCache wraps the snapshot cache with the NACK guard. A SotW client that rejects version
// V answers with its last accepted version, which differs from V, so the plain cache answers V
// again at once and the two loop thousands of times a second. Here a request from a node that
// rejected V of a type is passed to the cache as if the node held V: the cache then answers
// only when a version other than V is published, and the node keeps its last good config.
type guardedCache struct {
	cache.SnapshotCache
	pins pinner
}

// CreateWatch applies the NACK guard and the explicit wildcard before the plain cache.
func (g *guardedCache) CreateWatch(req *cache.Request, sub cache.Subscription, ch chan cache.Response) (func(), error) {
	if v, ok := g.pins.pinned(req.GetNode().GetId(), req.GetTypeUrl()); ok && req.GetVersionInfo() != v {
		req = proto.CloneOf(req)
		req.VersionInfo = v
	}
	// The snapshot cache filters by the request's names; an explicit "*" (the new-style
	// wildcard) would match nothing, so it is sent on as the legacy empty list.
	if slices.Contains(req.GetResourceNames(), "*") {
		req = proto.CloneOf(req)
		req.ResourceNames = nil
	}
	return g.SnapshotCache.CreateWatch(req, sub, ch)
}

// Fetch serves REST polling from the plain cache.
func (g *guardedCache) Fetch(ctx context.Context, req *cache.Request) (cache.Response, error) {
	return g.SnapshotCache.Fetch(ctx, req)
}
