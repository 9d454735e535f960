package xds

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	xdsgrpc "google.golang.org/grpc/xds"
	"google.golang.org/protobuf/types/known/emptypb"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// dialXDS connects a grpc-go channel to xds:///gatehouse-grpc through its own xDS client,
// bootstrapped in process against addr.
func dialXDS(t testing.TB, addr, nodeID string) *grpc.ClientConn {
	t.Helper()
	bootstrap := fmt.Sprintf(`{
		"xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
		"node": {"id": %q, "cluster": "proxyless-test"}
	}`, addr, nodeID)
	builder, err := xdsgrpc.NewXDSResolverWithConfigForTesting([]byte(bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient("xds:///"+GRPCListener, grpc.WithResolvers(builder),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// call invokes method the way a proxyless caller of a gateway route does. grpc-go matches
// routes against outgoing metadata, which has no ":method": callers set it to match the
// ":method" header matchers; the transport drops pseudo-headers before sending.
func call(cc *grpc.ClientConn, method string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, ":method", "POST")
	return cc.Invoke(ctx, method, &emptypb.Empty{}, &emptypb.Empty{})
}

func TestGRPCClientFollowsChanges(t *testing.T) {
	s := startServer(t)
	b1, b2 := startBackend(t), startBackend(t)
	f := newFixture(3, b1.addr)
	f.endpoints[2].active = false
	ctx := context.Background()
	if err := s.Publish(ctx, 1, f.resources(t)); err != nil {
		t.Fatal(err)
	}
	cc := dialXDS(t, s.Addr().String(), "grpc-follow")

	eventually(t, 10*time.Second, func() error { return call(cc, "/echo/Call0") })
	if got := b1.count("/echo/Call0"); got != 1 {
		t.Fatalf("runtime 1 served /echo/Call0 %d times, want 1", got)
	}
	if err := call(cc, "/echo/Call2"); err == nil {
		t.Fatal("call to the inactive endpoint succeeded; it has no route")
	}

	// Activate an endpoint and move the runtime: the client follows both.
	f.endpoints[2].active = true
	f.runtime = []string{b2.addr}
	if err := s.Publish(ctx, 2, f.resources(t)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if err := call(cc, "/echo/Call2"); err != nil {
			return err
		}
		if b2.count("/echo/Call2") == 0 {
			return errorf("runtime 2 not reached yet")
		}
		return nil
	})

	// Deactivating removes the route.
	f.endpoints[0].active = false
	if err := s.Publish(ctx, 3, f.resources(t)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if call(cc, "/echo/Call0") == nil {
			return errorf("deactivated endpoint still routed")
		}
		return nil
	})

	st, err := s.ListNodes(ctx, &adminv1.ListNodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetPublishedRevision() != 3 || len(st.GetNodes()) != 1 || st.GetNodes()[0].GetId() != "grpc-follow" {
		t.Fatalf("status = %v", st)
	}
	for _, nt := range st.GetNodes()[0].GetTypes() {
		if nt.GetAckedVersion() != st.GetPublishedVersions()[nt.GetTypeUrl()] {
			t.Errorf("%s: acked %q, published %q", nt.GetTypeUrl(), nt.GetAckedVersion(), st.GetPublishedVersions()[nt.GetTypeUrl()])
		}
	}
}

func TestNACKGuard(t *testing.T) {
	s := startServer(t)
	b := startBackend(t)
	f := newFixture(2, b.addr)
	ctx := context.Background()
	if err := s.Publish(ctx, 1, f.resources(t)); err != nil {
		t.Fatal(err)
	}
	cc := dialXDS(t, s.Addr().String(), "grpc-nack")
	eventually(t, 10*time.Second, func() error { return call(cc, "/echo/Call1") })

	nodeType := func(typeURL string) *adminv1.NodeType {
		st, err := s.ListNodes(ctx, &adminv1.ListNodesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range st.GetNodes() {
			for _, nt := range n.GetTypes() {
				if nt.GetTypeUrl() == typeURL {
					return nt
				}
			}
		}
		return nil
	}
	pushes := func() float64 { return counterValue(t, s.metrics.pushes.WithLabelValues("Cluster")) }
	nacks := func() float64 { return counterValue(t, s.metrics.nacks.WithLabelValues("Cluster")) }
	pushesBefore, nacksBefore := pushes(), nacks()

	// MAGLEV is valid Envoy config that grpc-go refuses.
	f.lbPolicy = cluster.Cluster_MAGLEV
	if err := s.Publish(ctx, 2, f.resources(t)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error {
		if nt := nodeType(resource.ClusterType); nt.GetNackedVersion() != "2" {
			return errorf("no NACK of version 2 yet: %v", nt)
		}
		return nil
	})
	// Without the guard the cache answers the NACK with the same version at once, thousands of
	// times a second. Give a loop time to show.
	time.Sleep(time.Second)
	if got := nacks() - nacksBefore; got != 1 {
		t.Errorf("NACKs of the cluster = %v, want exactly 1", got)
	}
	if got := pushes() - pushesBefore; got != 1 {
		t.Errorf("cluster responses after the bad publish = %v, want exactly 1", got)
	}
	nt := nodeType(resource.ClusterType)
	if !strings.Contains(strings.ToLower(nt.GetLastError()), "maglev") || nt.GetLastErrorTime() == nil || nt.GetAckedVersion() != "1" {
		t.Errorf("status after NACK = %v", nt)
	}
	// The node keeps its last good config.
	if err := call(cc, "/echo/Call1"); err != nil {
		t.Errorf("call after NACK: %v", err)
	}

	// A fixed config is sent and accepted.
	f.lbPolicy = cluster.Cluster_ROUND_ROBIN
	if err := s.Publish(ctx, 3, f.resources(t)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error {
		if nt := nodeType(resource.ClusterType); nt.GetAckedVersion() != "3" {
			return errorf("version 3 not acked: %v", nt)
		}
		return nil
	})
	if err := call(cc, "/echo/Call1"); err != nil {
		t.Errorf("call after recovery: %v", err)
	}
	if got := nacks() - nacksBefore; got != 1 {
		t.Errorf("NACKs after recovery = %v, want still 1", got)
	}
}
