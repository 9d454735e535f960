package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// platform is one running Gatehouse: control plane, authz sidecar, example runtime and nginx
// in front, each a real process with its own address and data directory.
type platform struct {
	dir  string
	logs string
	bins map[string]string

	adminHTTP, adminGRPC, xds string
	authzGRPC, authzHTTP      string
	runtimeAddr, nginxAddr    string

	cp, authz, runtime, nginx *proc
	ctl                       ctl
}

// startPlatform builds the binaries and starts every process, the control plane first.
func startPlatform(t *testing.T, nginxBin string) *platform {
	t.Helper()
	dir := t.TempDir()
	p := &platform{
		dir:  dir,
		logs: filepath.Join(dir, "logs"),
		bins: buildBinaries(t, filepath.Join(dir, "bin")),
	}
	for _, d := range []string{p.logs, filepath.Join(dir, "controlplane"), filepath.Join(dir, "authz")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	p.adminHTTP, p.adminGRPC, p.xds = freeAddr(t), freeAddr(t), freeAddr(t)
	p.authzGRPC, p.authzHTTP = freeAddr(t), freeAddr(t)
	p.runtimeAddr, p.nginxAddr = freeAddr(t), freeAddr(t)

	token := strings.TrimSpace(p.run(t, p.bins[binControlPlane], "admin-token"))
	p.ctl = ctl{bin: p.bins[binCtl], addr: p.adminGRPC, token: token}

	p.cp = startProc(t, p.logs, "controlplane", p.bins[binControlPlane],
		[]string{"GATEHOUSE_ADMIN_TOKEN=" + token},
		"serve",
		"--data-dir="+filepath.Join(dir, "controlplane"),
		"--admin-http-addr="+p.adminHTTP,
		"--admin-grpc-addr="+p.adminGRPC,
		"--xds-addr="+p.xds,
		"--runtime-addr="+p.runtimeAddr,
	)
	waitReady(t, p.cp, "http://"+p.adminHTTP+"/readyz")

	p.runtime = startProc(t, p.logs, "runtime", p.bins[binRuntime], nil, "--addr="+p.runtimeAddr)
	waitReady(t, p.runtime, "http://"+p.runtimeAddr+"/healthz")

	p.authz = startProc(t, p.logs, "authz", p.bins[binAuthz], nil,
		"--data-dir="+filepath.Join(dir, "authz"),
		"--grpc-addr="+p.authzGRPC,
		"--http-addr="+p.authzHTTP,
		"--xds-addr="+p.xds,
		"--node-id=e2e-authz",
		// nginx is the one proxy in front: the caller's address is the last X-Forwarded-For
		// entry, which nginx appends.
		"--trusted-hops=1",
	)
	waitReady(t, p.authz, "http://"+p.authzHTTP+"/readyz")

	p.nginx = startNginx(t, nginxBin, p.logs, filepath.Join(dir, "nginx"), nginxConfig{
		Listen: p.nginxAddr, Authz: p.authzHTTP, Runtime: p.runtimeAddr,
	})
	return p
}

// run runs a binary to completion and returns its standard output.
func (p *platform) run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	c := ctl{bin: bin}
	out, err := c.try("", args...)
	if err != nil {
		t.Fatalf("%s %s: %v", filepath.Base(bin), strings.Join(args, " "), err)
	}
	return out
}

// apply configures the control plane from a YAML document with gatehousectl apply.
func (p *platform) apply(t *testing.T, yaml string) {
	t.Helper()
	file := filepath.Join(p.dir, "apply.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p.ctl.run(t, "", "apply", "-f", file)
}

// get reads one resource with gatehousectl get -o json into msg.
func (p *platform) get(t *testing.T, msg proto.Message, args ...string) {
	t.Helper()
	out := p.ctl.run(t, "", append([]string{"get"}, append(args, "-o", "json")...)...)
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal([]byte(out), msg); err != nil {
		t.Fatalf("gatehousectl get %s: decode %q: %v", strings.Join(args, " "), out, err)
	}
}

// endpoint finds an endpoint of a collection by name.
func (p *platform) endpoint(t *testing.T, collection, name string) *adminv1.Endpoint {
	t.Helper()
	out := p.ctl.run(t, "", "get", "endpoints", "--collection", collection, "-o", "json")
	var raws []json.RawMessage
	if err := json.Unmarshal([]byte(out), &raws); err != nil {
		t.Fatalf("gatehousectl get endpoints: decode %q: %v", out, err)
	}
	for _, raw := range raws {
		ep := &adminv1.Endpoint{}
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(raw, ep); err != nil {
			t.Fatal(err)
		}
		if ep.GetName() == name {
			return ep
		}
	}
	t.Fatalf("collection %s has no endpoint %s:\n%s", collection, name, out)
	return nil
}

// token is an API token as gatehousectl printed it.
type token struct{ id, secret string }

var (
	createdRE = regexp.MustCompile(`created token (\S+) `)
	secretRE  = regexp.MustCompile(`(?m)^secret:\s+(\S+)$`)
)

// createToken issues an API token for a profile.
func (p *platform) createToken(t *testing.T, client, profile string) token {
	t.Helper()
	out := p.ctl.run(t, "", "tokens", "create", "--client", client, "--profile", profile)
	id, secret := createdRE.FindStringSubmatch(out), secretRE.FindStringSubmatch(out)
	if id == nil || secret == nil {
		t.Fatalf("tokens create printed no token id and secret:\n%s", out)
	}
	return token{id: id[1], secret: secret[1]}
}
