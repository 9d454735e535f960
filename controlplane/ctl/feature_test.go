package ctl_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"gatehouse/authz/apitoken"
	"gatehouse/controlplane/ctl"
	"gatehouse/controlplane/ctl/internal/cptest"
	"gatehouse/controlplane/store"
)

// controlPlane is a real admin gRPC server on 127.0.0.1:0 over a bbolt store in a temp dir.
type controlPlane struct {
	addr, token string
	store       *store.Store
}

func startControlPlane(t *testing.T, opts ...grpc.ServerOption) *controlPlane {
	t.Helper()
	cp := cptest.Start(t, opts...)
	return &controlPlane{addr: cp.Addr, token: cp.Token, store: cp.Store}
}

type result struct {
	stdout, stderr string
	code           int
}

// ctl runs gatehousectl against the control plane; the admin token comes from the environment
// as an operator would set it.
func (cp *controlPlane) ctl(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	t.Setenv("GATEHOUSE_ADMIN_TOKEN", cp.token)
	var out, errOut bytes.Buffer
	code := ctl.Main(context.Background(), append([]string{"--addr", cp.addr}, args...), strings.NewReader(stdin), &out, &errOut)
	r := result{stdout: out.String(), stderr: errOut.String(), code: code}
	if strings.Contains(r.stdout+r.stderr, cp.token) {
		t.Fatalf("gatehousectl %v printed the admin token", args)
	}
	return r
}

// mustCtl runs gatehousectl and fails the test unless it exits 0.
func (cp *controlPlane) mustCtl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	r := cp.ctl(t, stdin, args...)
	if r.code != 0 {
		t.Fatalf("gatehousectl %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

const hmacSecret = "a-shared-secret-of-at-least-32-bytes-for-hs256"

const config = `
policies:   [{name: standard, rate_limit: {requests: 100, per: minute}, quota: {requests: 10000, per: month}}]
collections:
  - name: Sales
    version: v1
    path: sales-api-v1
    endpoints:
      - {name: get-invoice, method: GET, path: "/invoices/{id}", recipe_id: "rcp_123", active: true, timeout: 30s}
      - {name: list-invoices, method: GET, path: "/invoices", recipe_id: "rcp_124"}
  - name: Orders
    version: v2
    path: orders
    description: order intake
clients:
  - name: Acme
    email: ops@acme.example
    access_profiles:
      - {name: acme-prod, collections: [Sales, Orders], auth: {api_token: {}}, policy: standard, ip_allow: [10.1.2.3/8]}
      - name: acme-jwt
        collections: [Orders]
        auth:
          jwt: {hmac_secret_env: ACME_JWT_SECRET, audiences: [gatehouse], algorithms: [HS256]}
      - name: acme-keys
        collections: [Sales]
        auth:
          jwt:
            claim: client_id
            claim_value: acme
            public_keys:
              pem:
                - |
                  -----BEGIN PUBLIC KEY-----
                  MCowBQYDK2VwAyEAuuRJDmct6iNZMGfDuXbabd9XvxAsQefp8SQ5+3TdaB4=
                  -----END PUBLIC KEY-----
  - name: Globex
    active: false
`

func TestApplyIsIdempotent(t *testing.T) {
	t.Setenv("ACME_JWT_SECRET", hmacSecret)
	cp := startControlPlane(t)

	out := cp.mustCtl(t, config, "apply", "-f", "-")
	for _, want := range []string{
		`+ create policy "standard"`, `+ create collection "Orders"`, `+ create endpoint "Sales/list-invoices"`,
		`+ create access profile "Acme/acme-jwt"`, "applied 10 change(s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("first apply output lacks %q:\n%s", want, out)
		}
	}
	rev := cp.store.Revision()

	out = cp.mustCtl(t, config, "apply", "-f", "-")
	if out != "no changes\n" {
		t.Errorf("second apply printed:\n%s\nwant: no changes", out)
	}
	if got := cp.store.Revision(); got != rev {
		t.Errorf("second apply moved the store revision from %d to %d", rev, got)
	}

	// A changed field is planned as an update naming it; --dry-run writes nothing.
	changed := strings.Replace(config, "timeout: 30s", "timeout: 45s", 1)
	out = cp.mustCtl(t, changed, "apply", "--dry-run", "-f", "-")
	if !strings.Contains(out, `~ update endpoint "Sales/get-invoice" (timeout)`) || !strings.Contains(out, "dry run") {
		t.Errorf("dry run printed:\n%s", out)
	}
	if got := cp.store.Revision(); got != rev {
		t.Errorf("dry run moved the store revision from %d to %d", rev, got)
	}
	out = cp.mustCtl(t, changed, "apply", "-f", "-")
	if !strings.Contains(out, "applied 1 change(s)") {
		t.Errorf("apply of one change printed:\n%s", out)
	}
	if got := cp.store.Revision(); got != rev+1 {
		t.Errorf("one change moved the revision from %d to %d, want one write", rev, got)
	}
	if out := cp.mustCtl(t, "", "get", "endpoints", "--collection", "Sales", "get-invoice", "-o", "json"); !strings.Contains(out, `"timeout": "45s"`) {
		t.Errorf("endpoint after update:\n%s", out)
	}

	// A different HMAC secret is noticed through its hash, and only that profile changes.
	t.Setenv("ACME_JWT_SECRET", hmacSecret+"-rotated")
	out = cp.mustCtl(t, changed, "apply", "-f", "-")
	if !strings.Contains(out, `~ update access profile "Acme/acme-jwt" (jwt)`) || !strings.Contains(out, "applied 1 change(s)") {
		t.Errorf("apply with a new secret printed:\n%s", out)
	}
	if out := cp.mustCtl(t, changed, "apply", "-f", "-"); out != "no changes\n" {
		t.Errorf("apply after the secret change printed:\n%s", out)
	}
}

func TestExportRoundTrip(t *testing.T) {
	t.Setenv("ACME_JWT_SECRET", hmacSecret)
	a := startControlPlane(t)
	a.mustCtl(t, config, "apply", "-f", "-")
	exported := a.mustCtl(t, "", "export")
	for _, secretish := range []string{hmacSecret, "hmac_secret_sha256", "etag", "col_", "pol_", "cli_"} {
		if strings.Contains(exported, secretish) {
			t.Errorf("export contains %q:\n%s", secretish, exported)
		}
	}

	// The placeholder names the variable the secret must come from.
	t.Setenv("GATEHOUSE_HMAC_ACME_ACME_JWT", hmacSecret)
	b := startControlPlane(t)
	b.mustCtl(t, exported, "apply", "-f", "-")
	again := b.mustCtl(t, "", "export")
	if again != exported {
		t.Errorf("export after apply of the export differs:\nfirst:\n%s\nsecond:\n%s", exported, again)
	}
	// And the export, applied where it came from, changes nothing.
	if out := a.mustCtl(t, exported, "apply", "-f", "-"); out != "no changes\n" {
		t.Errorf("applying the export to its source printed:\n%s", out)
	}
	ctl.Golden(t, "feature_export.golden", []byte(exported))
}

func TestApplyPrune(t *testing.T) {
	t.Setenv("ACME_JWT_SECRET", hmacSecret)
	cp := startControlPlane(t)
	cp.mustCtl(t, config, "apply", "-f", "-")

	// Drop the Orders collection, the Globex client and the JWT profile that uses Orders.
	small := `
policies:   [{name: standard, rate_limit: {requests: 100, per: minute}, quota: {requests: 10000, per: month}}]
collections:
  - name: Sales
    version: v1
    path: sales-api-v1
    endpoints:
      - {name: get-invoice, method: GET, path: "/invoices/{id}", recipe_id: "rcp_123", active: true, timeout: 30s}
clients:
  - name: Acme
    email: ops@acme.example
    access_profiles:
      - {name: acme-prod, collections: [Sales], auth: {api_token: {}}, policy: standard, ip_allow: [10.0.0.0/8]}
`
	rev := cp.store.Revision()
	out := cp.mustCtl(t, small, "apply", "-f", "-")
	if !strings.Contains(out, `~ update access profile "Acme/acme-prod" (collection_ids)`) || strings.Contains(out, "delete") {
		t.Errorf("apply without --prune printed:\n%s", out)
	}
	out = cp.mustCtl(t, small, "apply", "--prune", "-f", "-")
	want := `- delete endpoint "Sales/list-invoices"
- delete access profile "Acme/acme-jwt"
- delete access profile "Acme/acme-keys"
- delete client "Globex"
- delete collection "Orders"
applied 5 change(s)
`
	if out != want {
		t.Errorf("apply --prune printed:\n%s\nwant:\n%s", out, want)
	}
	if out := cp.mustCtl(t, small, "apply", "--prune", "-f", "-"); out != "no changes\n" {
		t.Errorf("second apply --prune printed:\n%s", out)
	}
	if cp.store.Revision() == rev {
		t.Error("prune wrote nothing")
	}
	out = cp.mustCtl(t, "", "get", "collections")
	if strings.Contains(out, "Orders") || !strings.Contains(out, "Sales") {
		t.Errorf("collections after prune:\n%s", out)
	}
}

func TestErrorsNameTheField(t *testing.T) {
	cp := startControlPlane(t)
	cp.mustCtl(t, "", "create", "collection", "--name", "Sales", "--version", "v1", "--path", "sales")

	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  []string
	}{
		{
			name: "server field violation on its own line",
			args: []string{"create", "endpoint", "--collection", "Sales", "--name", "e", "--method", "GET", "--path", "invoices", "--recipe-id", "r"},
			code: 1,
			want: []string{"error: create endpoint \"e\": invalid request (InvalidArgument)\n  endpoint.path: must be \"/\" or \"/segment\" parts"},
		},
		{
			name:  "apply stops at the server's refusal and names the resource",
			stdin: "collections: [{name: Other, version: v1, path: sales}]",
			args:  []string{"apply", "-f", "-"},
			code:  1,
			want:  []string{`+ create collection "Other"`, `error: create collection "Other":`, "\n  collection.path: "},
		},
		{
			name:  "unknown field in the file names its line",
			stdin: "collections:\n  - name: Sales\n    versoin: v1\n",
			args:  []string{"apply", "-f", "-"},
			code:  1,
			want:  []string{`error: standard input: line 3: collection "Sales": unknown field "versoin"`},
		},
		{
			name: "missing parent flag is a usage error",
			args: []string{"get", "endpoints"},
			code: 2,
			want: []string{"endpoints need --collection"},
		},
		{
			name: "help never shows the admin token from the environment",
			args: []string{"apply", "-h"},
			code: 0,
			want: []string{"Usage of gatehousectl apply:", "-prune"},
		},
		{
			name: "unknown command is a usage error",
			args: []string{"frobnicate"},
			code: 2,
			want: []string{`unknown command "frobnicate"`},
		},
		{
			name: "unknown resource",
			args: []string{"delete", "collection", "Nope"},
			code: 1,
			want: []string{`collection "Nope" not found`},
		},
		{
			name: "delete of an unused collection by name",
			args: []string{"delete", "collection", "Sales"},
			code: 0,
		},
		{
			name: "wrong admin token",
			args: []string{"--token", "gta_wrong", "get", "collections"},
			code: 1,
			want: []string{"missing or invalid admin token", "(Unauthenticated)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cp.ctl(t, tt.stdin, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tt.code, r.stdout, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout+r.stderr, w) {
					t.Errorf("output lacks %q\nstdout:\n%s\nstderr:\n%s", w, r.stdout, r.stderr)
				}
			}
		})
	}
}

func TestTokensSecretIsShownOnce(t *testing.T) {
	cp := startControlPlane(t)
	cp.mustCtl(t, "collections: [{name: Sales, version: v1, path: sales}]\nclients: [{name: Acme, access_profiles: [{name: prod, collections: [Sales], auth: {api_token: {}}}]}]", "apply", "-f", "-")

	out := cp.mustCtl(t, "", "tokens", "create", "--client", "Acme", "--profile", "prod", "--name", "ci", "--expires", "720h")
	secret := field(out, "secret:")
	if err := apitoken.Check(apitoken.APIPrefix, secret); err != nil {
		t.Fatalf("tokens create printed no valid secret (%v):\n%s", err, out)
	}
	if !strings.Contains(out, "cannot be shown again") {
		t.Errorf("tokens create does not warn that the secret is shown once:\n%s", out)
	}
	id := strings.Fields(out)[2]

	for _, format := range []string{"table", "yaml", "json"} {
		out := cp.mustCtl(t, "", "get", "tokens", "--client", "Acme", "--profile", "prod", "-o", format)
		if !strings.Contains(out, id) {
			t.Errorf("get tokens -o %s does not list %s:\n%s", format, id, out)
		}
		if strings.Contains(out, secret) || strings.Contains(out, secret[10:]) {
			t.Errorf("get tokens -o %s shows the secret:\n%s", format, out)
		}
	}
	if out := cp.mustCtl(t, "", "export"); strings.Contains(out, secret) || strings.Contains(out, id) {
		t.Errorf("export contains the token:\n%s", out)
	}

	out = cp.mustCtl(t, "", "tokens", "rotate", "--client", "Acme", "--profile", "prod", "--grace", "1h", id)
	rotated := field(out, "secret:")
	if err := apitoken.Check(apitoken.APIPrefix, rotated); err != nil || rotated == secret {
		t.Errorf("tokens rotate printed secret %q (%v):\n%s", rotated, err, out)
	}
	out = cp.mustCtl(t, "", "tokens", "revoke", "--client", "Acme", "--profile", "prod", id)
	if !strings.Contains(out, "revoked token "+id) {
		t.Errorf("tokens revoke printed:\n%s", out)
	}
	out = cp.mustCtl(t, "", "get", "tokens", "--client", "Acme", "--profile", "prod", id, "-o", "yaml")
	if !strings.Contains(out, "revoke_time:") || !strings.Contains(out, "rotated_to_id:") {
		t.Errorf("revoked token shows:\n%s", out)
	}

	// -q prints only the secret, for scripts.
	out = cp.mustCtl(t, "", "tokens", "create", "--client", "Acme", "--profile", "prod", "-q")
	if err := apitoken.Check(apitoken.APIPrefix, strings.TrimSpace(out)); err != nil {
		t.Errorf("tokens create -q printed %q: %v", out, err)
	}
}

func TestGetCreateDelete(t *testing.T) {
	cp := startControlPlane(t)
	cp.mustCtl(t, "", "create", "policy", "--name", "gold", "--rate", "10/second", "--quota", "1000/day")
	cp.mustCtl(t, "", "create", "collection", "--name", "Sales", "--version", "v1", "--path", "sales")
	cp.mustCtl(t, "", "create", "endpoint", "--collection", "Sales", "--name", "get", "--method", "GET", "--path", "/x/{id}", "--recipe-id", "r1", "--active")
	cp.mustCtl(t, "", "create", "client", "--name", "Acme", "--email", "ops@acme.example")
	cp.mustCtl(t, "", "create", "profile", "--client", "Acme", "--name", "prod", "--collections", "Sales", "--policy", "gold")
	cp.mustCtl(t, "name: Initech\naccess_profiles: [{name: jwt, auth: {jwt: {jwks_url: 'https://idp.example/jwks'}}}]\n", "create", "client", "-f", "-")

	out := cp.mustCtl(t, "", "get", "policies")
	if !strings.Contains(out, "10/second burst 10") || !strings.Contains(out, "1000/day") {
		t.Errorf("get policies:\n%s", out)
	}
	out = cp.mustCtl(t, "", "get", "endpoints", "--collection", "Sales")
	if !strings.Contains(out, "/x/{id}") || !strings.Contains(out, "yes") {
		t.Errorf("get endpoints:\n%s", out)
	}
	out = cp.mustCtl(t, "", "get", "profiles", "--client", "Initech", "jwt", "-o", "yaml")
	if !strings.Contains(out, "jwks_url: https://idp.example/jwks") {
		t.Errorf("get profile -o yaml:\n%s", out)
	}
	out = cp.mustCtl(t, "", "get", "profiles", "--client", "Acme")
	if row := strings.Fields(strings.Split(out, "\n")[1]); len(row) != 6 || row[3] != "Sales" || row[4] != "gold" {
		t.Errorf("get profiles shows no collection and policy names:\n%s", out)
	}
	out = cp.mustCtl(t, "", "get", "audit-events", "--limit", "3")
	if n := strings.Count(out, "\n"); n != 4 {
		t.Errorf("get audit-events --limit 3 printed %d lines:\n%s", n, out)
	}

	r := cp.ctl(t, "", "delete", "policy", "gold")
	if r.code != 1 || !strings.Contains(r.stderr, "REFERENCED") {
		t.Errorf("deleting a policy in use: exit %d\n%s", r.code, r.stderr)
	}
	r = cp.ctl(t, "", "delete", "client", "Acme")
	if r.code != 1 {
		t.Errorf("deleting a client with profiles without --force: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	cp.mustCtl(t, "", "delete", "client", "Acme", "--force")
	cp.mustCtl(t, "", "delete", "policy", "gold")
	out = cp.mustCtl(t, "", "get", "clients", "-o", "json")
	if strings.Contains(out, "Acme") || !strings.Contains(out, "Initech") {
		t.Errorf("clients after delete:\n%s", out)
	}
}

// field returns the text after prefix on the line that starts with it.
func field(out, prefix string) string {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
