package xds

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"gatehouse/controlplane/admin"
	"gatehouse/controlplane/compile"
	"gatehouse/controlplane/store"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// pipeline is the control plane in one process: store, admin API over real gRPC, compile and
// this server following the store, wired as the gatehouse-controlplane command wires them.
type pipeline struct {
	xds   *Server
	store *store.Store
	ctx   context.Context // authenticates admin calls
	cols  adminv1.CollectionServiceClient
	eps   adminv1.EndpointServiceClient
}

func startPipeline(t testing.TB, runtimeAddr string) *pipeline {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := store.Open(ctx, store.Config{Path: filepath.Join(t.TempDir(), "cp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	token, err := admin.Bootstrap(ctx, st, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	adm, err := admin.New(admin.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.ChainUnaryInterceptor(adm.Interceptor()))
	adm.Register(gs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })

	s := startServer(t)
	compiler, err := compile.NewCompiler(compile.Settings{RuntimeAddresses: []string{runtimeAddr}})
	if err != nil {
		t.Fatal(err)
	}
	revs := st.Subscribe(ctx)
	go func() {
		_ = s.Follow(ctx, revs, func(context.Context) (uint64, Resources, error) {
			snap, err := st.Snapshot()
			if err != nil {
				return 0, nil, err
			}
			out, err := compiler.Compile(snap)
			if err != nil {
				return 0, nil, err
			}
			return snap.Revision, out.Resources(), nil
		})
	}()
	return &pipeline{
		xds: s, store: st,
		ctx:  metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token),
		cols: adminv1.NewCollectionServiceClient(cc),
		eps:  adminv1.NewEndpointServiceClient(cc),
	}
}

func (p *pipeline) createEndpoint(t testing.TB, collID, method, path string) *adminv1.Endpoint {
	t.Helper()
	ep, err := p.eps.CreateEndpoint(p.ctx, &adminv1.CreateEndpointRequest{CollectionId: collID, Endpoint: &adminv1.Endpoint{
		Name: path, Method: method, Path: path, RecipeId: "recipe-" + strings.NewReplacer("/", "-", "{", "", "}", "").Replace(path[1:]), Active: proto.Bool(true),
	}})
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// TestGRPCClientFollowsAdminChanges changes the configuration through the admin API and
// watches a grpc-go xDS client follow it.
func TestGRPCClientFollowsAdminChanges(t *testing.T) {
	b := startBackend(t)
	p := startPipeline(t, b.addr)
	col, err := p.cols.CreateCollection(p.ctx, &adminv1.CreateCollectionRequest{Collection: &adminv1.Collection{
		Name: "Echo", Version: "v1", Path: "echo",
	}})
	if err != nil {
		t.Fatal(err)
	}
	ep := p.createEndpoint(t, col.GetId(), "POST", "/Call")
	cc := dialXDS(t, p.xds.Addr().String(), "grpc-admin")
	eventually(t, 10*time.Second, func() error { return call(cc, "/echo/Call") })
	if b.count("/echo/Call") != 1 {
		t.Fatalf("runtime hits = %d, want 1", b.count("/echo/Call"))
	}

	// A new endpoint becomes callable, a templated one through its safe_regex route.
	p.createEndpoint(t, col.GetId(), "POST", "/Other")
	p.createEndpoint(t, col.GetId(), "POST", "/Items/{id}")
	eventually(t, 10*time.Second, func() error { return call(cc, "/echo/Other") })
	eventually(t, 10*time.Second, func() error { return call(cc, "/echo/Items/42") })
	if err := call(cc, "/echo/Items/42/more"); err == nil {
		t.Error("a parameter matched across segments")
	}

	// Deactivating an endpoint takes its route away.
	if _, err := p.eps.UpdateEndpoint(p.ctx, &adminv1.UpdateEndpointRequest{
		Endpoint:   &adminv1.Endpoint{Id: ep.GetId(), CollectionId: col.GetId(), Active: proto.Bool(false)},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"active"}},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if call(cc, "/echo/Call") == nil {
			return errorf("inactive endpoint still routed")
		}
		return nil
	})
	if err := call(cc, "/echo/Other"); err != nil {
		t.Errorf("other endpoint after the change: %v", err)
	}
	st, err := p.xds.ListNodes(context.Background(), &adminv1.ListNodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetPublishedRevision() != p.store.Revision() {
		t.Errorf("published revision %d, store at %d", st.GetPublishedRevision(), p.store.Revision())
	}
}
