// Package cptest starts a real control plane admin gRPC server for gatehousectl's tests: the
// admin services over a bbolt store in a temporary directory, on 127.0.0.1:0, with an admin
// token, stopped when the test ends. StartWithXDS adds the xDS server and its status service,
// wired as the control plane runner wires them. Every server also serves the call log, filled
// from an access-log (ALS) gRPC server of its own.
package cptest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"

	"gatehouse/controlplane/admin"
	"gatehouse/controlplane/calllog"
	"gatehouse/controlplane/compile"
	"gatehouse/controlplane/store"
	"gatehouse/controlplane/xds"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// ControlPlane is a running admin server owned by one test.
type ControlPlane struct {
	// Addr is host:port on 127.0.0.1.
	Addr string
	// Token is an admin token the server accepts.
	Token string
	// Store is the server's store, for checking its revision.
	Store *store.Store
	// XDSAddr is the xDS (ADS) server's host:port on 127.0.0.1; empty unless started with
	// StartWithXDS.
	XDSAddr string
	// ALSAddr is the host:port on 127.0.0.1 of the access-log service that fills the call log
	// the admin server's CallLogService reads.
	ALSAddr string
}

// Start starts an admin server; opts are extra gRPC server options, for example TLS.
func Start(t testing.TB, opts ...grpc.ServerOption) *ControlPlane {
	t.Helper()
	return start(t, false, opts)
}

// StartWithXDS starts an admin server that also serves the xDS StatusService, and an xDS
// server on 127.0.0.1:0 that publishes the compiled store at every revision, as
// gatehouse-controlplane does.
func StartWithXDS(t testing.TB, opts ...grpc.ServerOption) *ControlPlane {
	t.Helper()
	return start(t, true, opts)
}

func start(t testing.TB, withXDS bool, opts []grpc.ServerOption) *ControlPlane {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := store.Open(ctx, store.Config{Path: filepath.Join(t.TempDir(), "gatehouse.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	srv, err := admin.New(admin.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	token, err := admin.NewAdminToken()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Bootstrap(ctx, st, token, time.Now()); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(append(opts, grpc.UnaryInterceptor(srv.Interceptor()))...)
	srv.Register(g)
	cp := &ControlPlane{Token: token, Store: st, ALSAddr: startALS(t, g)}
	if withXDS {
		x := startXDS(t, ctx, st)
		adminv1.RegisterStatusServiceServer(g, x)
		cp.XDSAddr = x.Addr().String()
	}
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	cp.Addr = lis.Addr().String()
	return cp
}

// startXDS serves xDS on 127.0.0.1:0 and follows the store until the test ends.
func startXDS(t testing.TB, ctx context.Context, st *store.Store) *xds.Server {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	x, err := xds.New(ctx, xds.Config{Listener: lis, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- x.Run(runCtx) }()
	revs := st.Subscribe(runCtx)
	followed := make(chan error, 1)
	go func() {
		followed <- x.Follow(runCtx, revs, func(context.Context) (uint64, xds.Resources, error) {
			snap, err := st.Snapshot()
			if err != nil {
				return 0, nil, err
			}
			out, err := compile.Compile(snap, compile.Settings{})
			if err != nil {
				return 0, nil, err
			}
			return snap.Revision, out.Resources(), nil
		})
	}()
	t.Cleanup(func() {
		stop()
		if err := <-ran; err != nil {
			t.Errorf("xds run: %v", err)
		}
		if err := <-followed; err != nil {
			t.Errorf("xds follow: %v", err)
		}
	})
	return x
}

// startALS serves a call log's access-log service on 127.0.0.1:0 and registers its
// CallLogService on admin.
func startALS(t testing.TB, admin *grpc.Server) string {
	t.Helper()
	calls, err := calllog.New(calllog.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	adminv1.RegisterCallLogServiceServer(admin, calllog.NewService(calls))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	calls.Register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	return lis.Addr().String()
}
