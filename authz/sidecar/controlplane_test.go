package sidecar

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"gatehouse/authz/check/checktest"
	"gatehouse/controlplane/xds"
	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

const authzTypePrefix = "type.googleapis.com/gatehouse.authz.v1."

func resources(cfg *authzv1.Config) xds.Resources {
	res := xds.Resources{}
	for _, m := range cfg.GetEndpoints() {
		res[authzTypePrefix+"Endpoint"] = append(res[authzTypePrefix+"Endpoint"], m)
	}
	for _, m := range cfg.GetProfiles() {
		res[authzTypePrefix+"Profile"] = append(res[authzTypePrefix+"Profile"], m)
	}
	for _, m := range cfg.GetPolicies() {
		res[authzTypePrefix+"Policy"] = append(res[authzTypePrefix+"Policy"], m)
	}
	return res
}

// eventually polls cond for up to 10 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The sidecar follows the real control plane xDS server: it becomes ready with the first
// config, applies a revocation, and after a restart serves the cached config while the
// control plane is gone.
func TestRunFollowsControlPlane(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cp, err := xds.New(ctx, xds.Config{Listener: lis, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = cp.Serve(lis) }()
	fx := checktest.New(time.Now())
	if err := cp.Publish(ctx, 42, resources(fx.Config)); err != nil {
		t.Fatal(err)
	}

	dataDir := t.TempDir()
	cfg := Config{DataDir: dataDir, XDSAddr: lis.Addr().String(), NodeID: "authz-test"}
	s := start(t, cfg)
	eventually(t, "ready", func() bool { code, _ := s.get(t, "/readyz"); return code == 200 })
	old := fx.Secret(checktest.TokenSalesOld)
	if code := problemCode(t, s.check(t, "/sales/orders", old)); code != "ok" {
		t.Fatalf("token in grace: %s", code)
	}

	revoked := proto.Clone(fx.Config).(*authzv1.Config)
	a := revoked.Profiles[0].GetApiToken()
	a.Tokens = a.Tokens[:1]
	if err := cp.Publish(ctx, 43, resources(revoked)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "revocation", func() bool { return problemCode(t, s.check(t, "/sales/orders", old)) == "invalid_credentials" })

	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	stopCtx, stopCancel := context.WithTimeout(ctx, 5*time.Second)
	defer stopCancel()
	cp.Stop(stopCtx)

	s = start(t, cfg)
	if code, _ := s.get(t, "/readyz"); code != 200 {
		t.Fatalf("/readyz after restart without control plane = %d, want 200 from the cache", code)
	}
	if code := problemCode(t, s.check(t, "/sales/orders", fx.Secret(checktest.TokenSales))); code != "ok" {
		t.Fatalf("cached config: %s", code)
	}
	if code := problemCode(t, s.check(t, "/sales/orders", old)); code != "invalid_credentials" {
		t.Fatalf("cached config forgot the revocation: %s", code)
	}
}

// A cached config the sidecar refuses at start (here a profile whose cached copy no longer
// builds) must not be declared to the control plane as held: the sidecar fetches the whole
// config and becomes ready, though the control plane still publishes the same versions.
func TestRunRefetchesRefusedCachedConfig(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cp, err := xds.New(ctx, xds.Config{Listener: lis, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = cp.Serve(lis) }()
	t.Cleanup(func() {
		stopCtx, stopCancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer stopCancel()
		cp.Stop(stopCtx)
	})
	fx := checktest.New(time.Now())
	if err := cp.Publish(ctx, 42, resources(fx.Config)); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	cfg := Config{DataDir: dataDir, XDSAddr: lis.Addr().String(), NodeID: "authz-test"}
	s := start(t, cfg)
	eventually(t, "ready", func() bool { code, _ := s.get(t, "/readyz"); return code == 200 })
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	spoilCachedProfile(t, filepath.Join(dataDir, DBFile))

	s = start(t, cfg)
	eventually(t, "ready from the control plane", func() bool { code, _ := s.get(t, "/readyz"); return code == 200 })
	if code := problemCode(t, s.check(t, "/sales/orders", fx.Secret(checktest.TokenSales))); code != "ok" {
		t.Fatalf("config fetched after the refused cache: %s", code)
	}
}

// spoilCachedProfile rewrites one cached profile, keeping its version, so that the cached
// config no longer builds.
func spoilCachedProfile(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	}()
	err = db.Update(func(tx *bolt.Tx) error {
		profiles := tx.Bucket([]byte("config")).Bucket([]byte("profiles"))
		name, val := profiles.Cursor().First()
		if name == nil {
			return errors.New("no cached profile")
		}
		n, size := binary.Uvarint(val)
		version := val[size : size+int(n)]
		p := &authzv1.Profile{}
		if err := proto.Unmarshal(val[size+int(n):], p); err != nil {
			return err
		}
		p.IpAllow = []string{"not-an-address"}
		raw, err := proto.Marshal(p)
		if err != nil {
			return err
		}
		rec := binary.AppendUvarint(nil, uint64(len(version)))
		rec = append(append(rec, version...), raw...)
		return profiles.Put(append([]byte(nil), name...), rec)
	})
	if err != nil {
		t.Fatalf("spoil cached profile: %v", err)
	}
}
