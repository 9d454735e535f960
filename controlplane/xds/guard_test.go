package xds

import (
	"context"
	"sort"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/status"
)

// sotwClient is a raw SotW ADS stream that NACKs or ACKs as a test tells it.
type sotwClient struct {
	t      *testing.T
	stream discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	resps  chan *discovery.DiscoveryResponse
}

func newSotwClient(t *testing.T, s *Server) *sotwClient {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := adsClient(t, s).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := &sotwClient{t: t, stream: stream, resps: make(chan *discovery.DiscoveryResponse, 100)}
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				close(c.resps)
				return
			}
			c.resps <- r
		}
	}()
	return c
}

func (c *sotwClient) send(req *discovery.DiscoveryRequest) {
	c.t.Helper()
	if err := c.stream.Send(req); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next response, or nil when none arrives within d.
func (c *sotwClient) next(d time.Duration) *discovery.DiscoveryResponse {
	select {
	case r := <-c.resps:
		return r
	case <-time.After(d):
		return nil
	}
}

// TestGuardSotW checks the guard with an Envoy-style client that NACKs by sending its last
// accepted version and the rejected response's nonce: the rejected version is not sent again,
// the next version is, and a new connection of the node starts afresh.
func TestGuardSotW(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	f := newFixture(2, "127.0.0.1:8081")
	if err := s.Publish(ctx, 1, f.resources(t)); err != nil {
		t.Fatal(err)
	}
	node := &core.Node{Id: "envoy-1", UserAgentName: "envoy"}
	c := newSotwClient(t, s)
	c.send(&discovery.DiscoveryRequest{Node: node, TypeUrl: TypeAuthzEndpoint, ResourceNames: []string{"*"}})
	r := c.next(5 * time.Second)
	if r == nil || r.GetVersionInfo() != "1" || len(r.GetResources()) != 2 {
		t.Fatalf("explicit wildcard answered with %v", r)
	}
	c.send(&discovery.DiscoveryRequest{TypeUrl: TypeAuthzEndpoint, VersionInfo: "1", ResponseNonce: r.GetNonce(), ResourceNames: []string{"*"}})

	f.endpoints[0].recipe = "v2"
	if err := s.Publish(ctx, 2, f.resources(t)); err != nil {
		t.Fatal(err)
	}
	r = c.next(5 * time.Second)
	if r.GetVersionInfo() != "2" {
		t.Fatalf("got version %q, want 2", r.GetVersionInfo())
	}
	c.send(&discovery.DiscoveryRequest{
		TypeUrl: TypeAuthzEndpoint, VersionInfo: "1", ResponseNonce: r.GetNonce(), ResourceNames: []string{"*"},
		ErrorDetail: &status.Status{Code: 3, Message: "endpoint ep-00000: bad recipe"},
	})
	if again := c.next(time.Second); again != nil {
		t.Fatalf("rejected version sent again: %q", again.GetVersionInfo())
	}
	// Other types are still served while the endpoints are pinned.
	c.send(&discovery.DiscoveryRequest{TypeUrl: resource.ClusterType})
	if r := c.next(5 * time.Second); r.GetTypeUrl() != resource.ClusterType {
		t.Fatalf("got %v, want the clusters", r)
	}

	f.endpoints[0].recipe = "v3"
	if err := s.Publish(ctx, 3, f.resources(t)); err != nil {
		t.Fatal(err)
	}
	r = c.next(5 * time.Second)
	if r.GetTypeUrl() != TypeAuthzEndpoint || r.GetVersionInfo() != "3" {
		t.Fatalf("got %v, want endpoints version 3", r)
	}

	// The node rejects version 3 too, then reconnects: the new stream gets it once more, since
	// a restarted node may hold no config at all.
	c.send(&discovery.DiscoveryRequest{
		TypeUrl: TypeAuthzEndpoint, VersionInfo: "1", ResponseNonce: r.GetNonce(), ResourceNames: []string{"*"},
		ErrorDetail: &status.Status{Code: 3, Message: "still bad"},
	})
	eventually(t, 5*time.Second, func() error {
		if v, _ := s.tracker.pinned("envoy-1", TypeAuthzEndpoint); v != "3" {
			return errorf("version 3 not pinned: %q", v)
		}
		return nil
	})
	_ = c.stream.CloseSend()
	eventually(t, 5*time.Second, func() error {
		if _, pinned := s.tracker.pinned("envoy-1", TypeAuthzEndpoint); pinned {
			return errorf("pin kept after the node disconnected")
		}
		return nil
	})
	c2 := newSotwClient(t, s)
	c2.send(&discovery.DiscoveryRequest{Node: node, TypeUrl: TypeAuthzEndpoint})
	if r := c2.next(5 * time.Second); r.GetVersionInfo() != "3" {
		t.Fatalf("reconnected node got %v, want version 3", r)
	}
}

// TestGatewaysGetNoAPIListener subscribes to all listeners as an Envoy gateway and as another
// client: only the latter gets the proxyless api_listener, which Envoy does not take over LDS.
func TestGatewaysGetNoAPIListener(t *testing.T) {
	s := startServer(t)
	if err := s.Publish(context.Background(), 1, newFixture(1, "127.0.0.1:8081").resources(t)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		node *core.Node
		want []string
	}{
		{"envoy", &core.Node{Id: "gw", UserAgentName: "envoy"}, []string{"gatehouse-public"}},
		{"proxyless", &core.Node{Id: "app", UserAgentName: "gRPC Go"}, []string{"gatehouse-grpc", "gatehouse-public"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newSotwClient(t, s)
			c.send(&discovery.DiscoveryRequest{Node: tt.node, TypeUrl: resource.ListenerType})
			r := c.next(5 * time.Second)
			var got []string
			for _, a := range r.GetResources() {
				var l listenerv3.Listener
				if err := a.UnmarshalTo(&l); err != nil {
					t.Fatal(err)
				}
				got = append(got, l.GetName())
			}
			sort.Strings(got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("listeners (-want +got):\n%s", diff)
			}
		})
	}
}
