package xds

import (
	"context"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// typeState is what one stream did with one type.
type typeState struct {
	sentNonce     string
	sentVersion   string
	ackedVersion  string
	nackedVersion string
	lastError     string
	lastErrorTime time.Time
}

// streamState is one connected xDS stream.
type streamState struct {
	node  *core.Node
	delta bool
	since time.Time
	types map[string]*typeState
}

func (st *streamState) typ(typeURL string) *typeState {
	ts, ok := st.types[typeURL]
	if !ok {
		ts = &typeState{}
		st.types[typeURL] = ts
	}
	return ts
}

// tracker follows every stream through the go-control-plane callbacks: it records sent, acked
// and rejected versions for the status API, logs and counts NACKs, and holds the per-node pins
// the NACK guard reads.
type tracker struct {
	log     *slog.Logger
	metrics *metrics
	now     func() time.Time

	mu      sync.Mutex
	streams map[int64]*streamState
	// pins is node id -> type URL -> rejected version.
	pins map[string]map[string]string
}

var _ serverv3.Callbacks = (*tracker)(nil)

func newTracker(log *slog.Logger, m *metrics, now func() time.Time) *tracker {
	return &tracker{log: log, metrics: m, now: now, streams: map[int64]*streamState{}, pins: map[string]map[string]string{}}
}

func (t *tracker) pinned(node, typeURL string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	v, ok := t.pins[node][typeURL]
	return v, ok
}

func (t *tracker) open(id int64, delta bool) {
	t.mu.Lock()
	t.streams[id] = &streamState{delta: delta, since: t.now(), types: map[string]*typeState{}}
	n := len(t.streams)
	t.mu.Unlock()
	t.metrics.streams.Set(float64(n))
}

func (t *tracker) closed(id int64, node *core.Node) {
	t.mu.Lock()
	delete(t.streams, id)
	n := len(t.streams)
	// A reconnecting node starts afresh: it may have restarted without any config, and one more
	// answer per connection is not a loop.
	if still := t.connected(node.GetId()); !still {
		delete(t.pins, node.GetId())
	}
	t.mu.Unlock()
	t.metrics.streams.Set(float64(n))
}

// connected reports whether another stream of the node is open; t.mu is held.
func (t *tracker) connected(nodeID string) bool {
	for _, st := range t.streams {
		if st.node.GetId() == nodeID {
			return true
		}
	}
	return false
}

// request records an ACK or NACK. nonce names the response it answers; only the answer to the
// last response sent counts, as the server ignores stale nonces too.
func (t *tracker) request(id int64, node *core.Node, typeURL, version, nonce string, errDetail string, nack bool) {
	t.mu.Lock()
	st, ok := t.streams[id]
	if !ok {
		t.mu.Unlock()
		return
	}
	if st.node == nil && node != nil {
		st.node = node
	}
	nodeID := st.node.GetId()
	ts := st.typ(typeURL)
	if nonce == "" || nonce != ts.sentNonce {
		t.mu.Unlock()
		return
	}
	if !nack {
		ts.ackedVersion = version
		delete(t.pins[nodeID], typeURL)
		t.mu.Unlock()
		return
	}
	rejected := ts.sentVersion
	ts.nackedVersion = rejected
	ts.lastError = errDetail
	ts.lastErrorTime = t.now()
	if t.pins[nodeID] == nil {
		t.pins[nodeID] = map[string]string{}
	}
	t.pins[nodeID][typeURL] = rejected
	t.mu.Unlock()

	t.metrics.nacks.WithLabelValues(t.metrics.typeLabel(typeURL)).Inc()
	t.log.Warn("xds client rejected config",
		"node", nodeID, "cluster", st.node.GetCluster(), "type", typeURL,
		"version", rejected, "error", errDetail)
}

func (t *tracker) sent(id int64, typeURL, version, nonce string) {
	t.mu.Lock()
	if st, ok := t.streams[id]; ok {
		ts := st.typ(typeURL)
		ts.sentNonce = nonce
		ts.sentVersion = version
	}
	t.mu.Unlock()
	t.metrics.pushes.WithLabelValues(t.metrics.typeLabel(typeURL)).Inc()
}

// OnStreamOpen registers a SotW stream.
func (t *tracker) OnStreamOpen(_ context.Context, id int64, _ string) error {
	t.open(id, false)
	return nil
}

// OnStreamClosed forgets a SotW stream.
func (t *tracker) OnStreamClosed(id int64, node *core.Node) { t.closed(id, node) }

// OnStreamRequest records ACKs and NACKs of a SotW stream. It runs before the request reaches
// the cache, so a NACK's pin is in place when the guard looks.
func (t *tracker) OnStreamRequest(id int64, req *discovery.DiscoveryRequest) error {
	t.request(id, req.GetNode(), req.GetTypeUrl(), req.GetVersionInfo(), req.GetResponseNonce(),
		req.GetErrorDetail().GetMessage(), req.GetErrorDetail() != nil)
	return nil
}

// OnStreamResponse records what a SotW stream was sent.
func (t *tracker) OnStreamResponse(_ context.Context, id int64, req *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
	t.sent(id, req.GetTypeUrl(), resp.GetVersionInfo(), resp.GetNonce())
}

// OnDeltaStreamOpen registers a delta stream.
func (t *tracker) OnDeltaStreamOpen(_ context.Context, id int64, _ string) error {
	t.open(id, true)
	return nil
}

// OnDeltaStreamClosed forgets a delta stream.
func (t *tracker) OnDeltaStreamClosed(id int64, node *core.Node) { t.closed(id, node) }

// OnStreamDeltaRequest records ACKs and NACKs of a delta stream. Delta needs no pin: the server
// remembers the resource versions it sent and does not send them again.
func (t *tracker) OnStreamDeltaRequest(id int64, req *discovery.DeltaDiscoveryRequest) error {
	t.mu.Lock()
	var version string
	if st, ok := t.streams[id]; ok {
		version = st.typ(req.GetTypeUrl()).sentVersion
	}
	t.mu.Unlock()
	t.request(id, req.GetNode(), req.GetTypeUrl(), version, req.GetResponseNonce(),
		req.GetErrorDetail().GetMessage(), req.GetErrorDetail() != nil)
	return nil
}

// OnStreamDeltaResponse records what a delta stream was sent.
func (t *tracker) OnStreamDeltaResponse(id int64, req *discovery.DeltaDiscoveryRequest, resp *discovery.DeltaDiscoveryResponse) {
	t.sent(id, req.GetTypeUrl(), resp.GetSystemVersionInfo(), resp.GetNonce())
}

// OnFetchRequest accepts REST polling.
func (t *tracker) OnFetchRequest(context.Context, *discovery.DiscoveryRequest) error { return nil }

// OnFetchResponse ignores REST polling.
func (t *tracker) OnFetchResponse(*discovery.DiscoveryRequest, *discovery.DiscoveryResponse) {}

// nodes returns the status of every stream ordered by node id, then connect time.
func (t *tracker) nodes() []*adminv1.Node {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*adminv1.Node, 0, len(t.streams))
	for _, st := range t.streams {
		n := &adminv1.Node{
			Id:             st.node.GetId(),
			Cluster:        st.node.GetCluster(),
			UserAgent:      strings.TrimSpace(st.node.GetUserAgentName() + " " + st.node.GetUserAgentVersion()),
			Delta:          st.delta,
			ConnectedSince: timestamppb.New(st.since),
		}
		for typeURL, ts := range st.types {
			nt := &adminv1.NodeType{
				TypeUrl:       typeURL,
				AckedVersion:  ts.ackedVersion,
				NackedVersion: ts.nackedVersion,
				LastError:     ts.lastError,
				SentVersion:   ts.sentVersion,
			}
			if !ts.lastErrorTime.IsZero() {
				nt.LastErrorTime = timestamppb.New(ts.lastErrorTime)
			}
			n.Types = append(n.Types, nt)
		}
		sort.Slice(n.Types, func(i, j int) bool { return n.Types[i].TypeUrl < n.Types[j].TypeUrl })
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Id != out[j].Id {
			return out[i].Id < out[j].Id
		}
		return out[i].ConnectedSince.AsTime().Before(out[j].ConnectedSince.AsTime())
	})
	return out
}
