// Package compose holds the Docker Compose deployment of Gatehouse; its test loads the file
// with the Compose specification's own loader and schema, as `docker compose` does.
package compose

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"

	"gatehouse/controlplane/bootstrap"
)

func TestComposeFileLoadsAgainstTheComposeSpec(t *testing.T) {
	opts, err := cli.NewProjectOptions([]string{"compose.yaml"},
		cli.WithWorkingDirectory("."),
		cli.WithEnv([]string{"GATEHOUSE_ADMIN_TOKEN="}),
		cli.WithConsistency(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("compose.yaml does not load: %v", err)
	}
	want := []string{"authz", "controlplane", "envoy", "redis", "runtime"}
	got := project.ServiceNames()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("services %v, want %v", got, want)
	}
	authz := project.Services["authz"]
	if authz.NetworkMode != "service:envoy" {
		t.Errorf("authz network_mode %q: Envoy reaches the sidecar on loopback only when they share a network namespace", authz.NetworkMode)
	}
	for _, name := range []string{"controlplane", "authz", "runtime"} {
		s := project.Services[name]
		if !s.ReadOnly || s.User == "" || strings.HasPrefix(s.User, "0") {
			t.Errorf("%s: must run read-only as a non-root user (read_only %v, user %q)", name, s.ReadOnly, s.User)
		}
	}
	for _, v := range project.Services["envoy"].Volumes {
		if v.Type == "bind" {
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("envoy mounts %s: %v", v.Source, err)
			}
		}
	}
}

// TestComposeBootstrapIsTheRenderedOne keeps envoy-bootstrap.yaml equal to what
// `gatehouse-controlplane bootstrap -node-id gateway-compose -xds-addr controlplane:18000`
// renders, which the renderer checks strictly against Envoy's bootstrap proto.
func TestComposeBootstrapIsTheRenderedOne(t *testing.T) {
	want, err := bootstrap.Render(bootstrap.Config{NodeID: "gateway-compose", ControlPlaneAddr: "controlplane:18000"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("envoy-bootstrap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatal("envoy-bootstrap.yaml is stale: run gatehouse-controlplane bootstrap -node-id gateway-compose -xds-addr controlplane:18000 -out deploy/compose/envoy-bootstrap.yaml")
	}
	if _, err := bootstrap.Parse(got); err != nil {
		t.Fatal(err)
	}
}
