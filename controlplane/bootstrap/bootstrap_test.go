package bootstrap

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite envoy/bootstrap.yaml from Render(Defaults())")

// committed is the default bootstrap users run Envoy with.
var committed = filepath.Join("..", "..", "envoy", "bootstrap.yaml")

func TestCommittedBootstrapIsCurrent(t *testing.T) {
	got, err := Render(Defaults())
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(committed, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(committed)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("envoy/bootstrap.yaml is stale (go test ./controlplane/bootstrap -update) (-file +render):\n%s", diff)
	}
	b, err := Parse(want)
	if err != nil {
		t.Fatalf("committed bootstrap: %v", err)
	}
	checkShape(t, b, Defaults())
}

// checkShape asserts what the gateway relies on: ADS over the control plane cluster, dynamic
// LDS/CDS, the authz cluster and admin on loopback.
func checkShape(t *testing.T, b *bootstrapv3.Bootstrap, cfg Config) {
	t.Helper()
	if b.GetNode().GetId() != cfg.NodeID || b.GetNode().GetCluster() != cfg.Cluster {
		t.Errorf("node = %v", b.GetNode())
	}
	ads := b.GetDynamicResources().GetAdsConfig()
	if ads.GetGrpcServices()[0].GetEnvoyGrpc().GetClusterName() != "gatehouse-controlplane" || !ads.GetSetNodeOnFirstMessageOnly() {
		t.Errorf("ads = %v", ads)
	}
	if b.GetDynamicResources().GetLdsConfig().GetAds() == nil || b.GetDynamicResources().GetCdsConfig().GetAds() == nil {
		t.Errorf("LDS/CDS not from ADS: %v", b.GetDynamicResources())
	}
	clusters := map[string]*clusterv3.Cluster{}
	for _, c := range b.GetStaticResources().GetClusters() {
		clusters[c.GetName()] = c
	}
	for _, name := range []string{"gatehouse-controlplane", "gatehouse-authz"} {
		if clusters[name].GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"] == nil {
			t.Errorf("cluster %s: missing or not HTTP/2: %v", name, clusters[name])
		}
	}
	if got := b.GetAdmin().GetAddress().GetSocketAddress().GetAddress(); got != "127.0.0.1" && got != "::1" {
		t.Errorf("admin bound to %q", got)
	}
	checkRuntime(t, b)
}

// worstRouteProgramSize is the RE2 program size of the largest templated route the admin API
// accepts: collection "a"*63 and endpoint "/{a}" repeated 128 times (512 bytes), measured with
// RE2's ProgramSize(). Envoy refuses the whole route table when one route exceeds the limit.
const worstRouteProgramSize = 1283

// checkRuntime asserts the runtime Envoy reads the RE2 limits from: a static layer that lets
// every templated route compile, followed by the admin layer (without it, Envoy's admin
// /runtime_modify has nowhere to write).
func checkRuntime(t *testing.T, b *bootstrapv3.Bootstrap) {
	t.Helper()
	layers := b.GetLayeredRuntime().GetLayers()
	if len(layers) != 2 || layers[0].GetStaticLayer() == nil || layers[1].GetAdminLayer() == nil {
		t.Fatalf("layered_runtime = %v, want a static layer then an admin layer", b.GetLayeredRuntime())
	}
	static := layers[0].GetStaticLayer().GetFields()
	errLevel := static["re2.max_program_size.error_level"].GetNumberValue()
	warnLevel := static["re2.max_program_size.warn_level"].GetNumberValue()
	if errLevel < worstRouteProgramSize {
		t.Errorf("re2.max_program_size.error_level = %v, want >= %d (largest templated route)", errLevel, worstRouteProgramSize)
	}
	if warnLevel <= 0 || warnLevel > errLevel {
		t.Errorf("re2.max_program_size.warn_level = %v, want in (0, error_level %v]", warnLevel, errLevel)
	}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
		want    []string // substrings of the output
	}{
		{name: "defaults fill empty fields", cfg: Config{}, want: []string{`id: "gatehouse-gateway"`, "port_value: 18000", "port_value: 9191"}},
		{name: "control plane by DNS name", cfg: Config{NodeID: "gw-1", ControlPlaneAddr: "controlplane:18000"}, want: []string{"type: STRICT_DNS", `address: "controlplane"`, `id: "gw-1"`}},
		{name: "node id with YAML specials is quoted", cfg: Config{NodeID: `gw: "a" #1`}, want: []string{`id: "gw: \"a\" #1"`}},
		{name: "admin must be loopback", cfg: Config{AdminAddr: "0.0.0.0:9901"}, wantErr: "loopback"},
		{name: "bad port", cfg: Config{AuthzAddr: "127.0.0.1:0"}, wantErr: "bad port"},
		{name: "missing port", cfg: Config{ControlPlaneAddr: "controlplane"}, wantErr: "control plane address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Render(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(got), w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
			b, err := Parse(got)
			if err != nil {
				t.Fatal(err)
			}
			checkShape(t, b, tt.cfg.withDefaults())
		})
	}
}

func TestParseIsStrict(t *testing.T) {
	y, err := Render(Defaults())
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(y), "set_node_on_first_message_only", "set_node_on_first_message", 1)
	if _, err := Parse([]byte(bad)); err == nil {
		t.Error("unknown field accepted")
	}
	invalid := strings.Replace(string(y), "port_value: 9901", "port_value: 99999", 1)
	if _, err := Parse([]byte(invalid)); err == nil {
		t.Error("out-of-range port accepted")
	}
}

func TestMainCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main([]string{"-node-id", "gw-7", "-xds-addr", "cp.internal:18000"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	b, err := Parse(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if b.GetNode().GetId() != "gw-7" {
		t.Errorf("node id = %q", b.GetNode().GetId())
	}
	file := filepath.Join(t.TempDir(), "envoy.yaml")
	if code := Main([]string{"-out", file}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if _, err := os.Stat(file); err != nil {
		t.Error(err)
	}
	if code := Main([]string{"-admin-addr", "0.0.0.0:9901"}, &out, &errOut); code != 1 {
		t.Errorf("non-loopback admin: exit %d, want 1", code)
	}
	if code := Main([]string{"-nope"}, &out, &errOut); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
}
