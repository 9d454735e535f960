package ctl

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

const exampleYAML = `
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
      - name: acme-jwt
        auth:
          jwt: {hmac_secret_env: ACME_SECRET, audiences: [gatehouse]}
`

const testSecret = "0123456789abcdef0123456789abcdef-secret"

func testDecoder(env map[string]string) decoder {
	return decoder{
		getenv:   func(k string) string { return env[k] },
		readFile: func(p string) ([]byte, error) { return nil, errors.New("no files in this test") },
	}
}

func TestDecodeSpec(t *testing.T) {
	got, err := testDecoder(map[string]string{"ACME_SECRET": testSecret}).DecodeSpec([]byte(exampleYAML))
	if err != nil {
		t.Fatal(err)
	}
	want := &Spec{
		Policies: []*adminv1.AccessPolicy{{
			Name:      "standard",
			RateLimit: &adminv1.RateLimit{Requests: 100, Per: "minute"},
			Quota:     &adminv1.Quota{Requests: 10000, Per: "month"},
		}},
		Collections: []*CollectionSpec{{
			Collection: &adminv1.Collection{Name: "Sales", Version: "v1", Path: "sales-api-v1"},
			Endpoints: []*adminv1.Endpoint{{
				Name: "get-invoice", Method: "GET", Path: "/invoices/{id}", RecipeId: "rcp_123",
				Active: proto.Bool(true), Timeout: durationpb.New(30 * time.Second),
			}},
		}},
		Clients: []*ClientSpec{{
			Client: &adminv1.Client{Name: "Acme", Email: "ops@acme.example"},
			Profiles: []*ProfileSpec{
				{
					Profile: &adminv1.AccessProfile{
						Name: "acme-prod", IpAllow: []string{"10.0.0.0/8"},
						Auth: &adminv1.AccessProfile_ApiToken{ApiToken: &adminv1.ApiTokenAuth{}},
					},
					Collections: []string{"Sales"},
					Policy:      "standard",
				},
				{
					Profile: &adminv1.AccessProfile{
						Name: "acme-jwt",
						Auth: &adminv1.AccessProfile_Jwt{Jwt: &adminv1.JwtAuth{
							Key:       &adminv1.JwtAuth_HmacSecret{HmacSecret: testSecret},
							Audiences: []string{"gatehouse"},
						}},
					},
				},
			},
		}},
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("DecodeSpec (-want +got):\n%s", diff)
	}
}

func TestDecodeSpecSecretFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := decoder{getenv: func(string) string { return "" }, readFile: os.ReadFile}
	spec, err := d.DecodeSpec([]byte(`clients: [{name: A, access_profiles: [{name: p, auth: {jwt: {hmac_secret_file: ` + path + `}}}]}]`))
	if err != nil {
		t.Fatal(err)
	}
	if got := spec.Clients[0].Profiles[0].Profile.GetJwt().GetHmacSecret(); got != testSecret {
		t.Errorf("secret from file = %q, want %q without the trailing newline", got, testSecret)
	}
}

func TestDecodeSpecErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // substrings of the error, in order
	}{
		{
			name: "unknown top-level field",
			yaml: "policies: []\nendpoints: []\n",
			want: `line 2: unknown field "endpoints"`,
		},
		{
			name: "unknown endpoint field names line and endpoint",
			yaml: "collections:\n  - name: Sales\n    version: v1\n    path: sales\n    endpoints:\n      - name: e1\n        recipe: r\n",
			want: `line 7: endpoint "e1" of collection "Sales": unknown field "recipe"`,
		},
		{
			name: "unknown nested field",
			yaml: "policies:\n  - name: p\n    rate_limit:\n      requests: 1\n      every: minute\n",
			want: `line 5: policy "p" rate_limit: unknown field "every"`,
		},
		{
			name: "server-set id refused",
			yaml: "clients:\n  - name: A\n    id: cli_1\n",
			want: `line 3: client "A": field "id" is not accepted here`,
		},
		{
			name: "ids instead of names refused",
			yaml: "clients:\n  - name: A\n    access_profiles:\n      - name: p\n        collection_ids: [col_1]\n        auth: {api_token: {}}\n",
			want: `line 5: access profile "p" of client "A": field "collection_ids" is not accepted here`,
		},
		{
			name: "wrong type reported by protojson",
			yaml: "collections:\n  - name: S\n    version: [v1]\n",
			want: `line 2: collection "S"`,
		},
		{
			name: "profile without auth",
			yaml: "clients: [{name: A, access_profiles: [{name: p}]}]",
			want: `auth is required`,
		},
		{
			name: "two auth kinds",
			yaml: "clients: [{name: A, access_profiles: [{name: p, auth: {api_token: {}, jwt: {jwks_url: 'https://x'}}}]}]",
			want: `exactly one of api_token or jwt`,
		},
		{
			name: "secret variable not set",
			yaml: "clients: [{name: A, access_profiles: [{name: p, auth: {jwt: {hmac_secret_env: NOPE}}}]}]",
			want: `hmac_secret_env: environment variable NOPE is not set`,
		},
		{
			name: "secret given twice",
			yaml: "clients: [{name: A, access_profiles: [{name: p, auth: {jwt: {hmac_secret_env: X, jwks_url: 'https://x'}}}]}]",
			want: `give the key once`,
		},
		{
			name: "duplicate collection",
			yaml: "collections: [{name: S, version: v1, path: s}, {name: S, version: v2, path: s2}]",
			want: `collection "S" is defined twice`,
		},
		{
			name: "duplicate endpoint in collection",
			yaml: "collections: [{name: S, version: v1, path: s, endpoints: [{name: e}, {name: e}]}]",
			want: `endpoint "S/e" is defined twice`,
		},
		{
			name: "list expected",
			yaml: "collections: {name: S}",
			want: `line 1: collections must be a list`,
		},
		{
			name: "not yaml",
			yaml: "collections: [",
			want: `parse:`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := testDecoder(map[string]string{"X": testSecret}).DecodeSpec([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("DecodeSpec succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestDecodeSpecEmpty(t *testing.T) {
	for _, doc := range []string{"", "# nothing\n", "{}", "~"} {
		spec, err := testDecoder(nil).DecodeSpec([]byte(doc))
		if err != nil {
			t.Fatalf("DecodeSpec(%q): %v", doc, err)
		}
		if len(spec.Policies)+len(spec.Collections)+len(spec.Clients) != 0 {
			t.Errorf("DecodeSpec(%q) = %v, want empty", doc, spec)
		}
	}
}

func TestDecodeSpecScalarsAsStrings(t *testing.T) {
	spec, err := testDecoder(nil).DecodeSpec([]byte("collections: [{name: 2024, version: 1, path: a, endpoints: [{name: e, recipe_id: 123, active: true}]}]"))
	if err != nil {
		t.Fatal(err)
	}
	want := &CollectionSpec{
		Collection: &adminv1.Collection{Name: "2024", Version: "1", Path: "a"},
		Endpoints:  []*adminv1.Endpoint{{Name: "e", RecipeId: "123", Active: proto.Bool(true)}},
	}
	if diff := cmp.Diff(want, spec.Collections[0], protocmp.Transform()); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}
}
