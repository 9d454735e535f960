package ctl

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/testing/protocmp"

	"gatehouse/controlplane/ctl/internal/cptest"
)

// TestReadStateFollowsPages reads the same state with pages of one item and of the default
// size: apply and export must see every resource however many pages the server returns.
func TestReadStateFollowsPages(t *testing.T) {
	cp := cptest.Start(t)
	doc := "policies: [{name: p1}, {name: p2}, {name: p3}]\ncollections:\n"
	for c := range 3 {
		doc += fmt.Sprintf("  - {name: c%d, version: v1, path: c%d, endpoints: [{name: a, method: GET, path: /a, recipe_id: r}, {name: b, method: GET, path: /b, recipe_id: r}, {name: c, method: GET, path: /c, recipe_id: r}]}\n", c, c)
	}
	doc += "clients:\n"
	for c := range 3 {
		doc += fmt.Sprintf("  - {name: k%d, access_profiles: [{name: x, auth: {api_token: {}}}, {name: y, auth: {api_token: {}}}, {name: z, collections: [c0, c1], auth: {api_token: {}}}]}\n", c)
	}
	cc, err := grpc.NewClient(cp.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(bearer(cp.Token)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	ctx := context.Background()
	a := newAPI(cc)
	spec, err := testDecoder(nil).DecodeSpec([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	empty, err := a.readState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := MakePlan(spec, empty, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.execute(ctx, plan, empty, io.Discard); err != nil {
		t.Fatal(err)
	}

	whole, err := a.readState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(whole.Endpoints) + len(whole.Profiles); n != 6 {
		t.Fatalf("read %d endpoint and profile lists, want 6", n)
	}
	paged := newAPI(cc)
	paged.pageSize = 1
	got, err := paged.readState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(whole, got, protocmp.Transform()); diff != "" {
		t.Errorf("state read one item per page differs (-whole +paged):\n%s", diff)
	}
	if plan, err := MakePlan(spec, got, true); err != nil || len(plan) != 0 {
		t.Errorf("plan against the paged state = %v, %v; want no changes", plan, err)
	}
}
