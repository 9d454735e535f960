package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"gatehouse/authz/apitoken"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// baseConfig is what the test applies first: a collection the client may call, one it may not,
// and four profiles of one client: unrestricted, office-only (IP allow list), rate limited and
// with a daily quota.
const baseConfig = `
policies:
  - name: tight
    rate_limit: {requests: 3, per: minute, burst: 3}
  - name: daily
    quota: {requests: 3, per: day}
collections:
  - name: shop
    version: v1
    path: shop-v1
    endpoints:
      - {name: hello, method: GET, path: /hello, recipe_id: shop.hello, active: true}
      - {name: get-invoice, method: GET, path: "/invoices/{id}", recipe_id: shop.get-invoice, active: true}
  - name: internal
    version: v1
    path: internal-v1
    endpoints:
      - {name: report, method: GET, path: /report, recipe_id: internal.report, active: true}
clients:
  - name: acme
    access_profiles:
      - name: prod
        collections: [shop]
        auth: {api_token: {}}
      - name: office
        collections: [shop]
        auth: {api_token: {}}
        ip_allow: ["127.0.0.1/32"]
      - name: limited
        collections: [shop]
        auth: {api_token: {}}
        policy: tight
      - name: metered
        collections: [shop]
        auth: {api_token: {}}
        policy: daily
`

// goodbyeEndpoint is added to the shop collection by the config change.
const goodbyeEndpoint = `      - {name: goodbye, method: GET, path: /goodbye, recipe_id: shop.goodbye, active: true}
`

// changedConfig adds an endpoint and deactivates another: both must take effect without a
// restart of anything.
func changedConfig() string {
	return withGoodbye(strings.Replace(baseConfig,
		"recipe_id: shop.hello, active: true}", "recipe_id: shop.hello, active: false}", 1))
}

func TestEndToEndThroughNginx(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: builds and starts every binary; skipped with -short")
	}
	nginxBin := requireBinary(t, "nginx", "apt-get install -y nginx")
	p := startPlatform(t, nginxBin)
	p.apply(t, baseConfig)

	prod := p.createToken(t, "acme", "prod")
	office := p.createToken(t, "acme", "office")
	limited := p.createToken(t, "acme", "limited")
	metered := p.createToken(t, "acme", "metered")
	client, profile, collection := &adminv1.Client{}, &adminv1.AccessProfile{}, &adminv1.Collection{}
	p.get(t, client, "clients", "acme")
	p.get(t, profile, "profiles", "prod", "--client", "acme")
	p.get(t, collection, "collections", "shop")
	invoice := p.endpoint(t, "shop", "get-invoice")

	// The authz learns the config over xDS shortly after apply; the first allowed call tells.
	p.eventually(t, "the applied config reaches the authz", func() error {
		return wantStatus(p.call(t, request{path: "/shop-v1/hello", apiToken: prod.secret}), 200)
	})

	t.Run("allowed call reaches the runtime with gatehouse headers and without the credential", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			req  request
		}{
			{"API-Token header", request{path: "/shop-v1/invoices/inv-42?lines=all", apiToken: prod.secret}},
			{"Basic auth", request{path: "/shop-v1/invoices/inv-42?lines=all", basic: prod.secret}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				a := p.call(t, tc.req)
				if err := wantStatus(a, 200); err != nil {
					t.Fatal(err)
				}
				var got echo
				if err := json.Unmarshal(a.body, &got); err != nil {
					t.Fatalf("runtime answer %q: %v", a.body, err)
				}
				want := echo{
					RecipeID: "shop.get-invoice",
					Path:     "/recipes/shop.get-invoice",
					Query:    "lines=all",
					Gateway: map[string]string{
						"client-id":     client.GetId(),
						"profile-id":    profile.GetId(),
						"auth-method":   "api_token",
						"token-id":      prod.id,
						"endpoint-id":   invoice.GetId(),
						"collection-id": collection.GetId(),
						"recipe-id":     "shop.get-invoice",
					},
					Params: map[string]string{"id": "inv-42"},
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("what the recipe received (-want +got):\n%s", diff)
				}
			})
		}
	})

	unknown, err := apitoken.New(apitoken.APIPrefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("denials", func(t *testing.T) {
		for _, tc := range []struct {
			name      string
			req       request
			status    int
			code      string
			challenge string
		}{
			{"no credential", request{path: "/shop-v1/hello"}, 401, "missing_credentials", `API-Token realm="gatehouse"`},
			{"malformed token", request{path: "/shop-v1/hello", apiToken: "gth_not-a-token"}, 401, "invalid_credentials", `API-Token realm="gatehouse"`},
			{"unknown token", request{path: "/shop-v1/hello", apiToken: unknown.Secret}, 401, "invalid_credentials", `API-Token realm="gatehouse"`},
			{"two credentials", request{path: "/shop-v1/hello", apiToken: prod.secret, basic: prod.secret}, 401, "invalid_credentials", ""},
			// nginx cannot drop header names it does not know, so a caller's own
			// x-gatehouse-* header is refused instead of reaching the recipe.
			{"spoofed gatehouse header", request{
				path: "/shop-v1/invoices/inv-42", apiToken: prod.secret,
				header: http.Header{"X-Gatehouse-Param-Other": {"spoofed"}},
			}, 401, "invalid_credentials", ""},
			{"collection not granted", request{path: "/internal-v1/report", apiToken: prod.secret}, 403, "collection_not_allowed", ""},
			{"unknown endpoint", request{path: "/shop-v1/nope", apiToken: prod.secret}, 404, "endpoint_not_found", ""},
			{"caller outside the IP allow list", request{path: "/shop-v1/hello", apiToken: office.secret, from: "127.0.0.3"}, 403, "ip_not_allowed", ""},
			{"spoofed X-Forwarded-For", request{
				path: "/shop-v1/hello", apiToken: office.secret, from: "127.0.0.3",
				header: http.Header{"X-Forwarded-For": {"127.0.0.1"}},
			}, 403, "ip_not_allowed", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				a := p.call(t, tc.req)
				if err := wantProblem(a, tc.status, tc.code); err != nil {
					t.Fatal(err)
				}
				if got := a.header.Get("WWW-Authenticate"); tc.challenge != "" && got != tc.challenge {
					t.Errorf("WWW-Authenticate = %q, want %q", got, tc.challenge)
				}
				for _, secret := range []string{prod.secret, office.secret, unknown.Secret} {
					if strings.Contains(string(a.body), secret) {
						t.Errorf("the refusal echoes a token: %s", a.body)
					}
				}
			})
		}
	})

	t.Run("caller inside the IP allow list", func(t *testing.T) {
		if err := wantStatus(p.call(t, request{path: "/shop-v1/hello", apiToken: office.secret, from: "127.0.0.1"}), 200); err != nil {
			t.Fatal(err)
		}
	})

	revoked := p.createToken(t, "acme", "prod")
	t.Run("revoked token", func(t *testing.T) {
		p.eventually(t, "the new token is accepted", func() error {
			return wantStatus(p.call(t, request{path: "/shop-v1/hello", apiToken: revoked.secret}), 200)
		})
		p.ctl.run(t, "", "tokens", "revoke", "--client", "acme", "--profile", "prod", revoked.id)
		p.eventually(t, "the revoked token is refused", func() error {
			return wantProblem(p.call(t, request{path: "/shop-v1/hello", apiToken: revoked.secret}), 401, "invalid_credentials")
		})
	})

	t.Run("rate limit", func(t *testing.T) {
		// tight allows a burst of 3 per minute; the test's calls fit well inside a minute.
		for i := range 3 {
			a := p.call(t, request{path: "/shop-v1/hello", apiToken: limited.secret})
			if err := wantStatus(a, 200); err != nil {
				t.Fatalf("call %d: %v", i+1, err)
			}
		}
		a := p.call(t, request{path: "/shop-v1/hello", apiToken: limited.secret})
		if err := wantProblem(a, 429, "rate_limited"); err != nil {
			t.Fatal(err)
		}
		for _, h := range []string{"Retry-After", "RateLimit", "RateLimit-Policy"} {
			if a.header.Get(h) == "" {
				t.Errorf("429 without %s header; headers: %v", h, a.header)
			}
		}
		// Other profiles have their own limits.
		if err := wantStatus(p.call(t, request{path: "/shop-v1/hello", apiToken: prod.secret}), 200); err != nil {
			t.Errorf("another profile after the limit: %v", err)
		}
	})

	// Two of the three calls of the day are used before the authz restarts.
	quotaDay := time.Now().UTC().YearDay()
	for i := range 2 {
		if err := wantStatus(p.call(t, request{path: "/shop-v1/hello", apiToken: metered.secret}), 200); err != nil {
			t.Fatalf("metered call %d: %v", i+1, err)
		}
	}

	pids := p.pids()
	t.Run("config change takes effect without restarts", func(t *testing.T) {
		p.apply(t, changedConfig())
		p.eventually(t, "the new endpoint answers", func() error {
			return wantStatus(p.call(t, request{path: "/shop-v1/goodbye", apiToken: prod.secret}), 200)
		})
		p.eventually(t, "the deactivated endpoint is gone", func() error {
			return wantProblem(p.call(t, request{path: "/shop-v1/hello", apiToken: prod.secret}), 404, "endpoint_not_found")
		})
		if got := p.pids(); !cmp.Equal(pids, got) {
			t.Errorf("processes restarted: before %v, after %v", pids, got)
		}
	})

	t.Run("authz restarted while the control plane is down decides from its saved config", func(t *testing.T) {
		p.cp.stop()
		p.authz.stop()
		// Without its authz, nginx fails closed.
		if err := wantProblem(p.call(t, request{path: "/shop-v1/goodbye", apiToken: prod.secret}), 503, "authz_unavailable"); err != nil {
			t.Errorf("while the authz is down: %v", err)
		}
		p.authz.start()
		waitReady(t, p.authz, "http://"+p.authzHTTP+"/readyz")
		for _, tc := range []struct {
			name   string
			req    request
			status int
			code   string
		}{
			{"endpoint added before the restart", request{path: "/shop-v1/goodbye", apiToken: prod.secret}, 200, ""},
			{"path parameters", request{path: "/shop-v1/invoices/inv-7", apiToken: prod.secret}, 200, ""},
			{"endpoint deactivated before the restart", request{path: "/shop-v1/hello", apiToken: prod.secret}, 404, "endpoint_not_found"},
			{"revoked token", request{path: "/shop-v1/goodbye", apiToken: revoked.secret}, 401, "invalid_credentials"},
			{"collection not granted", request{path: "/internal-v1/report", apiToken: prod.secret}, 403, "collection_not_allowed"},
			{"no credential", request{path: "/shop-v1/goodbye"}, 401, "missing_credentials"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				a := p.call(t, tc.req)
				var err error
				if tc.code == "" {
					err = wantStatus(a, tc.status)
				} else {
					err = wantProblem(a, tc.status, tc.code)
				}
				if err != nil {
					t.Fatal(err)
				}
			})
		}
		t.Run("quota used before the restart still counts", func(t *testing.T) {
			third := p.call(t, request{path: "/shop-v1/goodbye", apiToken: metered.secret})
			fourth := p.call(t, request{path: "/shop-v1/goodbye", apiToken: metered.secret})
			if time.Now().UTC().YearDay() != quotaDay {
				t.Skip("a new UTC day began during the test, so the daily quota started over")
			}
			if err := wantStatus(third, 200); err != nil {
				t.Fatalf("third call of the day: %v", err)
			}
			if err := wantProblem(fourth, 429, "quota_exceeded"); err != nil {
				t.Fatalf("fourth call of the day: %v", err)
			}
			if fourth.header.Get("Retry-After") == "" {
				t.Errorf("quota refusal without Retry-After; headers: %v", fourth.header)
			}
		})
	})
}

// withGoodbye adds the goodbye endpoint to the shop collection of a config.
func withGoodbye(cfg string) string {
	anchor := "recipe_id: shop.get-invoice, active: true}\n"
	return strings.Replace(cfg, anchor, anchor+goodbyeEndpoint, 1)
}

// echo is the part of the example runtime's answer the test compares.
type echo struct {
	RecipeID    string            `json:"recipe_id"`
	Path        string            `json:"path"`
	Query       string            `json:"query,omitempty"`
	Gateway     map[string]string `json:"gatehouse"`
	Params      map[string]string `json:"path_params,omitempty"`
	Credentials []string          `json:"credentials_seen,omitempty"`
}

// problem is an RFC 9457 problem+json refusal.
type problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Code      string `json:"code"`
	RequestID string `json:"request_id"`
}

func wantStatus(a answer, status int) error {
	if a.status != status {
		return fmt.Errorf("status %d, want %d; body: %s", a.status, status, a.body)
	}
	return nil
}

// wantProblem checks a refusal: status, problem+json with the code, and a request id.
func wantProblem(a answer, status int, code string) error {
	if err := wantStatus(a, status); err != nil {
		return err
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		return fmt.Errorf("content type %q, want application/problem+json; body: %s", ct, a.body)
	}
	var pr problem
	if err := json.Unmarshal(a.body, &pr); err != nil {
		return fmt.Errorf("problem body %q: %v", a.body, err)
	}
	want := problem{
		Type: "https://gatehouse.dev/problems/" + code, Status: status, Code: code,
		Title: pr.Title, Detail: pr.Detail, RequestID: pr.RequestID,
	}
	if diff := cmp.Diff(want, pr); diff != "" {
		return fmt.Errorf("problem (-want +got):\n%s", diff)
	}
	if pr.Title == "" || pr.RequestID == "" {
		return fmt.Errorf("problem without title or request id: %s", a.body)
	}
	return nil
}

// eventually retries check until it passes: config changes travel over xDS asynchronously.
func (p *platform) eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after 15s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
