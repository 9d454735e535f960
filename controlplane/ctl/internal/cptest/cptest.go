// Package cptest starts a real control plane admin gRPC server for gatehousectl's tests: the
// admin services over a bbolt store in a temporary directory, on 127.0.0.1:0, with an admin
// token, stopped when the test ends.
package cptest

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"

	"gatehouse/controlplane/admin"
	"gatehouse/controlplane/store"
)

// ControlPlane is a running admin server owned by one test.
type ControlPlane struct {
	// Addr is host:port on 127.0.0.1.
	Addr string
	// Token is an admin token the server accepts.
	Token string
	// Store is the server's store, for checking its revision.
	Store *store.Store
}

// Start starts an admin server; opts are extra gRPC server options, for example TLS.
func Start(t testing.TB, opts ...grpc.ServerOption) *ControlPlane {
	t.Helper()
	ctx := context.Background()
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
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	return &ControlPlane{Addr: lis.Addr().String(), Token: token, Store: st}
}
