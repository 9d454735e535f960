package compile

import (
	"bytes"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"gatehouse/controlplane/store"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

// TestCompilerMatchesCompile runs one Compiler through a series of revisions, each sharing the
// unchanged messages of the one before as store.Snapshot does, and checks that every output is
// byte-equal to a fresh Compile of the same snapshot, and that unchanged endpoints keep their
// resources.
func TestCompilerMatchesCompile(t *testing.T) {
	steps := []struct {
		name   string
		change func(*store.Snapshot)
		// kept are endpoint ids whose authz resource must be the one of the previous step.
		kept []string
	}{
		{name: "first", change: func(*store.Snapshot) {}},
		{name: "unchanged", change: func(*store.Snapshot) {}, kept: []string{"ep-payslip", "ep-root"}},
		{
			name: "endpoint recipe",
			change: func(s *store.Snapshot) {
				s.Endpoints[0] = proto.Clone(s.Endpoints[0]).(*adminv1.Endpoint)
				s.Endpoints[0].RecipeId = "rcp-changed"
			},
			kept: []string{"ep-root"},
		},
		{
			name: "endpoint deactivated",
			change: func(s *store.Snapshot) {
				s.Endpoints[1] = proto.Clone(s.Endpoints[1]).(*adminv1.Endpoint)
				s.Endpoints[1].Active = proto.Bool(false)
				s.Endpoints[1].Timeout = durationpb.New(7e9)
			},
			kept: []string{"ep-payslip"},
		},
		{
			name: "collection path changes its endpoints",
			change: func(s *store.Snapshot) {
				s.Collections[0] = proto.Clone(s.Collections[0]).(*adminv1.Collection)
				s.Collections[0].Path = "hr-v3"
			},
		},
		{
			name: "endpoint deleted",
			change: func(s *store.Snapshot) {
				s.Endpoints = slices.Delete(slices.Clone(s.Endpoints), 1, 2)
			},
			kept: []string{"ep-payslip"},
		},
	}
	c, err := NewCompiler(Settings{RuntimePathPrefix: "/api"})
	if err != nil {
		t.Fatal(err)
	}
	snap := fixture()
	var prev map[string]*authzv1.Endpoint
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			next := *snap
			next.Revision++
			st.change(&next)
			snap = &next
			got, err := c.Compile(snap)
			if err != nil {
				t.Fatal(err)
			}
			want := marshalAll(t, mustCompile(t, snap, Settings{RuntimePathPrefix: "/api"}))
			if diff := cmp.Diff(want, marshalAll(t, got), cmp.Comparer(bytes.Equal)); diff != "" {
				t.Errorf("Compiler output differs from Compile (-Compile +Compiler):\n%s", diff)
			}
			eps := map[string]*authzv1.Endpoint{}
			for _, r := range got.Authz[AuthzEndpointType] {
				eps[ResourceName(r)] = r.(*authzv1.Endpoint)
			}
			for _, id := range st.kept {
				if eps[id] == nil || eps[id] != prev[id] {
					t.Errorf("endpoint %s was rebuilt although unchanged", id)
				}
			}
			prev = eps
		})
	}
}

// BenchmarkCompilerOneChange measures a compile of 10,000 endpoints after one endpoint
// changed, with the resources of the others reused.
func BenchmarkCompilerOneChange(b *testing.B) {
	snap := largeSnapshot(10000)
	c, err := NewCompiler(Settings{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.Compile(snap); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		next := *snap
		next.Endpoints = slices.Clone(snap.Endpoints)
		k := (i * 7919) % len(next.Endpoints)
		next.Endpoints[k] = proto.Clone(next.Endpoints[k]).(*adminv1.Endpoint)
		next.Endpoints[k].RecipeId = "changed"
		snap = &next
		i++
		if _, err := c.Compile(snap); err != nil {
			b.Fatal(err)
		}
	}
}
