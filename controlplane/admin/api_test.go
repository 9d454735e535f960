package admin

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"

	"gatehouse/authz/apitoken"
	"gatehouse/controlplane/store"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

func TestAdminAuth(t *testing.T) {
	e := newEnv(t)
	unknown := must[string](t)(NewAdminToken())
	tests := []struct {
		name          string
		authorization string
		ok            bool
	}{
		{"valid", "Bearer " + e.token, true},
		{"scheme is case-insensitive", "bearer " + e.token, true},
		{"missing", "", false},
		{"unknown token", "Bearer " + unknown, false},
		{"API token instead of admin token", "Bearer gth_" + e.token[4:], false},
		{"bad checksum", "Bearer " + e.token[:len(e.token)-1] + "x", false},
		{"basic auth", "Basic " + e.token, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.authorization != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", tc.authorization)
			}
			_, err := e.clis.ListClients(ctx, &adminv1.ListClientsRequest{})
			r := e.restAs("GET", "/v1/clients", "", tc.authorization)
			if tc.ok {
				if err != nil || r.code != 200 {
					t.Fatalf("gRPC %v, REST %d %s", err, r.code, r.body)
				}
				return
			}
			wantCode(t, err, codes.Unauthenticated)
			if r.code != 401 || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("REST: %d %v, want 401 with WWW-Authenticate", r.code, r.header)
			}
			if strings.Contains(err.Error(), e.token[4:20]) || strings.Contains(string(r.body), e.token[4:20]) {
				t.Error("the error echoes the presented token")
			}
		})
	}
	// Health, OpenAPI and metrics are open.
	for _, path := range []string{"/healthz", "/readyz", "/openapi.json", "/metrics"} {
		if r := e.restAs("GET", path, "", ""); r.code != 200 {
			t.Errorf("GET %s: %d", path, r.code)
		}
	}
}

func TestBootstrap(t *testing.T) {
	ctx := context.Background()
	open := func(t *testing.T, path string) *store.Store {
		st, err := store.Open(ctx, store.Config{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	t.Run("first start creates one token, later starts none", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "cp.db")
		st := open(t, path)
		first := must[string](t)(Bootstrap(ctx, st, "", fixedNow))
		if apitoken.Check(apitoken.AdminPrefix, first) != nil {
			t.Fatalf("bootstrap token %q is not a well-formed admin token", first[:10])
		}
		_ = st.Close()
		st = open(t, path)
		defer st.Close()
		if again := must[string](t)(Bootstrap(ctx, st, "", fixedNow)); again != "" {
			t.Error("a second start printed another token")
		}
		var stored []*adminv1.AdminToken
		err := st.View(func(tx *store.Tx) error {
			var err error
			stored, err = store.List(tx, store.AdminTokens, "", "", 0)
			return err
		})
		if err != nil || len(stored) != 1 {
			t.Fatalf("stored admin tokens: %v, %v", stored, err)
		}
		if sum := apitoken.Hash(first); string(stored[0].SecretSha256) != string(sum[:]) {
			t.Error("the stored value is not the token's hash")
		}
	})
	t.Run("environment token", func(t *testing.T) {
		st := open(t, filepath.Join(t.TempDir(), "cp.db"))
		defer st.Close()
		envTok := must[string](t)(NewAdminToken())
		if s := must[string](t)(Bootstrap(ctx, st, envTok, fixedNow)); s != "" {
			t.Error("an environment token start printed a token")
		}
		rev := st.Revision()
		must[string](t)(Bootstrap(ctx, st, envTok, fixedNow))
		if st.Revision() != rev {
			t.Error("restarting with the same environment token wrote")
		}
		srv := must[*Server](t)(New(Config{Store: st}))
		if _, err := srv.auth.authenticate(ctx, "Bearer "+envTok); err != nil {
			t.Errorf("environment token refused: %v", err)
		}
		// A new value replaces the old one.
		next := must[string](t)(NewAdminToken())
		must[string](t)(Bootstrap(ctx, st, next, fixedNow))
		if _, err := srv.auth.authenticate(ctx, "Bearer "+envTok); err == nil {
			t.Error("the replaced environment token still works")
		}
		if _, err := srv.auth.authenticate(ctx, "Bearer "+next); err != nil {
			t.Errorf("the new environment token is refused: %v", err)
		}
	})
	t.Run("malformed environment token refuses to start", func(t *testing.T) {
		st := open(t, filepath.Join(t.TempDir(), "cp.db"))
		defer st.Close()
		_, err := Bootstrap(ctx, st, "changeme", fixedNow)
		if err == nil || !strings.Contains(err.Error(), "admin-token") || strings.Contains(err.Error(), "changeme") {
			t.Errorf("error = %v: must say how to make a token and not echo the value", err)
		}
	})
}

func TestAuditLog(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	f := e.fixture("sales")
	before := e.store.Revision()
	upd := must[*adminv1.Client](t)(e.clis.UpdateClient(ctx, &adminv1.UpdateClientRequest{Client: &adminv1.Client{Id: f.cli.Id, Description: "x"}}))
	evs := must[*adminv1.ListAuditEventsResponse](t)(e.auditLog.ListAuditEvents(ctx, &adminv1.ListAuditEventsRequest{ResourceId: f.cli.Id}))
	if len(evs.AuditEvents) != 3 { // create client, create profile (child), update client
		t.Fatalf("events of the client: %v", evs.AuditEvents)
	}
	got := evs.AuditEvents[0]
	adminID := adminTokenID(t, e)
	want := &adminv1.AuditEvent{
		Id: got.Id, Time: upd.UpdateTime, Actor: adminID + " (bootstrap)", Action: "update", ResourceType: "client",
		ResourceId: f.cli.Id, ResourceName: f.cli.Name, RevisionBefore: before, RevisionAfter: before + 1,
	}
	diff(t, want, got, protocmp.Transform())

	// REST changes are audited the same way.
	r := e.rest("PATCH", "/v1/clients/"+f.cli.Id, `{"description":"y"}`)
	if r.code != 200 {
		t.Fatal(r.code, string(r.body))
	}
	r = e.rest("GET", "/v1/audit-events?page_size=1&resource_id="+f.cli.Id, "")
	events, _ := r.json(t)["audit_events"].([]any)
	if len(events) != 1 || events[0].(map[string]any)["revision_after"] != fmt.Sprint(before+2) {
		t.Errorf("REST audit listing: %s", r.body)
	}
}

func adminTokenID(t *testing.T, e *env) string {
	t.Helper()
	var id string
	err := e.store.View(func(tx *store.Tx) error {
		toks, err := store.List(tx, store.AdminTokens, "", "", 1)
		if len(toks) == 1 {
			id = toks[0].Id
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestPaging(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	var want []string
	for i := range 25 {
		c := must[*adminv1.Client](t)(e.clis.CreateClient(ctx, &adminv1.CreateClientRequest{Client: &adminv1.Client{Name: fmt.Sprint("c", i)}}))
		want = append(want, c.Id)
	}
	slices.Sort(want)
	var got []string
	token := ""
	pages := 0
	for {
		resp := must[*adminv1.ListClientsResponse](t)(e.clis.ListClients(ctx, &adminv1.ListClientsRequest{PageSize: 10, PageToken: token}))
		pages++
		for _, c := range resp.Clients {
			got = append(got, c.Id)
		}
		if token = resp.NextPageToken; token == "" {
			break
		}
	}
	if pages != 3 {
		t.Errorf("pages = %d, want 3", pages)
	}
	diff(t, want, got)

	// A token of one list is refused by another.
	first := must[*adminv1.ListClientsResponse](t)(e.clis.ListClients(ctx, &adminv1.ListClientsRequest{PageSize: 1}))
	_, err := e.cols.ListCollections(ctx, &adminv1.ListCollectionsRequest{PageToken: first.NextPageToken})
	wantCode(t, err, codes.InvalidArgument)
	diff(t, []string{"page_token"}, violationFields(err))

	// Audit pages walk back through history without repeats.
	seen := map[string]bool{}
	token = ""
	for {
		resp := must[*adminv1.ListAuditEventsResponse](t)(e.auditLog.ListAuditEvents(ctx, &adminv1.ListAuditEventsRequest{PageSize: 7, PageToken: token}))
		for _, ev := range resp.AuditEvents {
			if seen[ev.Id] {
				t.Fatalf("event %s on two pages", ev.Id)
			}
			seen[ev.Id] = true
		}
		if token = resp.NextPageToken; token == "" {
			break
		}
	}
	if len(seen) != 26 { // 25 clients and the bootstrap admin token
		t.Errorf("audit events = %d, want 26", len(seen))
	}
	// REST pages too.
	r := e.rest("GET", "/v1/clients?page_size=20", "")
	if r.code != 200 || r.json(t)["next_page_token"] == nil {
		t.Fatalf("REST page: %d %s", r.code, r.body)
	}
	r = e.rest("GET", "/v1/clients?page_size=20&page_token="+r.json(t)["next_page_token"].(string), "")
	if clients, _ := r.json(t)["clients"].([]any); len(clients) != 5 {
		t.Errorf("REST second page has %d clients, want 5", len(clients))
	}
}

func TestMetricsCountBothTransports(t *testing.T) {
	e := newEnv(t)
	must[*adminv1.ListClientsResponse](t)(e.clis.ListClients(e.ctx(), &adminv1.ListClientsRequest{}))
	e.rest("GET", "/v1/clients", "")
	e.restAs("GET", "/v1/clients", "", "")
	body := string(e.restAs("GET", "/metrics", "", "").body)
	for _, want := range []string{
		`gatehouse_admin_requests_total{code="OK",method="/gatehouse.admin.v1.ClientService/ListClients",transport="grpc"} 1`,
		`gatehouse_admin_requests_total{code="200",method="GET /v1/clients",transport="rest"} 1`,
		`gatehouse_admin_requests_total{code="401",method="GET /v1/clients",transport="rest"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestRESTReadsEveryResource(t *testing.T) {
	e := newEnv(t)
	f := e.fixture("sales")
	ep := must[*adminv1.Endpoint](t)(e.eps.CreateEndpoint(e.ctx(), &adminv1.CreateEndpointRequest{CollectionId: f.col.Id,
		Endpoint: &adminv1.Endpoint{Name: "e", Method: "GET", Path: "/e", RecipeId: "r"}}))
	tok := must[*adminv1.TokenSecret](t)(e.toks.CreateToken(e.ctx(), &adminv1.CreateTokenRequest{ClientId: f.cli.Id, ProfileId: f.prf.Id}))
	prf := "/v1/clients/" + f.cli.Id + "/access-profiles/" + f.prf.Id
	tests := []struct {
		name, path, list, id string
	}{
		{"collection", "/v1/collections/", "collections", f.col.Id},
		{"endpoint", "/v1/collections/" + f.col.Id + "/endpoints/", "endpoints", ep.Id},
		{"client", "/v1/clients/", "clients", f.cli.Id},
		{"access profile", "/v1/clients/" + f.cli.Id + "/access-profiles/", "access_profiles", f.prf.Id},
		{"token", prf + "/tokens/", "tokens", tok.Token.Id},
		{"policy", "/v1/policies/", "policies", f.pol.Id},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.rest("GET", tc.path+tc.id, "")
			if r.code != 200 || r.json(t)["id"] != tc.id {
				t.Errorf("get: %d %s", r.code, r.body)
			}
			r = e.rest("GET", strings.TrimSuffix(tc.path, "/"), "")
			items, _ := r.json(t)[tc.list].([]any)
			if r.code != 200 || len(items) != 1 {
				t.Errorf("list: %d %s", r.code, r.body)
			}
			if r := e.rest("GET", tc.path+"missing", ""); r.code != 404 {
				t.Errorf("get unknown id: %d %s", r.code, r.body)
			}
			if r := e.rest("DELETE", tc.path+"missing", ""); r.code != 404 && (tc.name != "token" || r.code != 405) {
				t.Errorf("delete unknown id: %d %s", r.code, r.body)
			}
		})
	}
}

// fakeStatus is a StatusService with a fixed answer.
type fakeStatus struct {
	adminv1.UnimplementedStatusServiceServer
}

func (fakeStatus) ListNodes(context.Context, *adminv1.ListNodesRequest) (*adminv1.ListNodesResponse, error) {
	return &adminv1.ListNodesResponse{PublishedRevision: 42}, nil
}

func TestRESTServesExtraServicesBehindAuth(t *testing.T) {
	e := newEnv(t)
	h, err := e.srv.HTTPHandler(context.Background(), HTTPConfig{Services: []func(context.Context, *runtime.ServeMux) error{
		func(ctx context.Context, m *runtime.ServeMux) error {
			return adminv1.RegisterStatusServiceHandlerServer(ctx, m, fakeStatus{})
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, authorization string
		code                int
	}{
		{"no token", "", 401},
		{"admin token", "Bearer " + e.token, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/v1/status/nodes", nil)
			if tc.authorization != "" {
				req.Header.Set("Authorization", tc.authorization)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.code {
				t.Fatalf("GET /v1/status/nodes: %d %s, want %d", rec.Code, rec.Body, tc.code)
			}
			if tc.code != 200 {
				return
			}
			got := &adminv1.ListNodesResponse{}
			if err := protojson.Unmarshal(rec.Body.Bytes(), got); err != nil || got.PublishedRevision != 42 {
				t.Errorf("body %s: %v", rec.Body, err)
			}
		})
	}
}
