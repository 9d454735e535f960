// Package checktest builds a small authz config with known API tokens, shared by the tests of
// the check pipeline, the servers and the sidecar binary.
package checktest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"gatehouse/authz/apitoken"
	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

// Token ids of the fixture; Fixture.Secrets maps each to its secret.
const (
	TokenSales       = "tok-sales"         // prof-sales: sales collection, no policy
	TokenSalesOld    = "tok-sales-old"     // prof-sales: rotated, in its grace period
	TokenSalesGone   = "tok-sales-gone"    // prof-sales: expired
	TokenHR          = "tok-hr"            // prof-hr: hr collection only
	TokenLimited     = "tok-limited"       // prof-limited: 2 per minute, burst 2
	TokenQuota       = "tok-quota"         // prof-quota: 1 per day
	TokenDisabled    = "tok-disabled"      // prof-disabled: profile inactive
	TokenClientOff   = "tok-client-off"    // prof-client-off: client inactive
	TokenIP          = "tok-ip"            // prof-ip: allow 203.0.113.0/24, deny 203.0.113.66
	TokenNotInConfig = "tok-not-in-config" // a well-formed token that no profile has
)

// Endpoint ids and templates of the fixture.
const (
	EndpointGetOrder   = "ep-get-order"   // GET /sales/orders/{id}
	EndpointListOrders = "ep-list-orders" // GET /sales/orders
	EndpointSummary    = "ep-summary"     // GET /sales/orders/summary
	EndpointItem       = "ep-item"        // GET /sales/orders/{id}/items/{item}
	EndpointCreate     = "ep-create"      // POST /sales/orders
	EndpointPeople     = "ep-people"      // GET /hr/people
	EndpointOld        = "ep-old"         // GET /sales/old, inactive
	ProfileJWT         = "prof-jwt"
)

// Fixture is a config and the secrets of its API tokens.
type Fixture struct {
	Config  *authzv1.Config
	Secrets map[string]string
}

// Secret returns the secret of a fixture token id, panicking on an unknown id (a test bug).
func (f *Fixture) Secret(id string) string {
	s, ok := f.Secrets[id]
	if !ok {
		panic("checktest: unknown token " + id)
	}
	return s
}

// New returns the fixture; expiry times are relative to now.
func New(now time.Time) *Fixture {
	f := &Fixture{Secrets: map[string]string{}}
	tok := func(id string, expire *timestamppb.Timestamp) *authzv1.Token {
		seed := sha256.Sum256([]byte("checktest " + id))
		t, err := apitoken.New(apitoken.APIPrefix, bytes.NewReader(seed[:]))
		if err != nil {
			panic(fmt.Sprintf("checktest: token %s: %v", id, err))
		}
		f.Secrets[id] = t.Secret
		return &authzv1.Token{Id: id, SecretSha256: t.Hash[:], ExpireTime: expire}
	}
	_ = tok(TokenNotInConfig, nil) // minted for its secret only; no profile holds it
	apiProfile := func(name, client string, cols []string, policy string, toks ...*authzv1.Token) *authzv1.Profile {
		return &authzv1.Profile{
			Name: name, ClientId: client, ClientActive: true, Active: true, CollectionIds: cols,
			PolicyId: policy,
			Auth:     &authzv1.Profile_ApiToken{ApiToken: &authzv1.ApiTokenAuth{Tokens: toks}},
		}
	}
	ep := func(name, col, method, tmpl string) *authzv1.Endpoint {
		return &authzv1.Endpoint{
			Name: name, CollectionId: col, CollectionPath: tmpl[1:4], Method: method, PathTemplate: tmpl,
			RecipeId: "recipe-" + name, Active: true, Timeout: durationpb.New(30 * time.Second),
		}
	}
	old := ep(EndpointOld, "col-sales", "GET", "/sales/old")
	old.Active = false

	disabled := apiProfile("prof-disabled", "cl-acme", []string{"col-sales"}, "", tok(TokenDisabled, nil))
	disabled.Active = false
	clientOff := apiProfile("prof-client-off", "cl-gone", []string{"col-sales"}, "", tok(TokenClientOff, nil))
	clientOff.ClientActive = false
	ip := apiProfile("prof-ip", "cl-acme", []string{"col-sales"}, "", tok(TokenIP, nil))
	ip.IpAllow = []string{"203.0.113.0/24", "2001:db8::/32"}
	ip.IpDeny = []string{"203.0.113.66"}

	f.Config = &authzv1.Config{
		Version: "42",
		Endpoints: []*authzv1.Endpoint{
			ep(EndpointGetOrder, "col-sales", "GET", "/sales/orders/{id}"),
			ep(EndpointListOrders, "col-sales", "GET", "/sales/orders"),
			ep(EndpointSummary, "col-sales", "GET", "/sales/orders/summary"),
			ep(EndpointItem, "col-sales", "GET", "/sales/orders/{id}/items/{item}"),
			ep(EndpointCreate, "col-sales", "POST", "/sales/orders"),
			ep(EndpointPeople, "col-hr", "GET", "/hr/people"),
			old,
		},
		Profiles: []*authzv1.Profile{
			apiProfile("prof-sales", "cl-acme", []string{"col-sales"}, "",
				tok(TokenSales, nil),
				tok(TokenSalesOld, timestamppb.New(now.Add(time.Hour))),
				tok(TokenSalesGone, timestamppb.New(now.Add(-time.Minute)))),
			apiProfile("prof-hr", "cl-acme", []string{"col-hr"}, "", tok(TokenHR, nil)),
			apiProfile("prof-limited", "cl-acme", []string{"col-sales"}, "pol-rate", tok(TokenLimited, nil)),
			apiProfile("prof-quota", "cl-acme", []string{"col-sales"}, "pol-quota", tok(TokenQuota, nil)),
			disabled, clientOff, ip,
			{
				Name: ProfileJWT, ClientId: "cl-jwt", ClientActive: true, Active: true,
				CollectionIds: []string{"col-sales"},
				Auth: &authzv1.Profile_Jwt{Jwt: &authzv1.JwtAuth{
					Key:   &authzv1.JwtAuth_HmacSecret{HmacSecret: "fixture-secret-0123456789abcdef0123"},
					Claim: "sub", ClaimValue: "jwt-user",
				}},
			},
		},
		Policies: []*authzv1.Policy{
			{Name: "pol-rate", RateLimit: &authzv1.RateLimit{Requests: 2, Period: durationpb.New(time.Minute), Burst: 2}},
			{Name: "pol-quota", Quota: &authzv1.Quota{Requests: 1, Window: authzv1.Window_WINDOW_DAY}},
		},
	}
	return f
}
