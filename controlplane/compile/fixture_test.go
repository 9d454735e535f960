package compile

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"gatehouse/controlplane/store"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// fixture is a small representative snapshot: two collections, literal and templated
// endpoints, an inactive one, API-token and JWT profiles, a disabled client, policies and a
// revoked token.
func fixture() *store.Snapshot {
	hash := func(b byte) []byte {
		h := make([]byte, 32)
		for i := range h {
			h[i] = b
		}
		return h
	}
	return &store.Snapshot{
		Revision: 42,
		Collections: []*adminv1.Collection{
			{Id: "col-hr", Name: "HR", Version: "v2", Path: "hr-v2"},
			{Id: "col-sales", Name: "Sales", Version: "v1", Path: "sales-api-v1"},
		},
		Endpoints: []*adminv1.Endpoint{
			{Id: "ep-payslip", CollectionId: "col-hr", Name: "payslip", Method: "GET",
				Path: "/employees/{employee_id}/payslips/{month}", RecipeId: "rcp-payslip",
				Active: proto.Bool(true), Timeout: durationpb.New(60 * time.Second)},
			{Id: "ep-root", CollectionId: "col-hr", Name: "root", Method: "GET", Path: "/",
				RecipeId: "rcp-root", Active: proto.Bool(true)},
			{Id: "ep-create-invoice", CollectionId: "col-sales", Name: "create", Method: "POST",
				Path: "/invoices", RecipeId: "rcp-create", Active: proto.Bool(true)},
			{Id: "ep-delete-invoice", CollectionId: "col-sales", Name: "delete", Method: "DELETE",
				Path: "/invoices/{id}", RecipeId: "rcp-delete", Active: proto.Bool(false)},
			{Id: "ep-get-invoice", CollectionId: "col-sales", Name: "get", Method: "GET",
				Path: "/invoices/{id}", RecipeId: "rcp-get", Active: proto.Bool(true)},
			{Id: "ep-latest-invoice", CollectionId: "col-sales", Name: "latest", Method: "GET",
				Path: "/invoices/latest", RecipeId: "rcp-latest", Active: proto.Bool(true)},
			{Id: "ep-list-invoices", CollectionId: "col-sales", Name: "list", Method: "GET",
				Path: "/invoices", RecipeId: "rcp-list", Active: proto.Bool(true)},
			{Id: "ep-report", CollectionId: "col-sales", Name: "report", Method: "GET",
				Path: "/reports/{year}/q1.v2+csv", RecipeId: "rcp:report.v2", Active: proto.Bool(true),
				Timeout: durationpb.New(1500 * time.Millisecond)},
		},
		Clients: []*adminv1.Client{
			{Id: "cl-acme", Name: "Acme"},
			{Id: "cl-globex", Name: "Globex", Active: proto.Bool(false)},
		},
		Profiles: []*adminv1.AccessProfile{
			{Id: "pr-acme-jwt", ClientId: "cl-acme", Name: "jwt",
				CollectionIds: []string{"col-sales"},
				Auth: &adminv1.AccessProfile_Jwt{Jwt: &adminv1.JwtAuth{
					Key:       &adminv1.JwtAuth_HmacSecret{HmacSecret: "0123456789abcdef0123456789abcdef"},
					Issuers:   []string{"https://idp.example.com"},
					Audiences: []string{"gatehouse"}, RequiredClaims: []string{"exp"},
					Algorithms: []string{"HS256"},
				}},
				PolicyId: "po-silver"},
			{Id: "pr-acme-tokens", ClientId: "cl-acme", Name: "tokens",
				CollectionIds: []string{"col-sales", "col-hr"},
				Auth:          &adminv1.AccessProfile_ApiToken{ApiToken: &adminv1.ApiTokenAuth{}},
				PolicyId:      "po-gold", IpAllow: []string{"10.0.0.0/8", "2001:db8::/32"},
				IpDeny: []string{"10.9.0.0/16"}},
			{Id: "pr-globex-keys", ClientId: "cl-globex", Name: "keys", Active: proto.Bool(false),
				CollectionIds: []string{"col-hr"},
				Auth: &adminv1.AccessProfile_Jwt{Jwt: &adminv1.JwtAuth{
					Key: &adminv1.JwtAuth_PublicKeys{PublicKeys: &adminv1.PublicKeys{
						Pem: []string{"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n"},
					}},
					Claim: "client_id", ClaimValue: "globex",
				}}},
		},
		Tokens: []*adminv1.ApiToken{
			{Id: "tk-1", ClientId: "cl-acme", ProfileId: "pr-acme-tokens", SecretSha256: hash(1)},
			{Id: "tk-2", ClientId: "cl-acme", ProfileId: "pr-acme-tokens", SecretSha256: hash(2),
				ExpireTime: timestamppb.New(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)), RotatedToId: "tk-3"},
			{Id: "tk-3", ClientId: "cl-acme", ProfileId: "pr-acme-tokens", SecretSha256: hash(3)},
			{Id: "tk-revoked", ClientId: "cl-acme", ProfileId: "pr-acme-tokens", SecretSha256: hash(4),
				RevokeTime: timestamppb.New(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))},
		},
		Policies: []*adminv1.AccessPolicy{
			{Id: "po-gold", Name: "gold",
				RateLimit: &adminv1.RateLimit{Requests: 100, Per: "minute"},
				Quota:     &adminv1.Quota{Requests: 100000, Per: "month"}},
			{Id: "po-silver", Name: "silver",
				RateLimit: &adminv1.RateLimit{Requests: 5, Per: "second", Burst: 10}},
		},
	}
}

// shuffled returns a copy of snap with every slice in a random order.
func shuffled(snap *store.Snapshot, seed uint64) *store.Snapshot {
	r := rand.New(rand.NewPCG(seed, seed))
	out := &store.Snapshot{
		Revision:    snap.Revision,
		Collections: slices.Clone(snap.Collections),
		Endpoints:   slices.Clone(snap.Endpoints),
		Clients:     slices.Clone(snap.Clients),
		Profiles:    slices.Clone(snap.Profiles),
		Tokens:      slices.Clone(snap.Tokens),
		Policies:    slices.Clone(snap.Policies),
	}
	r.Shuffle(len(out.Collections), func(i, j int) { out.Collections[i], out.Collections[j] = out.Collections[j], out.Collections[i] })
	r.Shuffle(len(out.Endpoints), func(i, j int) { out.Endpoints[i], out.Endpoints[j] = out.Endpoints[j], out.Endpoints[i] })
	r.Shuffle(len(out.Clients), func(i, j int) { out.Clients[i], out.Clients[j] = out.Clients[j], out.Clients[i] })
	r.Shuffle(len(out.Profiles), func(i, j int) { out.Profiles[i], out.Profiles[j] = out.Profiles[j], out.Profiles[i] })
	r.Shuffle(len(out.Tokens), func(i, j int) { out.Tokens[i], out.Tokens[j] = out.Tokens[j], out.Tokens[i] })
	r.Shuffle(len(out.Policies), func(i, j int) { out.Policies[i], out.Policies[j] = out.Policies[j], out.Policies[i] })
	return out
}

// largeSnapshot has n endpoints in n/100 collections (at least one): a third literal, the rest
// templated, every tenth inactive, plus a profile per collection.
func largeSnapshot(n int) *store.Snapshot {
	ncol := max(n/100, 1)
	snap := &store.Snapshot{Revision: uint64(n)}
	snap.Clients = []*adminv1.Client{{Id: "cl-0", Name: "c"}}
	snap.Policies = []*adminv1.AccessPolicy{{Id: "po-0", Name: "p", RateLimit: &adminv1.RateLimit{Requests: 10, Per: "second"}}}
	methods := []string{"GET", "POST", "PUT", "PATCH", "DELETE"}
	for c := range ncol {
		id := fmt.Sprintf("col-%06d", c)
		snap.Collections = append(snap.Collections, &adminv1.Collection{Id: id, Name: id, Version: "v1", Path: fmt.Sprintf("api-%d", c)})
		snap.Profiles = append(snap.Profiles, &adminv1.AccessProfile{
			Id: fmt.Sprintf("pr-%06d", c), ClientId: "cl-0", Name: "p", CollectionIds: []string{id},
			Auth: &adminv1.AccessProfile_ApiToken{ApiToken: &adminv1.ApiTokenAuth{}}, PolicyId: "po-0",
		})
		snap.Tokens = append(snap.Tokens, &adminv1.ApiToken{Id: fmt.Sprintf("tk-%06d", c), ProfileId: fmt.Sprintf("pr-%06d", c), SecretSha256: make([]byte, 32)})
	}
	for i := range n {
		var path string
		switch i % 3 {
		case 0:
			path = fmt.Sprintf("/things-%d", i)
		case 1:
			path = fmt.Sprintf("/things-%d/{id}", i)
		default:
			path = fmt.Sprintf("/orgs/{org}/things-%d/{id}/items", i)
		}
		snap.Endpoints = append(snap.Endpoints, &adminv1.Endpoint{
			Id: fmt.Sprintf("ep-%07d", i), CollectionId: fmt.Sprintf("col-%06d", i%ncol), Name: "e",
			Method: methods[i%len(methods)], Path: path, RecipeId: fmt.Sprintf("rcp-%d", i),
			Active: proto.Bool(i%10 != 0), Timeout: durationpb.New(10 * time.Second),
		})
	}
	return snap
}

// mustCompile compiles or fails the test.
func mustCompile(t testing.TB, snap *store.Snapshot, s Settings) *Output {
	t.Helper()
	out, err := Compile(snap, s)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return out
}

// allResources lists every output resource with a "type/name" key.
func allResources(out *Output) map[string]types.Resource {
	m := map[string]types.Resource{}
	for typ, rs := range out.Envoy {
		for _, r := range rs {
			m[typ+"/"+ResourceName(r)] = r
		}
	}
	for typ, rs := range out.Authz {
		for _, r := range rs {
			m[typ+"/"+ResourceName(r)] = r
		}
	}
	return m
}
