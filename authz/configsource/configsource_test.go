package configsource

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

// These feature tests run the Source against a real go-control-plane ADS
// server on 127.0.0.1:0 (see controlplane_test.go).

func TestFirstConfigWaitsForAllThreeTypes(t *testing.T) {
	cp := startControlPlane(t)
	cp.set(baseConfig())
	// Hold back the first Policy request so endpoints and profiles reach the
	// client while policies have not answered yet.
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	cp.hold(func(req *discoveryv3.DeltaDiscoveryRequest) {
		if req.GetTypeUrl() == PolicyTypeURL && req.GetResponseNonce() == "" {
			<-release
		}
	})

	app := &applier{}
	c := startClient(t, cp.addr, nil, app)
	eventually(t, "endpoints and profiles sent", func() bool {
		sent := map[string]bool{}
		for _, r := range cp.responses() {
			sent[r.GetTypeUrl()] = true
		}
		return sent[EndpointTypeURL] && sent[ProfileTypeURL]
	})
	time.Sleep(100 * time.Millisecond) // room for a wrong early Apply to happen
	if calls, _ := app.snapshot(); len(calls) != 0 {
		t.Fatalf("Apply called %d times before policies answered; first config: %v", len(calls), calls[0])
	}

	once.Do(func() { close(release) })
	eventually(t, "first Apply", func() bool { calls, _ := app.snapshot(); return len(calls) > 0 })
	calls, _ := app.snapshot()
	if diff := cmp.Diff(baseConfig(), calls[0], protocmp.Transform()); diff != "" {
		t.Errorf("first applied config (-want +got):\n%s", diff)
	}
	eventually(t, "ACKs of all three types", func() bool {
		acked := map[string]bool{}
		for _, r := range cp.requests() {
			if r.GetResponseNonce() != "" && r.GetErrorDetail() == nil {
				acked[r.GetTypeUrl()] = true
			}
		}
		return len(acked) == 3
	})
	if got := c.metric(t, "gatehouse_authz_config_updates_applied_total"); got != 1 {
		t.Errorf("updates_applied_total = %v, want 1", got)
	}
	if got := c.metric(t, "gatehouse_authz_config_connected"); got != 1 {
		t.Errorf("connected = %v, want 1", got)
	}
}

func TestUpdatesReachApplyAsDeltas(t *testing.T) {
	cp := startControlPlane(t)
	cfg := baseConfig()
	cp.set(cfg)
	app := &applier{}
	c := startClient(t, cp.addr, nil, app)
	eventually(t, "first Apply", func() bool { calls, _ := app.snapshot(); return len(calls) == 1 })

	steps := []struct {
		name       string
		change     func(*authzv1.Config)
		wantType   string
		wantNames  []string // resources in the one response sent
		wantRemove []string
	}{
		{
			name:      "one profile changes",
			change:    func(c *authzv1.Config) { c.Profiles[1].ClientActive = false },
			wantType:  ProfileTypeURL,
			wantNames: []string{"p2"},
		},
		{
			name:       "one endpoint is removed",
			change:     func(c *authzv1.Config) { c.Endpoints = c.Endpoints[:1] },
			wantType:   EndpointTypeURL,
			wantRemove: []string{"e2"},
		},
		{
			name: "one policy is added",
			change: func(c *authzv1.Config) {
				c.Policies = append(c.Policies, policy("pol2", 5))
				c.Profiles[0].PolicyId = "pol2"
			},
			wantType:  PolicyTypeURL,
			wantNames: []string{"pol2"},
		},
	}
	for i, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			cfg = proto.Clone(cfg).(*authzv1.Config)
			step.change(cfg)
			cfg.Version = string(rune('2' + i))
			sentBefore := len(cp.responses())
			callsBefore, _ := app.snapshot()
			cp.set(cfg)
			eventually(t, "Apply of "+cfg.GetVersion(), func() bool {
				_, cur := app.snapshot()
				return cur.GetVersion() == cfg.GetVersion()
			})
			calls, cur := app.snapshot()
			if diff := cmp.Diff(cfg, cur, protocmp.Transform()); diff != "" {
				t.Errorf("applied config (-want +got):\n%s", diff)
			}
			if n := len(calls) - len(callsBefore); n != 1 {
				t.Errorf("update applied in %d Apply calls, want 1", n)
			}
			var got []string
			var removed []string
			for _, r := range cp.responses()[sentBefore:] {
				if r.GetTypeUrl() != step.wantType {
					continue
				}
				for _, res := range r.GetResources() {
					got = append(got, res.GetName())
				}
				removed = append(removed, r.GetRemovedResources()...)
			}
			if diff := cmp.Diff(step.wantNames, got); diff != "" {
				t.Errorf("resources sent (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(step.wantRemove, removed); diff != "" {
				t.Errorf("removals sent (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{cfg.GetVersion()}, c.versionInfo(t)); diff != "" {
				t.Errorf("version_info (-want +got):\n%s", diff)
			}
			if c.metric(t, "gatehouse_authz_config_last_update_timestamp_seconds") <= 0 {
				t.Error("last_update_timestamp_seconds not set")
			}
		})
	}
}

func TestRefusedUpdateIsNACKedAndLastGoodStays(t *testing.T) {
	cp := startControlPlane(t)
	good := baseConfig()
	cp.set(good)
	app := &applier{reject: func(cfg *authzv1.Config) error {
		for _, p := range cfg.GetProfiles() {
			if strings.HasPrefix(p.GetName(), "bad") {
				return &refusal{name: p.GetName()}
			}
		}
		return nil
	}}
	db := openDB(t, newDBPath(t))
	t.Cleanup(func() { _ = db.Close() })
	c := startClient(t, cp.addr, db, app)
	eventually(t, "first Apply", func() bool { _, cur := app.snapshot(); return cur != nil })

	bad := proto.Clone(good).(*authzv1.Config)
	bad.Version = "2"
	bad.Profiles = append(bad.Profiles, profile("bad1", "mallory"))
	cp.set(bad)
	eventually(t, "NACK", func() bool { return len(cp.nacks()) == 1 })
	nack := cp.nacks()[0]
	if nack.GetTypeUrl() != ProfileTypeURL || !strings.Contains(nack.GetErrorDetail().GetMessage(), "bad1") {
		t.Errorf("NACK = %v, want a Profile NACK naming bad1", nack)
	}
	calls, cur := app.snapshot()
	if len(calls) != 2 {
		t.Errorf("Apply called %d times, want 2 (good, refused)", len(calls))
	}
	if diff := cmp.Diff(good, cur, protocmp.Transform()); diff != "" {
		t.Errorf("config in effect after the refusal (-want +got):\n%s", diff)
	}
	cachedCfg, err := c.src.LoadCached(context.Background())
	if err != nil {
		t.Fatalf("LoadCached: %v", err)
	}
	if diff := cmp.Diff(good, cachedCfg, protocmp.Transform()); diff != "" {
		t.Errorf("cached config after the refusal (-want +got):\n%s", diff)
	}
	if got := c.metric(t, "gatehouse_authz_config_nacks_total"); got != 1 {
		t.Errorf("nacks_total = %v, want 1", got)
	}

	// A later update of another resource builds on the last good config: the
	// refused profile, still on the server, is not applied with it.
	next := proto.Clone(bad).(*authzv1.Config)
	next.Version = "3"
	next.Endpoints[0].Active = false
	cp.set(next)
	want := proto.Clone(good).(*authzv1.Config)
	want.Version = "3"
	want.Endpoints[0].Active = false
	eventually(t, "Apply of 3", func() bool { _, cur := app.snapshot(); return cur.GetVersion() == "3" })
	calls, cur = app.snapshot()
	if diff := cmp.Diff(want, cur, protocmp.Transform()); diff != "" {
		t.Errorf("config in effect after the next update (-want +got):\n%s", diff)
	}

	// The ACK of 3 ends the stream that was out of step since the NACK; the
	// next one resumes from the last good versions, and the server sends the
	// refused profile again. So does a reconnect after the control plane
	// restarts. Each resend is NACKed without another Apply.
	profileNACKs := func() int {
		n := 0
		for _, r := range cp.nacks() {
			if r.GetTypeUrl() == ProfileTypeURL {
				n++
			}
		}
		return n
	}
	eventually(t, "second NACK of the profile", func() bool { return profileNACKs() >= 2 })
	cp.stop()
	before := profileNACKs()
	cp.restart()
	eventually(t, "NACK of the profile after the restart", func() bool { return profileNACKs() > before })
	if again, _ := app.snapshot(); len(again) != len(calls) {
		t.Errorf("Apply called %d times after the resends, want %d (no new call)", len(again), len(calls))
	}
}

// TestValidChangeRefusedWithBadOneGoesLiveAfterFix publishes a revocation
// (a profile disabled) and a bad profile in one update. The update is
// refused as a whole; once the bad profile is fixed, the revocation is live
// even though the server had already sent it.
func TestValidChangeRefusedWithBadOneGoesLiveAfterFix(t *testing.T) {
	cp := startControlPlane(t)
	good := baseConfig()
	cp.set(good)
	app := &applier{reject: func(cfg *authzv1.Config) error {
		for _, p := range cfg.GetProfiles() {
			if strings.HasPrefix(p.GetName(), "bad") && p.GetClientId() == "mallory" {
				return &refusal{name: p.GetName()}
			}
		}
		return nil
	}}
	c := startClient(t, cp.addr, nil, app)
	eventually(t, "first Apply", func() bool { _, cur := app.snapshot(); return cur != nil })

	bundled := proto.Clone(good).(*authzv1.Config)
	bundled.Version = "2"
	bundled.Profiles[1].Active = false // the revocation
	bundled.Profiles = append(bundled.Profiles, profile("bad1", "mallory"))
	cp.set(bundled)
	eventually(t, "NACK", func() bool { return len(cp.nacks()) >= 1 })
	if _, cur := app.snapshot(); !profileNamed(cur, "p2").GetActive() {
		t.Fatal("the revocation went live with the refused profile")
	}

	fixed := proto.Clone(bundled).(*authzv1.Config)
	fixed.Version = "3"
	fixed.Profiles[2] = profile("bad1", "initech")
	cp.set(fixed)
	eventually(t, "the revocation and the fixed profile to be live", func() bool {
		_, cur := app.snapshot()
		return len(cur.GetProfiles()) == 3 && !profileNamed(cur, "p2").GetActive()
	})
	// Apply's order is by name.
	want := proto.Clone(fixed).(*authzv1.Config)
	want.Profiles = []*authzv1.Profile{fixed.Profiles[2], fixed.Profiles[0], fixed.Profiles[1]}
	_, cur := app.snapshot()
	if diff := cmp.Diff(want, cur, protocmp.Transform()); diff != "" {
		t.Errorf("config in effect after the fix (-want +got):\n%s", diff)
	}
	if got := c.metric(t, "gatehouse_authz_config_nacks_total"); got < 1 {
		t.Errorf("nacks_total = %v, want at least 1", got)
	}
}

func profileNamed(cfg *authzv1.Config, name string) *authzv1.Profile {
	for _, p := range cfg.GetProfiles() {
		if p.GetName() == name {
			return p
		}
	}
	return nil
}

type refusal struct{ name string }

func (r *refusal) Error() string { return "profile " + r.name + " refers to an unknown client" }

func TestControlPlaneAwayKeepsConfigAndReconnects(t *testing.T) {
	cp := startControlPlane(t)
	cp.set(baseConfig())
	app := &applier{}
	c := startClient(t, cp.addr, nil, app)
	eventually(t, "first Apply", func() bool { _, cur := app.snapshot(); return cur != nil })

	cp.stop()
	eventually(t, "connected gauge to drop", func() bool {
		return c.metric(t, "gatehouse_authz_config_connected") == 0
	})
	if calls, cur := app.snapshot(); len(calls) != 1 || cur.GetVersion() != "1" {
		t.Errorf("after the control plane left: %d Apply calls, version %q; want 1 call, version 1", len(calls), cur.GetVersion())
	}

	v2 := baseConfig()
	v2.Version = "2"
	v2.Profiles[0].Active = false
	cp.set(v2)
	reqsBefore, respsBefore := len(cp.requests()), len(cp.responses())
	cp.restart()
	eventually(t, "Apply of 2 after reconnecting", func() bool { _, cur := app.snapshot(); return cur.GetVersion() == "2" })
	_, cur := app.snapshot()
	if diff := cmp.Diff(v2, cur, protocmp.Transform()); diff != "" {
		t.Errorf("config after reconnecting (-want +got):\n%s", diff)
	}
	// The new stream resumed: it declared what the client had, and only the
	// changed profile came back.
	resumed := map[string][]string{}
	for _, r := range cp.requests()[reqsBefore:] {
		if r.GetResponseNonce() == "" {
			for name := range r.GetInitialResourceVersions() {
				resumed[r.GetTypeUrl()] = append(resumed[r.GetTypeUrl()], name)
			}
		}
	}
	if len(resumed[EndpointTypeURL]) != 2 || len(resumed[ProfileTypeURL]) != 2 || len(resumed[PolicyTypeURL]) != 1 {
		t.Errorf("initial_resource_versions on reconnect = %v, want 2 endpoints, 2 profiles, 1 policy", resumed)
	}
	var sent []string
	for _, r := range cp.responses()[respsBefore:] {
		for _, res := range r.GetResources() {
			sent = append(sent, res.GetName())
		}
	}
	if diff := cmp.Diff([]string{"p1"}, sent); diff != "" {
		t.Errorf("resources sent after reconnecting (-want +got):\n%s", diff)
	}
}

func TestRestartWithoutControlPlaneServesCachedConfig(t *testing.T) {
	path := newDBPath(t)
	cp := startControlPlane(t)
	cp.set(baseConfig())
	db := openDB(t, path)
	app := &applier{}
	first := startClient(t, cp.addr, db, app)
	eventually(t, "first Apply", func() bool { _, cur := app.snapshot(); return cur != nil })
	v2 := baseConfig()
	v2.Version = "2"
	v2.Policies[0].Quota = &authzv1.Quota{Requests: 1000, Window: authzv1.Window_WINDOW_DAY}
	cp.set(v2)
	eventually(t, "Apply of 2", func() bool { _, cur := app.snapshot(); return cur.GetVersion() == "2" })

	// The sidecar stops, the control plane goes away, the sidecar starts again.
	first.stop()
	cp.stop()
	if err := db.Close(); err != nil {
		t.Fatalf("close bbolt: %v", err)
	}
	db = openDB(t, path)
	t.Cleanup(func() { _ = db.Close() })
	app2 := &applier{}
	second := startClient(t, cp.addr, db, app2)
	got, err := second.src.LoadCached(context.Background())
	if err != nil {
		t.Fatalf("LoadCached: %v", err)
	}
	if diff := cmp.Diff(v2, got, protocmp.Transform()); diff != "" {
		t.Errorf("cached config (-want +got):\n%s", diff)
	}

	// When the control plane returns, the stream resumes from the cached
	// versions: nothing is resent, and the config is applied once.
	respsBefore := len(cp.responses())
	cp.restart()
	eventually(t, "Apply after the control plane returned", func() bool { _, cur := app2.snapshot(); return cur != nil })
	_, cur := app2.snapshot()
	if diff := cmp.Diff(v2, cur, protocmp.Transform()); diff != "" {
		t.Errorf("applied config (-want +got):\n%s", diff)
	}
	for _, r := range cp.responses()[respsBefore:] {
		if len(r.GetResources()) != 0 || len(r.GetRemovedResources()) != 0 {
			t.Errorf("%s response resent %d resources, removed %v; want nothing", r.GetTypeUrl(), len(r.GetResources()), r.GetRemovedResources())
		}
	}
}

func TestLoadCachedWhenEmpty(t *testing.T) {
	tests := []struct {
		name  string
		useDB bool
	}{
		{name: "no bbolt file", useDB: false},
		{name: "new bbolt file", useDB: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{NodeID: testNode, Apply: (&applier{}).apply}
			if tt.useDB {
				cfg.DB = openDB(t, newDBPath(t))
				t.Cleanup(func() { _ = cfg.DB.Close() })
			}
			src, err := New(cfg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			got, err := src.LoadCached(context.Background())
			if got != nil || err != nil {
				t.Errorf("LoadCached = %v, %v; want nil, nil", got, err)
			}
		})
	}
}
