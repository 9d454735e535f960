package store

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// TestSnapshotSharesUnchangedMessages checks what later stages rely on: a resource whose bytes
// did not change is the same message in the next Snapshot, a changed one is decoded afresh,
// and a deleted one is gone.
func TestSnapshotSharesUnchangedMessages(t *testing.T) {
	s := openTest(t)
	mustUpdate(t, s, func(tx *Tx) error {
		if err := Put(tx, Collections, &adminv1.Collection{Id: "col_a", Path: "a"}); err != nil {
			return err
		}
		for _, id := range []string{"ep_1", "ep_2", "ep_3"} {
			if err := Put(tx, Endpoints, &adminv1.Endpoint{Id: id, CollectionId: "col_a", RecipeId: "r"}); err != nil {
				return err
			}
		}
		return nil
	})
	first, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, func(tx *Tx) error {
		if err := Put(tx, Endpoints, &adminv1.Endpoint{Id: "ep_2", CollectionId: "col_a", RecipeId: "changed"}); err != nil {
			return err
		}
		if err := Put(tx, Endpoints, &adminv1.Endpoint{Id: "ep_0", CollectionId: "col_a", RecipeId: "new"}); err != nil {
			return err
		}
		return Delete(tx, Endpoints, "col_a", "ep_3")
	})
	second, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	want := []*adminv1.Endpoint{
		{Id: "ep_0", CollectionId: "col_a", RecipeId: "new"},
		{Id: "ep_1", CollectionId: "col_a", RecipeId: "r"},
		{Id: "ep_2", CollectionId: "col_a", RecipeId: "changed"},
	}
	if diff := cmp.Diff(want, second.Endpoints, protocmp.Transform()); diff != "" {
		t.Fatalf("endpoints (-want +got):\n%s", diff)
	}
	if first.Collections[0] != second.Collections[0] {
		t.Error("unchanged collection was decoded again")
	}
	if first.Endpoints[0] != second.Endpoints[1] {
		t.Error("unchanged endpoint ep_1 was decoded again")
	}
	if first.Endpoints[1] == second.Endpoints[2] {
		t.Error("changed endpoint ep_2 kept its old message")
	}
	if first.Endpoints[1].GetRecipeId() != "r" {
		t.Error("a later write changed a message of an earlier snapshot")
	}
	if n := len(s.decode.buckets[Endpoints.bucket]); n != 3 {
		t.Errorf("endpoint cache holds %d entries, want 3 (deleted ones dropped)", n)
	}
}
