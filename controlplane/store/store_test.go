package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), Config{Path: filepath.Join(t.TempDir(), "sub", "cp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustUpdate(t *testing.T, s *Store, fn func(*Tx) error) uint64 {
	t.Helper()
	rev, err := s.Update(fn)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func TestWritesBumpOneRevisionAndReadsSeeThem(t *testing.T) {
	s := openTest(t)
	col := &adminv1.Collection{Id: "col_a", Name: "Sales", Path: "sales"}
	rev := mustUpdate(t, s, func(tx *Tx) error {
		if err := Put(tx, Collections, col); err != nil {
			return err
		}
		return Put(tx, Endpoints, &adminv1.Endpoint{Id: "ep_1", CollectionId: "col_a", Name: "get"})
	})
	if rev != 1 || s.Revision() != 1 {
		t.Fatalf("revision after one write = %d/%d, want 1", rev, s.Revision())
	}
	err := s.View(func(tx *Tx) error {
		got, err := Get(tx, Collections, "", "col_a")
		if err != nil {
			return err
		}
		if diff := cmp.Diff(col, got, protocmp.Transform()); diff != "" {
			t.Errorf("collection (-want +got):\n%s", diff)
		}
		_, err = Get(tx, Endpoints, "col_a", "ep_1")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if rev := mustUpdate(t, s, func(tx *Tx) error { return nil }); rev != 1 {
		t.Fatalf("a write of nothing moved the revision to %d", rev)
	}
}

func TestFailedUpdateWritesNothing(t *testing.T) {
	s := openTest(t)
	boom := errors.New("boom")
	_, err := s.Update(func(tx *Tx) error {
		if err := Put(tx, Clients, &adminv1.Client{Id: "cli_1", Name: "Acme"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update error = %v, want boom", err)
	}
	if s.Revision() != 0 {
		t.Fatalf("revision %d after a failed write", s.Revision())
	}
	_ = s.View(func(tx *Tx) error {
		if _, err := Get(tx, Clients, "", "cli_1"); !IsNotFound(err) {
			t.Errorf("Get after rollback: %v, want not found", err)
		}
		return nil
	})
}

func TestListPagesByParentInIDOrder(t *testing.T) {
	s := openTest(t)
	mustUpdate(t, s, func(tx *Tx) error {
		for _, p := range []struct{ col, id string }{
			{"col_a", "ep_3"}, {"col_a", "ep_1"}, {"col_b", "ep_0"}, {"col_a", "ep_2"}, {"col_ab", "ep_9"},
		} {
			if err := Put(tx, Endpoints, &adminv1.Endpoint{Id: p.id, CollectionId: p.col}); err != nil {
				return err
			}
		}
		return nil
	})
	ids := func(eps []*adminv1.Endpoint) (out []string) {
		for _, e := range eps {
			out = append(out, e.GetId())
		}
		return out
	}
	_ = s.View(func(tx *Tx) error {
		for _, tc := range []struct {
			name, after string
			limit       int
			want        []string
		}{
			{"first page", "", 2, []string{"ep_1", "ep_2"}},
			{"second page", "ep_2", 2, []string{"ep_3"}},
			{"after the last", "ep_3", 2, nil},
			{"after a deleted id", "ep_15", 0, []string{"ep_2", "ep_3"}},
			{"all", "", 0, []string{"ep_1", "ep_2", "ep_3"}},
		} {
			got, err := List(tx, Endpoints, "col_a", tc.after, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, ids(got)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.name, diff)
			}
		}
		return nil
	})
}

func TestDeleteRefusesWhileReferenced(t *testing.T) {
	s := openTest(t)
	mustUpdate(t, s, func(tx *Tx) error {
		for _, err := range []error{
			Put(tx, Collections, &adminv1.Collection{Id: "col_a", Name: "A"}),
			Put(tx, Endpoints, &adminv1.Endpoint{Id: "ep_1", CollectionId: "col_a", Name: "get"}),
			Put(tx, Policies, &adminv1.AccessPolicy{Id: "pol_1", Name: "gold"}),
			Put(tx, Clients, &adminv1.Client{Id: "cli_1", Name: "Acme"}),
			Put(tx, Profiles, &adminv1.AccessProfile{Id: "prf_1", ClientId: "cli_1", Name: "prod", CollectionIds: []string{"col_a"}, PolicyId: "pol_1"}),
			Put(tx, Tokens, &adminv1.ApiToken{Id: "tok_1", ProfileId: "prf_1", ClientId: "cli_1"}),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	for _, tc := range []struct {
		name   string
		delete func(tx *Tx) error
		want   []Ref
	}{
		{"collection with endpoints and a profile", func(tx *Tx) error { return Delete(tx, Collections, "", "col_a") },
			[]Ref{{"endpoint", "ep_1", "get"}, {"access_profile", "prf_1", "prod"}}},
		{"policy used by a profile", func(tx *Tx) error { return Delete(tx, Policies, "", "pol_1") },
			[]Ref{{"access_profile", "prf_1", "prod"}}},
		{"client with a profile", func(tx *Tx) error { return Delete(tx, Clients, "", "cli_1") },
			[]Ref{{"access_profile", "prf_1", "prod"}}},
		{"profile with a token", func(tx *Tx) error { return Delete(tx, Profiles, "cli_1", "prf_1") },
			[]Ref{{"token", "tok_1", ""}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Update(tc.delete)
			var ref *ReferencedError
			if !errors.As(err, &ref) {
				t.Fatalf("delete error = %v, want *ReferencedError", err)
			}
			if diff := cmp.Diff(tc.want, ref.By); diff != "" {
				t.Errorf("references (-want +got):\n%s", diff)
			}
		})
	}
	if s.Revision() != 1 {
		t.Fatalf("refused deletes moved the revision to %d", s.Revision())
	}
	// Cascading in one transaction works and is one revision.
	rev := mustUpdate(t, s, func(tx *Tx) error {
		for _, err := range []error{
			Delete(tx, Tokens, "prf_1", "tok_1"),
			Delete(tx, Profiles, "cli_1", "prf_1"),
			Delete(tx, Clients, "", "cli_1"),
			Delete(tx, Policies, "", "pol_1"),
			Delete(tx, Endpoints, "col_a", "ep_1"),
			Delete(tx, Collections, "", "col_a"),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	if rev != 2 {
		t.Fatalf("cascade revision = %d, want 2", rev)
	}
	if _, err := s.Update(func(tx *Tx) error { return Delete(tx, Collections, "", "col_a") }); !IsNotFound(err) {
		t.Fatalf("second delete: %v, want not found", err)
	}
}

func TestSubscribersSeeEveryCommitCoalesced(t *testing.T) {
	s := openTest(t)
	ctx, cancel := context.WithCancel(t.Context())
	ch := s.Subscribe(ctx)
	for i := range 5 {
		mustUpdate(t, s, func(tx *Tx) error {
			return Put(tx, Clients, &adminv1.Client{Id: fmt.Sprintf("cli_%d", i)})
		})
	}
	select {
	case rev := <-ch:
		if rev != 5 {
			t.Fatalf("slow subscriber got revision %d, want the newest, 5", rev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no revision delivered")
	}
	cancel()
	for range ch { // drains until closed
	}
}

func TestSnapshotIsSortedAndWholeAtOneRevision(t *testing.T) {
	s := openTest(t)
	mustUpdate(t, s, func(tx *Tx) error {
		for _, id := range []string{"col_c", "col_a", "col_b"} {
			if err := Put(tx, Collections, &adminv1.Collection{Id: id}); err != nil {
				return err
			}
		}
		return Put(tx, Tokens, &adminv1.ApiToken{Id: "tok_1", ProfileId: "prf_1"})
	})
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range snap.Collections {
		got = append(got, c.GetId())
	}
	if diff := cmp.Diff([]string{"col_a", "col_b", "col_c"}, got); diff != "" || snap.Revision != 1 || len(snap.Tokens) != 1 {
		t.Fatalf("snapshot rev %d tokens %d collections (-want +got):\n%s", snap.Revision, len(snap.Tokens), diff)
	}
}

func TestAuditListsNewestFirstWithPagesAndFilter(t *testing.T) {
	s := openTest(t)
	for i := range 5 {
		mustUpdate(t, s, func(tx *Tx) error {
			return AppendAudit(tx, &adminv1.AuditEvent{Action: "create", ResourceId: fmt.Sprintf("r%d", i%2)})
		})
	}
	_ = s.View(func(tx *Tx) error {
		page, err := ListAudit(tx, "", 2, "")
		if err != nil || len(page) != 2 || page[0].GetId() != "5" || page[1].GetId() != "4" {
			t.Fatalf("first page = %v, %v", page, err)
		}
		page, err = ListAudit(tx, "4", 10, "")
		if err != nil || len(page) != 3 || page[0].GetId() != "3" {
			t.Fatalf("page before 4 = %v, %v", page, err)
		}
		page, err = ListAudit(tx, "", 10, "r1")
		if err != nil || len(page) != 2 || page[0].GetId() != "4" || page[1].GetId() != "2" {
			t.Fatalf("filtered = %v, %v", page, err)
		}
		if _, err := ListAudit(tx, "x", 10, ""); err == nil {
			t.Fatal("a malformed page position was accepted")
		}
		return nil
	})
}

func TestReopenKeepsRevisionAndRefusesASecondOpener(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.db")
	s, err := Open(t.Context(), Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, func(tx *Tx) error { return Put(tx, Clients, &adminv1.Client{Id: "cli_1"}) })
	if _, err := Open(t.Context(), Config{Path: path}); err == nil {
		t.Fatal("a second Open of a locked file succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(t.Context(), Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Revision() != 1 {
		t.Fatalf("revision after reopen = %d, want 1", s.Revision())
	}
}

func TestConcurrentWritersNeverMoveTheRevisionBack(t *testing.T) {
	s := openTest(t)
	ch := s.Subscribe(t.Context())
	const writers, each = 4, 25
	done := make(chan error, writers)
	for w := range writers {
		go func() {
			for i := range each {
				_, err := s.Update(func(tx *Tx) error {
					return Put(tx, Clients, &adminv1.Client{Id: fmt.Sprintf("cli_%d_%d", w, i)})
				})
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	var last uint64
	for range writers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Revision(); got != writers*each {
		t.Fatalf("revision %d after %d writes", got, writers*each)
	}
	select {
	case last = <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no revision delivered")
	}
	if last != writers*each {
		t.Fatalf("subscriber's latest revision %d, want %d", last, writers*each)
	}
}
