package admin

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"gatehouse/controlplane/store"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

func TestCollectionLifecycleOverGRPC(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	created := must[*adminv1.Collection](t)(e.cols.CreateCollection(ctx, &adminv1.CreateCollectionRequest{
		Collection: &adminv1.Collection{Id: "ignored", Name: "Sales", Version: "v1", Path: "sales-api", Description: "d", Etag: "99"},
	}))
	if !strings.HasPrefix(created.Id, "col_") || created.Etag != "2" || created.CreateTime == nil {
		t.Fatalf("server fields not set: %v", created)
	}
	got := must[*adminv1.Collection](t)(e.cols.GetCollection(ctx, &adminv1.GetCollectionRequest{Id: created.Id}))
	diff(t, created, got, protocmp.Transform())

	// Update with a mask changes only the named field and bumps the etag.
	e.clock.advance(time.Minute)
	upd := must[*adminv1.Collection](t)(e.cols.UpdateCollection(ctx, &adminv1.UpdateCollectionRequest{
		Collection: &adminv1.Collection{Id: created.Id, Name: "Sales 2", Description: "not applied", Etag: created.Etag},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name"}},
	}))
	want := proto.Clone(created).(*adminv1.Collection)
	want.Name, want.Etag, want.UpdateTime = "Sales 2", "3", upd.UpdateTime
	diff(t, want, upd, protocmp.Transform())
	if !upd.UpdateTime.AsTime().Equal(e.clock.now()) {
		t.Errorf("update_time = %v, want %v", upd.UpdateTime.AsTime(), e.clock.now())
	}

	// An empty mask updates the fields the request sets.
	upd = must[*adminv1.Collection](t)(e.cols.UpdateCollection(ctx, &adminv1.UpdateCollectionRequest{
		Collection: &adminv1.Collection{Id: created.Id, Description: "new"},
	}))
	if upd.Description != "new" || upd.Name != "Sales 2" || upd.Path != "sales-api" {
		t.Errorf("empty-mask update = %v", upd)
	}

	// A stale etag is refused and changes nothing.
	rev := e.store.Revision()
	_, err := e.cols.UpdateCollection(ctx, &adminv1.UpdateCollectionRequest{
		Collection: &adminv1.Collection{Id: created.Id, Name: "x", Etag: created.Etag},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name"}},
	})
	wantCode(t, err, codes.Aborted)
	if !strings.Contains(status.Convert(err).Message(), "get it again") {
		t.Errorf("stale etag message %q does not say to re-read", status.Convert(err).Message())
	}
	_, err = e.cols.DeleteCollection(ctx, &adminv1.DeleteCollectionRequest{Id: created.Id, Etag: created.Etag})
	wantCode(t, err, codes.Aborted)
	if e.store.Revision() != rev {
		t.Errorf("refused writes moved the revision from %d to %d", rev, e.store.Revision())
	}

	must[*adminv1.ListCollectionsResponse](t)(e.cols.ListCollections(ctx, &adminv1.ListCollectionsRequest{}))
	if _, err := e.cols.DeleteCollection(ctx, &adminv1.DeleteCollectionRequest{Id: created.Id, Etag: upd.Etag}); err != nil {
		t.Fatal(err)
	}
	_, err = e.cols.GetCollection(ctx, &adminv1.GetCollectionRequest{Id: created.Id})
	wantCode(t, err, codes.NotFound)
	_, err = e.cols.DeleteCollection(ctx, &adminv1.DeleteCollectionRequest{Id: created.Id})
	wantCode(t, err, codes.NotFound)
}

func TestCollectionLifecycleOverREST(t *testing.T) {
	e := newEnv(t)
	r := e.rest("POST", "/v1/collections", `{"name":"Sales","version":"v1","path":"sales"}`)
	if r.code != 200 {
		t.Fatalf("create: %d %s", r.code, r.body)
	}
	col := r.json(t)
	id := col["id"].(string)
	if _, ok := col["create_time"]; !ok {
		t.Errorf("create response %s lacks snake_case create_time", r.body)
	}
	if r := e.rest("GET", "/v1/collections/"+id, ""); r.code != 200 || r.json(t)["path"] != "sales" {
		t.Fatalf("get: %d %s", r.code, r.body)
	}
	// PATCH takes its mask from the body: only description changes.
	r = e.rest("PATCH", "/v1/collections/"+id, `{"description":"Sales API","etag":"`+col["etag"].(string)+`"}`)
	if r.code != 200 || r.json(t)["description"] != "Sales API" || r.json(t)["name"] != "Sales" {
		t.Fatalf("patch: %d %s", r.code, r.body)
	}
	etag := r.json(t)["etag"].(string)
	if r := e.rest("PATCH", "/v1/collections/"+id, `{"name":"x","etag":"`+col["etag"].(string)+`"}`); r.code != 409 {
		t.Fatalf("stale patch: %d %s, want 409", r.code, r.body)
	}
	if r := e.rest("PATCH", "/v1/collections/"+id, `{"create_time":"2020-01-01T00:00:00Z"}`); r.code != 400 {
		t.Fatalf("patch of an output-only field: %d %s, want 400", r.code, r.body)
	}
	if r := e.rest("GET", "/v1/collections/col_missing", ""); r.code != 404 {
		t.Fatalf("get missing: %d %s", r.code, r.body)
	}
	if r := e.rest("DELETE", "/v1/collections/"+id+"?etag=1", ""); r.code != 409 {
		t.Fatalf("delete with stale etag: %d %s", r.code, r.body)
	}
	if r := e.rest("DELETE", "/v1/collections/"+id+"?etag="+url.QueryEscape(etag), ""); r.code != 200 {
		t.Fatalf("delete: %d %s", r.code, r.body)
	}
}

func TestCollectionConflicts(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	a := must[*adminv1.Collection](t)(e.cols.CreateCollection(ctx, &adminv1.CreateCollectionRequest{
		Collection: &adminv1.Collection{Name: "A", Version: "v1", Path: "a"},
	}))
	b := must[*adminv1.Collection](t)(e.cols.CreateCollection(ctx, &adminv1.CreateCollectionRequest{
		Collection: &adminv1.Collection{Name: "B", Version: "v1", Path: "b"},
	}))
	tests := []struct {
		name   string
		call   func() error
		reason string
	}{
		{"create with a taken path", func() error {
			_, err := e.cols.CreateCollection(ctx, &adminv1.CreateCollectionRequest{Collection: &adminv1.Collection{Name: "C", Version: "v1", Path: "a"}})
			return err
		}, reasonDuplicatePath},
		{"create with a taken name", func() error {
			_, err := e.cols.CreateCollection(ctx, &adminv1.CreateCollectionRequest{Collection: &adminv1.Collection{Name: "A", Version: "v1", Path: "c"}})
			return err
		}, reasonDuplicateName},
		{"update onto a taken path", func() error {
			_, err := e.cols.UpdateCollection(ctx, &adminv1.UpdateCollectionRequest{Collection: &adminv1.Collection{Id: b.Id, Path: a.Path}})
			return err
		}, reasonDuplicatePath},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			wantCode(t, err, codes.AlreadyExists)
			if got := errorReason(err); got != tc.reason {
				t.Errorf("reason = %q, want %q", got, tc.reason)
			}
		})
	}
	if r := e.rest("POST", "/v1/collections", `{"name":"Z","version":"v1","path":"a"}`); r.code != 409 {
		t.Errorf("REST duplicate path: %d %s, want 409", r.code, r.body)
	}
}

// errorReason returns the reason of a status error's ErrorInfo detail.
func errorReason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei.GetReason()
		}
	}
	return ""
}

func TestEndpoints(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	col := must[*adminv1.Collection](t)(e.cols.CreateCollection(ctx, &adminv1.CreateCollectionRequest{
		Collection: &adminv1.Collection{Name: "Sales", Version: "v1", Path: "sales"},
	}))
	newEp := func(name, method, path string) *adminv1.CreateEndpointRequest {
		return &adminv1.CreateEndpointRequest{CollectionId: col.Id, Endpoint: &adminv1.Endpoint{Name: name, Method: method, Path: path, RecipeId: "recipe-1"}}
	}
	ep := must[*adminv1.Endpoint](t)(e.eps.CreateEndpoint(ctx, newEp("get invoice", "GET", "/invoices/{id}")))
	if ep.GetActive() || ep.Active == nil {
		t.Errorf("new endpoint active = %v, want an explicit false", ep.Active)
	}
	if ep.GetTimeout().AsDuration() != 30*time.Second {
		t.Errorf("timeout = %v, want the 30s default", ep.GetTimeout().AsDuration())
	}
	if ep.CollectionId != col.Id {
		t.Errorf("collection_id = %q, want %q", ep.CollectionId, col.Id)
	}

	t.Run("route clash", func(t *testing.T) {
		_, err := e.eps.CreateEndpoint(ctx, newEp("latest", "GET", "/invoices/latest"))
		wantCode(t, err, codes.AlreadyExists)
		if errorReason(err) != reasonRouteClash || !strings.Contains(status.Convert(err).Message(), ep.Id) {
			t.Errorf("clash error %v does not name %s", err, ep.Id)
		}
	})
	t.Run("same path other method", func(t *testing.T) {
		must[*adminv1.Endpoint](t)(e.eps.CreateEndpoint(ctx, newEp("put invoice", "PUT", "/invoices/{number}")))
	})
	t.Run("duplicate name", func(t *testing.T) {
		_, err := e.eps.CreateEndpoint(ctx, newEp("get invoice", "GET", "/orders"))
		wantCode(t, err, codes.AlreadyExists)
	})
	t.Run("unknown collection", func(t *testing.T) {
		req := newEp("x", "GET", "/x")
		req.CollectionId = "col_missing"
		_, err := e.eps.CreateEndpoint(ctx, req)
		wantCode(t, err, codes.NotFound)
		_, err = e.eps.ListEndpoints(ctx, &adminv1.ListEndpointsRequest{CollectionId: "col_missing"})
		wantCode(t, err, codes.NotFound)
	})
	t.Run("update into a clash", func(t *testing.T) {
		other := must[*adminv1.Endpoint](t)(e.eps.CreateEndpoint(ctx, newEp("list", "GET", "/invoices")))
		rev := e.store.Revision()
		_, err := e.eps.UpdateEndpoint(ctx, &adminv1.UpdateEndpointRequest{
			Endpoint:   &adminv1.Endpoint{Id: other.Id, CollectionId: col.Id, Path: "/invoices/{x}"},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"path"}},
		})
		wantCode(t, err, codes.AlreadyExists)
		if e.store.Revision() != rev {
			t.Error("a refused update wrote")
		}
	})
	t.Run("activate and time out", func(t *testing.T) {
		upd := must[*adminv1.Endpoint](t)(e.eps.UpdateEndpoint(ctx, &adminv1.UpdateEndpointRequest{
			Endpoint:   &adminv1.Endpoint{Id: ep.Id, CollectionId: col.Id, Active: proto.Bool(true), Timeout: durationpb.New(240 * time.Second)},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"active", "timeout"}},
		}))
		if !upd.GetActive() || upd.GetTimeout().AsDuration() != 240*time.Second || upd.Path != ep.Path {
			t.Errorf("update = %v", upd)
		}
		// A REST PATCH of one field keeps the others.
		r := e.rest("PATCH", "/v1/collections/"+col.Id+"/endpoints/"+ep.Id, `{"timeout":"10s"}`)
		if r.code != 200 || r.json(t)["timeout"] != "10s" || r.json(t)["active"] != true {
			t.Errorf("patch: %d %s", r.code, r.body)
		}
	})
	t.Run("delete", func(t *testing.T) {
		r := e.rest("DELETE", "/v1/collections/"+col.Id+"/endpoints/"+ep.Id, "")
		if r.code != 200 {
			t.Fatalf("delete: %d %s", r.code, r.body)
		}
		_, err := e.eps.GetEndpoint(ctx, &adminv1.GetEndpointRequest{CollectionId: col.Id, Id: ep.Id})
		wantCode(t, err, codes.NotFound)
	})
}

func TestCollectionDeleteWithEndpointsAndProfiles(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	f := e.fixture("sales")
	for i := range 3 {
		must[*adminv1.Endpoint](t)(e.eps.CreateEndpoint(ctx, &adminv1.CreateEndpointRequest{CollectionId: f.col.Id,
			Endpoint: &adminv1.Endpoint{Name: fmt.Sprint("ep", i), Method: "GET", Path: fmt.Sprint("/e", i), RecipeId: "r"}}))
	}
	// Without force: refused, naming the endpoints.
	_, err := e.cols.DeleteCollection(ctx, &adminv1.DeleteCollectionRequest{Id: f.col.Id})
	wantCode(t, err, codes.FailedPrecondition)
	if !strings.Contains(status.Convert(err).Message(), "force") {
		t.Errorf("message %q does not mention force", status.Convert(err).Message())
	}
	subjects := preconditionSubjects(err)
	if len(subjects) != 4 { // three endpoints and the profile
		t.Errorf("referrers = %v, want 3 endpoints and 1 profile", subjects)
	}
	// With force but a profile still naming it: refused, and the endpoints survive.
	r := e.rest("DELETE", "/v1/collections/"+f.col.Id+"?force=true", "")
	if r.code != 409 {
		t.Fatalf("forced delete while a profile names it: %d %s, want 409", r.code, r.body)
	}
	eps := must[*adminv1.ListEndpointsResponse](t)(e.eps.ListEndpoints(ctx, &adminv1.ListEndpointsRequest{CollectionId: f.col.Id}))
	if len(eps.Endpoints) != 3 {
		t.Fatalf("a refused delete removed endpoints: %d left", len(eps.Endpoints))
	}
	// Once the profile lets go, force deletes the endpoints with the collection.
	must[*adminv1.AccessProfile](t)(e.prfs.UpdateAccessProfile(ctx, &adminv1.UpdateAccessProfileRequest{
		AccessProfile: &adminv1.AccessProfile{Id: f.prf.Id, ClientId: f.cli.Id},
		UpdateMask:    &fieldmaskpb.FieldMask{Paths: []string{"collection_ids"}},
	}))
	if _, err := e.cols.DeleteCollection(ctx, &adminv1.DeleteCollectionRequest{Id: f.col.Id, Force: true}); err != nil {
		t.Fatal(err)
	}
	err = e.store.View(func(tx *store.Tx) error {
		left, err := store.List(tx, store.Endpoints, f.col.Id, "", 0)
		if len(left) != 0 {
			t.Errorf("%d endpoints survived a forced delete", len(left))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	evs := must[*adminv1.ListAuditEventsResponse](t)(e.auditLog.ListAuditEvents(ctx, &adminv1.ListAuditEventsRequest{ResourceId: f.col.Id, PageSize: 4}))
	var kinds []string
	for _, ev := range evs.AuditEvents {
		kinds = append(kinds, ev.Action+" "+ev.ResourceType)
	}
	slices.Sort(kinds)
	diff(t, []string{"delete collection", "delete endpoint", "delete endpoint", "delete endpoint"}, kinds)
}

// preconditionSubjects returns the subjects of a status error's PreconditionFailure detail.
func preconditionSubjects(err error) []string {
	var out []string
	for _, d := range status.Convert(err).Details() {
		if pf, ok := d.(*errdetails.PreconditionFailure); ok {
			for _, v := range pf.GetViolations() {
				out = append(out, v.GetSubject())
			}
		}
	}
	return out
}
