package xds

import (
	"context"
	"errors"
	"testing"
	"time"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// TestFollow drives the one writer with revisions: good ones are published, a build failure
// and an invalid output leave the last good snapshot served, and a closed channel ends it.
func TestFollow(t *testing.T) {
	s := startServer(t)
	f := newFixture(2, "127.0.0.1:8081")
	builds := make(chan func() (uint64, Resources, error), 1)
	revs := make(chan uint64)
	done := make(chan error, 1)
	builds <- func() (uint64, Resources, error) { return 1, f.resources(t), nil }
	go func() {
		done <- s.Follow(context.Background(), revs, func(context.Context) (uint64, Resources, error) {
			return (<-builds)()
		})
	}()
	published := func() uint64 {
		st, err := s.ListNodes(context.Background(), &adminv1.ListNodesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return st.GetPublishedRevision()
	}
	eventually(t, 5*time.Second, func() error {
		if published() != 1 {
			return errorf("initial revision not published")
		}
		return nil
	})

	steps := []struct {
		name  string
		build func() (uint64, Resources, error)
		want  uint64
	}{
		{"build fails", func() (uint64, Resources, error) { return 0, nil, errors.New("store closed") }, 1},
		{"invalid output", func() (uint64, Resources, error) {
			r := f.resources(t)
			delete(r, TypeAuthzPolicy)
			r[TypeAuthzProfile] = append(r[TypeAuthzProfile], r[TypeAuthzProfile][0])
			return 3, r, nil
		}, 1},
		{"good revision", func() (uint64, Resources, error) { return 4, f.resources(t), nil }, 4},
		{"stale revision is not published again", func() (uint64, Resources, error) { return 4, nil, nil }, 4},
	}
	for _, st := range steps {
		builds <- st.build
		revs <- 0
		// The next send on revs is taken only after the build ran; use an empty build as a
		// barrier.
		builds <- func() (uint64, Resources, error) { return 0, nil, errors.New("barrier") }
		revs <- 0
		if got := published(); got != st.want {
			t.Errorf("%s: published revision %d, want %d", st.name, got, st.want)
		}
	}
	close(revs)
	if err := <-done; err == nil {
		t.Error("Follow returned nil after its revision channel closed")
	}
}
