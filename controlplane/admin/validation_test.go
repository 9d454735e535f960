package admin

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// TestValidation checks that bad input is refused with INVALID_ARGUMENT naming every bad field,
// and that nothing is written.
func TestValidation(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	f := e.fixture("sales")
	weakKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	apiToken := &adminv1.AccessProfile_ApiToken{ApiToken: &adminv1.ApiTokenAuth{}}
	profile := func(p *adminv1.AccessProfile) func(context.Context) error {
		return func(ctx context.Context) error {
			if p.Name == "" {
				p.Name = "p"
			}
			_, err := e.prfs.CreateAccessProfile(ctx, &adminv1.CreateAccessProfileRequest{ClientId: f.cli.Id, AccessProfile: p})
			return err
		}
	}
	jwt := func(j *adminv1.JwtAuth) *adminv1.AccessProfile_Jwt { return &adminv1.AccessProfile_Jwt{Jwt: j} }
	endpoint := func(ep *adminv1.Endpoint) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := e.eps.CreateEndpoint(ctx, &adminv1.CreateEndpointRequest{CollectionId: f.col.Id, Endpoint: ep})
			return err
		}
	}
	tests := []struct {
		name   string
		call   func(context.Context) error
		fields []string
	}{
		{"collection: every field wrong at once", func(ctx context.Context) error {
			_, err := e.cols.CreateCollection(ctx, &adminv1.CreateCollectionRequest{Collection: &adminv1.Collection{Version: "version-too-long", Path: "Bad Path"}})
			return err
		}, []string{"collection.name", "collection.version", "collection.path"}},
		{"collection: reserved path", func(ctx context.Context) error {
			_, err := e.cols.CreateCollection(ctx, &adminv1.CreateCollectionRequest{Collection: &adminv1.Collection{Name: "o", Version: "v1", Path: "oauth2"}})
			return err
		}, []string{"collection.path"}},
		{"collection: missing", func(ctx context.Context) error {
			_, err := e.cols.CreateCollection(ctx, &adminv1.CreateCollectionRequest{})
			return err
		}, []string{"collection"}},
		{"endpoint: method, path, recipe", endpoint(&adminv1.Endpoint{Name: "e", Method: "TRACE", Path: "invoices", RecipeId: ""}),
			[]string{"endpoint.method", "endpoint.path", "endpoint.recipe_id"}},
		{"endpoint: repeated parameter", endpoint(&adminv1.Endpoint{Name: "e", Method: "GET", Path: "/{id}/x/{id}", RecipeId: "r"}),
			[]string{"endpoint.path"}},
		{"endpoint: timeout over 240s", endpoint(&adminv1.Endpoint{Name: "e", Method: "GET", Path: "/x", RecipeId: "r", Timeout: durationpb.New(241 * time.Second)}),
			[]string{"endpoint.timeout"}},
		{"endpoint: zero timeout", endpoint(&adminv1.Endpoint{Name: "e", Method: "GET", Path: "/x", RecipeId: "r", Timeout: durationpb.New(0)}),
			[]string{"endpoint.timeout"}},
		{"client: bad email", func(ctx context.Context) error {
			_, err := e.clis.CreateClient(ctx, &adminv1.CreateClientRequest{Client: &adminv1.Client{Name: "c", Email: "not-an-email"}})
			return err
		}, []string{"client.email"}},
		{"policy: periods and zero requests", func(ctx context.Context) error {
			_, err := e.pols.CreatePolicy(ctx, &adminv1.CreatePolicyRequest{Policy: &adminv1.AccessPolicy{Name: "p",
				RateLimit: &adminv1.RateLimit{Requests: 0, Per: "day"}, Quota: &adminv1.Quota{Requests: 1, Per: "year"}}})
			return err
		}, []string{"policy.rate_limit.requests", "policy.rate_limit.per", "policy.quota.per"}},
		{"profile: no auth", profile(&adminv1.AccessProfile{}), []string{"access_profile.auth"}},
		{"profile: bad CIDRs", profile(&adminv1.AccessProfile{Auth: apiToken, IpAllow: []string{"10.0.0.0/33", "ok?"}, IpDeny: []string{"fe80::1%eth0"}}),
			[]string{"access_profile.ip_allow[0]", "access_profile.ip_allow[1]", "access_profile.ip_deny[0]"}},
		{"profile: unknown collection and policy", profile(&adminv1.AccessProfile{Auth: apiToken, CollectionIds: []string{f.col.Id, "col_missing"}, PolicyId: "pol_missing"}),
			[]string{"access_profile.collection_ids[1]", "access_profile.policy_id"}},
		{"profile: repeated collection", profile(&adminv1.AccessProfile{Auth: apiToken, CollectionIds: []string{f.col.Id, f.col.Id}}),
			[]string{"access_profile.collection_ids[1]"}},
		{"jwt: no key", profile(&adminv1.AccessProfile{Auth: jwt(&adminv1.JwtAuth{})}), []string{"access_profile.jwt.key"}},
		{"jwt: short HMAC secret", profile(&adminv1.AccessProfile{Auth: jwt(&adminv1.JwtAuth{Key: &adminv1.JwtAuth_HmacSecret{HmacSecret: "short"}})}),
			[]string{"access_profile.jwt.hmac_secret"}},
		{"jwt: private and weak keys", profile(&adminv1.AccessProfile{Auth: jwt(&adminv1.JwtAuth{Key: &adminv1.JwtAuth_PublicKeys{PublicKeys: &adminv1.PublicKeys{Pem: []string{
			string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{1}})),
			pemPublic(t, &weakKey.PublicKey),
			"not pem",
		}}}})}), []string{"access_profile.jwt.public_keys.pem[0]", "access_profile.jwt.public_keys.pem[1]", "access_profile.jwt.public_keys.pem[2]"}},
		{"jwt: HMAC algorithm with a JWKS", profile(&adminv1.AccessProfile{Auth: jwt(&adminv1.JwtAuth{Key: &adminv1.JwtAuth_JwksUrl{JwksUrl: "https://x.example/jwks"}, Algorithms: []string{"RS256", "HS256"}})}),
			[]string{"access_profile.jwt.algorithms[1]"}},
		{"jwt: non-http issuer and bad claim", profile(&adminv1.AccessProfile{Auth: jwt(&adminv1.JwtAuth{Key: &adminv1.JwtAuth_OidcIssuer{OidcIssuer: "ftp://x.example"}, Claim: "a b"})}),
			[]string{"access_profile.jwt.claim", "access_profile.jwt.oidc_issuer"}},
		{"list: page size", func(ctx context.Context) error {
			_, err := e.clis.ListClients(ctx, &adminv1.ListClientsRequest{PageSize: 1001})
			return err
		}, []string{"page_size"}},
		{"update: unknown and output-only mask paths", func(ctx context.Context) error {
			_, err := e.cols.UpdateCollection(ctx, &adminv1.UpdateCollectionRequest{Collection: &adminv1.Collection{Id: f.col.Id},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"nmae", "create_time", "name.x"}}})
			return err
		}, []string{"update_mask.paths[0]", "update_mask.paths[1]", "update_mask.paths[2]"}},
		{"update: no id", func(ctx context.Context) error {
			_, err := e.eps.UpdateEndpoint(ctx, &adminv1.UpdateEndpointRequest{Endpoint: &adminv1.Endpoint{Name: "x"}})
			return err
		}, []string{"endpoint.collection_id", "endpoint.id"}},
		{"update: no resource", func(ctx context.Context) error {
			_, err := e.clis.UpdateClient(ctx, &adminv1.UpdateClientRequest{})
			return err
		}, []string{"client"}},
		{"update: top-level resource without id", func(ctx context.Context) error {
			_, err := e.pols.UpdatePolicy(ctx, &adminv1.UpdatePolicyRequest{Policy: &adminv1.AccessPolicy{Name: "x"}})
			return err
		}, []string{"policy.id"}},
		{"update: merged result invalid", func(ctx context.Context) error {
			_, err := e.cols.UpdateCollection(ctx, &adminv1.UpdateCollectionRequest{Collection: &adminv1.Collection{Id: f.col.Id},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name", "path"}}})
			return err
		}, []string{"collection.name", "collection.path"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rev := e.store.Revision()
			err := tc.call(ctx)
			wantCode(t, err, codes.InvalidArgument)
			diff(t, tc.fields, violationFields(err))
			msg := status.Convert(err).Message()
			for _, f := range tc.fields {
				if !strings.Contains(msg, f) {
					t.Errorf("message %q does not name %s", msg, f)
				}
			}
			if e.store.Revision() != rev {
				t.Error("a refused request wrote")
			}
		})
	}
}

func TestRESTValidationErrors(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		code   int
		fields []string
	}{
		{"unknown JSON field", "POST", "/v1/collections", `{"name":"a","version":"v1","path":"a","colour":"red"}`, 400, []string{"colour"}},
		{"bad timestamp", "POST", "/v1/clients", `{"name":"a","create_time":"yesterday"}`, 400, nil},
		{"bad fields", "POST", "/v1/collections", `{"name":"","version":"v1","path":"UPPER"}`, 400, []string{"collection.name", "collection.path"}},
		{"not JSON", "POST", "/v1/policies", `{"name":`, 400, nil},
		{"wrong type", "POST", "/v1/policies", `{"name":"p","rate_limit":{"requests":"many"}}`, 400, nil},
		{"bad page token", "GET", "/v1/clients?page_token=bm9wZQ", "", 400, []string{"page_token"}},
		{"unknown route", "GET", "/v1/nothing", "", 404, nil},
		{"wrong method", "PUT", "/v1/clients", "{}", 405, nil},
		{"body over 1 MiB", "POST", "/v1/collections", `{"name":"` + strings.Repeat("a", 1<<20) + `"}`, 413, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.rest(tc.method, tc.path, tc.body)
			if r.code != tc.code {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, r.code, r.body, tc.code)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q", ct)
			}
			if tc.fields != nil {
				diff(t, tc.fields, restViolations(t, r))
			}
		})
	}
}
