package check

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/proto"

	"gatehouse/authz/check/checktest"
	"gatehouse/authz/limit"
	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

var testNow = time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)

// fakeJWT accepts "good.jwt" for the fixture's JWT profile.
type fakeJWT struct{}

type classErr string

func (e classErr) Error() string { return "jwt " + string(e) }
func (e classErr) Class() string { return string(e) }

func (fakeJWT) Verify(_ context.Context, tok string, _ time.Time) (JWTResult, error) {
	switch tok {
	case "good.jwt":
		return JWTResult{ProfileID: checktest.ProfileJWT, ClaimsJSON: []byte(`{"sub":"jwt-user"}`)}, nil
	case "other.jwt":
		return JWTResult{ProfileID: "prof-sales", ClaimsJSON: []byte(`{}`)}, nil
	case "nokey.jwt":
		return JWTResult{}, fmt.Errorf("profile %s: %w", checktest.ProfileJWT, ErrKeyUnavailable)
	}
	return JWTResult{}, classErr("signature")
}

func newTestChecker(t testing.TB, f *checktest.Fixture, hops int) *Checker {
	t.Helper()
	c := New(Config{JWT: fakeJWT{}, TrustedHops: hops, Now: func() time.Time { return testNow }})
	if err := c.Swap(context.Background(), f.Config); err != nil {
		t.Fatal(err)
	}
	return c
}

// want is the part of a Decision a test case checks.
type want struct {
	Code      Code
	Profile   string
	TokenID   string
	Auth      AuthKind
	Endpoint  string
	Params    []Param
	Claims    string
	Challenge string
}

func got(d *Decision) want {
	w := want{Code: d.Code, TokenID: d.TokenID, Params: d.Params, Claims: d.Claims, Challenge: d.Challenge}
	if d.Code == OK {
		w.Auth = d.Auth
	}
	if d.Profile != nil {
		w.Profile = d.Profile.ID
	}
	if d.Endpoint != nil {
		w.Endpoint = d.Endpoint.ID
	}
	return w
}

func TestDecide(t *testing.T) {
	f := checktest.New(testNow)
	sec := f.Secret
	bad := []byte(sec(checktest.TokenSales))
	bad[len(bad)-1] ^= 1 // breaks the checksum
	src := netip.MustParseAddr("198.51.100.7")
	tests := []struct {
		name    string
		req     Request
		hops    int
		want    want
		explain string // a word the detail must contain
	}{
		{"api token allowed with params",
			Request{Method: "GET", Path: "/sales/orders/o-1?x=1", Headers: MapHeaders{"api-token": sec(checktest.TokenSales)}},
			0, want{Code: OK, Profile: "prof-sales", TokenID: checktest.TokenSales, Auth: AuthAPIToken, Endpoint: checktest.EndpointGetOrder,
				Params: []Param{{"x-gatehouse-param-id", "o-1"}}}, ""},
		{"endpoint from context extensions",
			Request{Method: "GET", Path: "/sales/orders/o-2/items/3", EndpointID: checktest.EndpointItem, Headers: MapHeaders{"api-token": sec(checktest.TokenSales)}},
			0, want{Code: OK, Profile: "prof-sales", TokenID: checktest.TokenSales, Auth: AuthAPIToken, Endpoint: checktest.EndpointItem,
				Params: []Param{{"x-gatehouse-param-id", "o-2"}, {"x-gatehouse-param-item", "3"}}}, ""},
		{"basic auth allowed",
			Request{Method: "POST", Path: "/sales/orders", Headers: MapHeaders{"authorization": basic("api-token:" + sec(checktest.TokenSales))}},
			0, want{Code: OK, Profile: "prof-sales", TokenID: checktest.TokenSales, Auth: AuthAPIToken, Endpoint: checktest.EndpointCreate}, ""},
		{"rotated token in its grace period",
			Request{Method: "GET", Path: "/sales/orders", Headers: MapHeaders{"api-token": sec(checktest.TokenSalesOld)}},
			0, want{Code: OK, Profile: "prof-sales", TokenID: checktest.TokenSalesOld, Auth: AuthAPIToken, Endpoint: checktest.EndpointListOrders}, ""},
		{"unknown path before credentials",
			Request{Method: "GET", Path: "/sales/nothing"},
			0, want{Code: EndpointNotFound}, "endpoint"},
		{"unknown endpoint id",
			Request{Method: "GET", Path: "/sales/orders", EndpointID: "ep-gone", Headers: MapHeaders{"api-token": sec(checktest.TokenSales)}},
			0, want{Code: EndpointNotFound}, "endpoint"},
		{"inactive endpoint",
			Request{Method: "GET", Path: "/sales/old", Headers: MapHeaders{"api-token": sec(checktest.TokenSales)}},
			0, want{Code: EndpointNotFound}, "endpoint"},
		{"missing credentials",
			Request{Method: "GET", Path: "/sales/orders", Headers: MapHeaders{}},
			0, want{Code: MissingCredentials, Endpoint: checktest.EndpointListOrders, Challenge: challengeBoth}, "no API-Token"},
		{"malformed token",
			Request{Method: "GET", Path: "/sales/orders", Headers: MapHeaders{"api-token": "gth_short"}},
			0, want{Code: InvalidCredentials, Endpoint: checktest.EndpointListOrders, Challenge: ChallengeAPIToken}, "malformed"},
		{"bad checksum",
			Request{Method: "GET", Path: "/sales/orders", Headers: MapHeaders{"api-token": string(bad)}},
			0, want{Code: InvalidCredentials, Endpoint: checktest.EndpointListOrders, Challenge: ChallengeAPIToken}, "malformed"},
		{"well-formed unknown token",
			Request{Method: "GET", Path: "/sales/orders", Headers: MapHeaders{"api-token": sec(checktest.TokenNotInConfig)}},
			0, want{Code: InvalidCredentials, Endpoint: checktest.EndpointListOrders, Challenge: ChallengeAPIToken}, "unknown or revoked"},
		{"expired token",
			Request{Method: "GET", Path: "/sales/orders", Headers: MapHeaders{"api-token": sec(checktest.TokenSalesGone)}},
			0, want{Code: InvalidCredentials, Endpoint: checktest.EndpointListOrders, Challenge: ChallengeAPIToken}, "expired"},
		{"two credentials",
			Request{Method: "GET", Path: "/sales/orders", Headers: MapHeaders{"api-token": sec(checktest.TokenSales), "authorization": "Bearer good.jwt"}},
			0, want{Code: InvalidCredentials, Endpoint: checktest.EndpointListOrders, Challenge: challengeBoth}, "more than one"},
		{"token for another collection",
			Request{Method: "GET", Path: "/sales/orders", Headers: MapHeaders{"api-token": sec(checktest.TokenHR)}},
			0, want{Code: CollectionNotAllowed, Profile: "prof-hr", TokenID: checktest.TokenHR, Endpoint: checktest.EndpointListOrders}, "collection"},
		{"disabled profile",
			Request{Method: "GET", Path: "/sales/orders", Headers: MapHeaders{"api-token": sec(checktest.TokenDisabled)}},
			0, want{Code: ProfileDisabled, Profile: "prof-disabled", TokenID: checktest.TokenDisabled, Endpoint: checktest.EndpointListOrders}, "disabled"},
		{"disabled client",
			Request{Method: "GET", Path: "/sales/orders", Headers: MapHeaders{"api-token": sec(checktest.TokenClientOff)}},
			0, want{Code: ClientDisabled, Profile: "prof-client-off", TokenID: checktest.TokenClientOff, Endpoint: checktest.EndpointListOrders}, "client"},
		{"ip in allow list",
			Request{Method: "GET", Path: "/sales/orders", Source: netip.MustParseAddr("203.0.113.5"), Headers: MapHeaders{"api-token": sec(checktest.TokenIP)}},
			0, want{Code: OK, Profile: "prof-ip", TokenID: checktest.TokenIP, Auth: AuthAPIToken, Endpoint: checktest.EndpointListOrders}, ""},
		{"ipv4-mapped source in allow list",
			Request{Method: "GET", Path: "/sales/orders", Source: netip.MustParseAddr("::ffff:203.0.113.5"), Headers: MapHeaders{"api-token": sec(checktest.TokenIP)}},
			0, want{Code: OK, Profile: "prof-ip", TokenID: checktest.TokenIP, Auth: AuthAPIToken, Endpoint: checktest.EndpointListOrders}, ""},
		{"ip in deny list",
			Request{Method: "GET", Path: "/sales/orders", Source: netip.MustParseAddr("203.0.113.66"), Headers: MapHeaders{"api-token": sec(checktest.TokenIP)}},
			0, want{Code: IPNotAllowed, Profile: "prof-ip", TokenID: checktest.TokenIP, Endpoint: checktest.EndpointListOrders}, "denied"},
		{"ip outside allow list",
			Request{Method: "GET", Path: "/sales/orders", Source: src, Headers: MapHeaders{"api-token": sec(checktest.TokenIP)}},
			0, want{Code: IPNotAllowed, Profile: "prof-ip", TokenID: checktest.TokenIP, Endpoint: checktest.EndpointListOrders}, "allow list"},
		{"spoofed x-forwarded-for without trusted hops",
			Request{Method: "GET", Path: "/sales/orders", Source: src, Headers: MapHeaders{"api-token": sec(checktest.TokenIP), "x-forwarded-for": "203.0.113.5"}},
			0, want{Code: IPNotAllowed, Profile: "prof-ip", TokenID: checktest.TokenIP, Endpoint: checktest.EndpointListOrders}, "allow list"},
		{"spoofed x-forwarded-for entry left of the trusted hop",
			Request{Method: "GET", Path: "/sales/orders", Source: netip.MustParseAddr("10.0.0.2"), Headers: MapHeaders{"api-token": sec(checktest.TokenIP), "x-forwarded-for": "203.0.113.5, 198.51.100.7"}},
			1, want{Code: IPNotAllowed, Profile: "prof-ip", TokenID: checktest.TokenIP, Endpoint: checktest.EndpointListOrders}, "allow list"},
		{"x-forwarded-for through a trusted hop",
			Request{Method: "GET", Path: "/sales/orders", Source: netip.MustParseAddr("10.0.0.2"), Headers: MapHeaders{"api-token": sec(checktest.TokenIP), "x-forwarded-for": "203.0.113.5"}},
			1, want{Code: OK, Profile: "prof-ip", TokenID: checktest.TokenIP, Auth: AuthAPIToken, Endpoint: checktest.EndpointListOrders}, ""},
		{"jwt allowed",
			Request{Method: "GET", Path: "/sales/orders", Headers: MapHeaders{"authorization": "Bearer good.jwt"}},
			0, want{Code: OK, Profile: checktest.ProfileJWT, Auth: AuthJWT, Endpoint: checktest.EndpointListOrders,
				Claims: base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"jwt-user"}`))}, ""},
		{"jwt with bad signature",
			Request{Method: "GET", Path: "/sales/orders", Headers: MapHeaders{"authorization": "Bearer forged.jwt"}},
			0, want{Code: InvalidCredentials, Endpoint: checktest.EndpointListOrders, Challenge: ChallengeBearer}, "signature"},
		{"jwt selecting an api token profile",
			Request{Method: "GET", Path: "/sales/orders", Headers: MapHeaders{"authorization": "Bearer other.jwt"}},
			0, want{Code: InvalidCredentials, Endpoint: checktest.EndpointListOrders, Challenge: ChallengeBearer}, "no access profile"},
		{"jwt keys not fetched",
			Request{Method: "GET", Path: "/sales/orders", Headers: MapHeaders{"authorization": "Bearer nokey.jwt"}},
			0, want{Code: KeyUnavailable, Endpoint: checktest.EndpointListOrders}, "keys"},
		{"jwt over 10 KiB",
			Request{Method: "GET", Path: "/sales/orders", Headers: MapHeaders{"authorization": "Bearer " + strings.Repeat("a", 11<<10)}},
			0, want{Code: InvalidCredentials, Endpoint: checktest.EndpointListOrders, Challenge: ChallengeBearer}, "10 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestChecker(t, f, tt.hops)
			var d Decision
			c.Decide(context.Background(), &tt.req, &d)
			if diff := cmp.Diff(tt.want, got(&d), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
			if !strings.Contains(d.Detail, tt.explain) {
				t.Errorf("detail %q does not mention %q", d.Detail, tt.explain)
			}
			if d.Code != OK && d.RequestID == "" {
				t.Error("refusal without request id")
			}
			for _, s := range f.Secrets {
				if strings.Contains(d.Detail, s) {
					t.Errorf("detail %q contains a token", d.Detail)
				}
			}
		})
	}
}

func TestDecideWithoutConfig(t *testing.T) {
	c := New(Config{})
	if c.Ready() {
		t.Fatal("Ready before any config")
	}
	var d Decision
	c.Decide(context.Background(), &Request{Method: "GET", Path: "/x", Headers: MapHeaders{}, RequestID: "req-1"}, &d)
	if d.Code != ConfigUnavailable || d.Status() != 503 || d.RequestID != "req-1" {
		t.Fatalf("decision = %v %d %q, want config_unavailable 503 req-1", d.Code, d.Status(), d.RequestID)
	}
}

func TestRequestIDs(t *testing.T) {
	c := newTestChecker(t, checktest.New(testNow), 0)
	seen := map[string]bool{}
	for _, id := range []string{"", "has space", strings.Repeat("x", 200), `quote"`} {
		var d Decision
		c.Decide(context.Background(), &Request{Method: "GET", Path: "/nope", Headers: MapHeaders{}, RequestID: id}, &d)
		if d.RequestID == id || !validRequestID(d.RequestID) || seen[d.RequestID] {
			t.Errorf("request id %q became %q, want a fresh generated id", id, d.RequestID)
		}
		seen[d.RequestID] = true
	}
	var d Decision
	c.Decide(context.Background(), &Request{Method: "GET", Path: "/nope", Headers: MapHeaders{}, RequestID: "envoy-id-1"}, &d)
	if d.RequestID != "envoy-id-1" {
		t.Errorf("request id = %q, want the proxy's", d.RequestID)
	}
}

func TestRateLimitAndQuota(t *testing.T) {
	f := checktest.New(testNow)
	tests := []struct {
		name      string
		token     string
		wantCodes []Code
		wantLast  []Header
	}{
		{"rate limit 2 per minute", checktest.TokenLimited, []Code{OK, OK, RateLimited},
			[]Header{{"RateLimit", `"rate";r=0;t=60`}, {"RateLimit-Policy", `"rate";q=2;w=60`}, {"Retry-After", "30"}}},
		{"quota 1 per day", checktest.TokenQuota, []Code{OK, QuotaExceeded},
			[]Header{{"RateLimit", `"quota";r=0;t=43200`}, {"RateLimit-Policy", `"quota";q=1;w=86400`}, {"Retry-After", "43200"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestChecker(t, f, 0)
			var d Decision
			for i, want := range tt.wantCodes {
				c.Decide(context.Background(), &Request{Method: "GET", Path: "/sales/orders", Headers: MapHeaders{"api-token": f.Secret(tt.token)}}, &d)
				if d.Code != want {
					t.Fatalf("call %d: code %v, want %v", i+1, d.Code, want)
				}
			}
			if diff := cmp.Diff(tt.wantLast, d.AppendLimitHeaders(nil)); diff != "" {
				t.Errorf("limit headers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLimiterErrorFailsClosed(t *testing.T) {
	f := checktest.New(testNow)
	c := New(Config{Now: func() time.Time { return testNow }, Limiter: limit.LimiterFunc(
		func(context.Context, limit.Key, limit.Policy, time.Time) (limit.Decision, error) {
			return limit.Decision{}, errors.New("backend down")
		})})
	if err := c.Swap(context.Background(), f.Config); err != nil {
		t.Fatal(err)
	}
	var d Decision
	c.Decide(context.Background(), &Request{Method: "GET", Path: "/sales/orders", Headers: MapHeaders{"api-token": f.Secret(checktest.TokenLimited)}}, &d)
	if d.Code != LimiterUnavailable || d.Status() != 503 {
		t.Fatalf("code %v (%d), want limiter_unavailable 503", d.Code, d.Status())
	}
}

// A rotated token still in its grace period stops working as soon as it is revoked: the
// control plane drops it from the config and the swap takes effect on the next decision.
func TestRevokeEndsGracePeriod(t *testing.T) {
	f := checktest.New(testNow)
	c := newTestChecker(t, f, 0)
	req := &Request{Method: "GET", Path: "/sales/orders", Headers: MapHeaders{"api-token": f.Secret(checktest.TokenSalesOld)}}
	var d Decision
	c.Decide(context.Background(), req, &d)
	if d.Code != OK {
		t.Fatalf("before revoke: %v, want ok", d.Code)
	}
	revoked := proto.Clone(f.Config).(*authzv1.Config)
	auth := revoked.Profiles[0].GetApiToken()
	auth.Tokens = auth.Tokens[:1] // keeps only tok-sales
	revoked.Version = "43"
	if err := c.Swap(context.Background(), revoked); err != nil {
		t.Fatal(err)
	}
	c.Decide(context.Background(), req, &d)
	if d.Code != InvalidCredentials || d.ConfigVersion != "43" {
		t.Fatalf("after revoke: %v at version %q, want invalid_credentials at 43", d.Code, d.ConfigVersion)
	}
}

func TestSwapKeepsLastGoodConfig(t *testing.T) {
	f := checktest.New(testNow)
	c := newTestChecker(t, f, 0)
	broken := proto.Clone(f.Config).(*authzv1.Config)
	broken.Version = "43"
	broken.Profiles[0].PolicyId = "missing"
	if err := c.Swap(context.Background(), broken); err == nil {
		t.Fatal("Swap accepted a config with a missing policy")
	}
	if v := c.Index().Version(); v != "42" {
		t.Fatalf("version after refused swap = %q, want 42", v)
	}
}
