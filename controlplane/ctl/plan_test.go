package ctl

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// storedState is exampleYAML as the control plane stores it: ids, etags and defaults filled in,
// the HMAC secret replaced by its hash and the JWT claim value defaulted to the profile id.
func storedState() *State {
	return &State{
		Policies: []*adminv1.AccessPolicy{{
			Id: "pol_1", Name: "standard", Etag: "3",
			RateLimit: &adminv1.RateLimit{Requests: 100, Per: "minute", Burst: 100},
			Quota:     &adminv1.Quota{Requests: 10000, Per: "month"},
		}},
		Collections: []*adminv1.Collection{{Id: "col_1", Name: "Sales", Version: "v1", Path: "sales-api-v1", Etag: "4"}},
		Endpoints: map[string][]*adminv1.Endpoint{"col_1": {{
			Id: "ep_1", CollectionId: "col_1", Name: "get-invoice", Method: "GET", Path: "/invoices/{id}",
			RecipeId: "rcp_123", Active: proto.Bool(true), Timeout: durationpb.New(30 * time.Second), Etag: "5",
		}}},
		Clients: []*adminv1.Client{{Id: "cli_1", Name: "Acme", Email: "ops@acme.example", Active: proto.Bool(true), Etag: "6"}},
		Profiles: map[string][]*adminv1.AccessProfile{"cli_1": {
			{
				Id: "prf_1", ClientId: "cli_1", Name: "acme-prod", CollectionIds: []string{"col_1"}, PolicyId: "pol_1",
				IpAllow: []string{"10.0.0.0/8"}, Active: proto.Bool(true), Etag: "7",
				Auth: &adminv1.AccessProfile_ApiToken{ApiToken: &adminv1.ApiTokenAuth{}},
			},
			{
				Id: "prf_2", ClientId: "cli_1", Name: "acme-jwt", Active: proto.Bool(true), Etag: "8",
				Auth: &adminv1.AccessProfile_Jwt{Jwt: &adminv1.JwtAuth{
					Claim: "sub", ClaimValue: "prf_2", Audiences: []string{"gatehouse"},
					HmacSecretSha256: secretSHA256(testSecret),
				}},
			},
		}},
	}
}

func emptyState() *State {
	return &State{Endpoints: map[string][]*adminv1.Endpoint{}, Profiles: map[string][]*adminv1.AccessProfile{}}
}

func TestMakePlan(t *testing.T) {
	extra := func(s *State) *State {
		s.Policies = append(s.Policies, &adminv1.AccessPolicy{Id: "pol_9", Name: "old"})
		s.Collections = append(s.Collections, &adminv1.Collection{Id: "col_9", Name: "Legacy", Version: "v0", Path: "legacy"})
		s.Endpoints["col_1"] = append(s.Endpoints["col_1"], &adminv1.Endpoint{Id: "ep_9", CollectionId: "col_1", Name: "gone"})
		s.Clients = append(s.Clients, &adminv1.Client{Id: "cli_9", Name: "Former"})
		s.Profiles["cli_1"] = append(s.Profiles["cli_1"], &adminv1.AccessProfile{Id: "prf_9", ClientId: "cli_1", Name: "stale"})
		return s
	}
	tests := []struct {
		name  string
		yaml  string // default exampleYAML
		state *State
		prune bool
		want  []string
	}{
		{
			name:  "fresh control plane creates in dependency order",
			state: emptyState(),
			want: []string{
				`+ create policy "standard"`,
				`+ create collection "Sales"`,
				`+ create endpoint "Sales/get-invoice"`,
				`+ create client "Acme"`,
				`+ create access profile "Acme/acme-prod"`,
				`+ create access profile "Acme/acme-jwt"`,
			},
		},
		{
			name:  "stored state with server defaults is no change",
			state: storedState(),
		},
		{
			name:  "resources absent from the file are left alone without prune",
			state: extra(storedState()),
		},
		{
			name:  "prune deletes what the file does not name, dependents first",
			state: extra(storedState()),
			prune: true,
			want: []string{
				`- delete endpoint "Sales/gone"`,
				`- delete access profile "Acme/stale"`,
				`- delete client "Former"`,
				`- delete collection "Legacy"`,
				`- delete policy "old"`,
			},
		},
		{
			name:  "changed fields become one update naming them",
			yaml:  strings.NewReplacer("requests: 100,", "requests: 50,", `timeout: 30s`, `timeout: 10s`, "10.0.0.0/8", "10.1.2.3/8, 192.0.2.1").Replace(exampleYAML),
			state: storedState(),
			want: []string{
				`~ update policy "standard" (rate_limit)`,
				`~ update endpoint "Sales/get-invoice" (timeout)`,
				`~ update access profile "Acme/acme-prod" (ip_allow)`,
			},
		},
		{
			name:  "a different HMAC secret is an update of jwt",
			yaml:  strings.Replace(exampleYAML, "ACME_SECRET", "OTHER_SECRET", 1),
			state: storedState(),
			want:  []string{`~ update access profile "Acme/acme-jwt" (jwt)`},
		},
		{
			name:  "switching auth names both members of the oneof",
			yaml:  strings.Replace(exampleYAML, "jwt: {hmac_secret_env: ACME_SECRET, audiences: [gatehouse]}", "api_token: {}", 1),
			state: storedState(),
			want:  []string{`~ update access profile "Acme/acme-jwt" (api_token, jwt)`},
		},
		{
			name:  "collections compare as a set of names; a removed policy is cleared",
			yaml:  strings.Replace(exampleYAML, ", policy: standard", "", 1),
			state: storedState(),
			want:  []string{`~ update access profile "Acme/acme-prod" (policy_id)`},
		},
		{
			name:  "new endpoint of an existing collection",
			yaml:  strings.Replace(exampleYAML, `      - {name: get-invoice`, "      - {name: list, method: GET, path: /invoices, recipe_id: r2}\n      - {name: get-invoice", 1),
			state: storedState(),
			want:  []string{`+ create endpoint "Sales/list"`},
		},
	}
	env := map[string]string{"ACME_SECRET": testSecret, "OTHER_SECRET": testSecret + "-2"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := tt.yaml
			if doc == "" {
				doc = exampleYAML
			}
			spec, err := testDecoder(env).DecodeSpec([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			plan, err := MakePlan(spec, tt.state, tt.prune)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range plan {
				got = append(got, a.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMakePlanRefusesUnknownReferences(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		state *State
		prune bool
		want  string
	}{
		{
			name:  "collection defined nowhere",
			yaml:  "clients: [{name: A, access_profiles: [{name: p, collections: [Nope], auth: {api_token: {}}}]}]",
			state: emptyState(),
			want:  `access profile "p" of client "A": collection "Nope" is not defined`,
		},
		{
			name:  "policy defined nowhere",
			yaml:  "clients: [{name: A, access_profiles: [{name: p, policy: gold, auth: {api_token: {}}}]}]",
			state: emptyState(),
			want:  `policy "gold" is not defined`,
		},
		{
			name:  "policy only on the server, pruned",
			yaml:  "clients: [{name: A, access_profiles: [{name: p, policy: standard, auth: {api_token: {}}}]}]",
			state: storedState(),
			prune: true,
			want:  `policy "standard" is not defined`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := testDecoder(nil).DecodeSpec([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			_, err = MakePlan(spec, tt.state, tt.prune)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("MakePlan error = %v, want %q", err, tt.want)
			}
		})
	}
	// Without prune, a reference to what the server already has is fine.
	spec, err := testDecoder(nil).DecodeSpec([]byte("clients: [{name: A, access_profiles: [{name: p, policy: standard, collections: [Sales], auth: {api_token: {}}}]}]"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := MakePlan(spec, storedState(), false); err != nil {
		t.Errorf("MakePlan with references to stored resources: %v", err)
	}
}
