package limit

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

const testBucket = "limit_quota_test"

func openDB(t *testing.T, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// sidecar is one life of a sidecar process: its bbolt file, limiter and
// persister.
type sidecar struct {
	db  *bolt.DB
	mem *Memory
	per *Persister
}

func startSidecar(t *testing.T, path string, now time.Time, interval time.Duration) *sidecar {
	t.Helper()
	s := &sidecar{db: openDB(t, path), mem: NewMemory(MemoryConfig{})}
	var err error
	s.per, err = OpenPersister(t.Context(), PersisterConfig{
		DB: s.db, Bucket: testBucket, Memory: s.mem, Interval: interval,
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *sidecar) stop(t *testing.T) {
	t.Helper()
	if err := s.per.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
}

func bucketLen(t *testing.T, db *bolt.DB) int {
	t.Helper()
	n := 0
	err := db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket([]byte(testBucket)).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPersisterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authz.db")
	day := Policy{ID: "day", Quota: &Quota{Requests: 10, Window: Day}, Rate: &Rate{Requests: 100, Period: time.Second}}
	month := Policy{ID: "month", Quota: &Quota{Requests: 10, Window: Month}}
	a, b := Key{"alice", "day"}, Key{"bob", "month"}
	now := utc("2025-03-12T10:00:00Z")

	s := startSidecar(t, path, now, time.Hour)
	for range 7 {
		s.mem.Decide(a, day, now)
	}
	for range 3 {
		s.mem.Decide(b, month, now)
	}
	s.stop(t) // Close flushes although the interval never elapsed

	tests := []struct {
		name      string
		now       time.Time
		remaining map[Key]uint64
		stored    int
	}{
		{"same day keeps both counts", now.Add(time.Hour), map[Key]uint64{a: 2, b: 6}, 2},
		{"next day discards the day count", now.Add(24 * time.Hour), map[Key]uint64{a: 9, b: 6}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyPath := filepath.Join(dir, "authz.db")
			copyDB(t, path, copyPath)
			s := startSidecar(t, copyPath, tc.now, time.Hour)
			defer s.stop(t)
			if got := bucketLen(t, s.db); got != tc.stored {
				t.Errorf("stored counters after load = %d, want %d", got, tc.stored)
			}
			for k, want := range tc.remaining {
				p := day
				if k == b {
					p = month
				}
				if d := s.mem.Decide(k, p, tc.now); d.Quota.Remaining != want {
					t.Errorf("%v: remaining %d, want %d", k, d.Quota.Remaining, want)
				}
			}
		})
	}
}

func TestPersisterFlushesInBackground(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authz.db")
	now := utc("2025-03-12T10:00:00Z")
	s := startSidecar(t, path, now, 10*time.Millisecond)
	defer s.stop(t)
	p := Policy{ID: "p", Quota: &Quota{Requests: 100, Window: Week}}
	for range 5 {
		s.mem.Decide(Key{"carol", "p"}, p, now)
	}
	// Wait for the loop, not Close: a crash now keeps what was flushed.
	deadline := time.Now().Add(2 * time.Second)
	for {
		c := storedCount(t, s.db, Key{"carol", "p"})
		if c.Used == 5 && c.Window == Week {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored %+v after 2s, want used 5 in a week window", c)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func storedCount(t *testing.T, db *bolt.DB, key Key) quotaCount {
	t.Helper()
	var c quotaCount
	err := db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket([]byte(testBucket)).Get(encodeKey(nil, key))
		if v != nil {
			c, _ = decodeCount(encodeKey(nil, key), v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOpenPersisterValidates(t *testing.T) {
	if _, err := OpenPersister(context.Background(), PersisterConfig{}); err == nil {
		t.Error("OpenPersister without DB succeeded")
	}
}

func copyDB(t *testing.T, from, to string) {
	t.Helper()
	src := openDB(t, from)
	defer src.Close()
	err := src.View(func(tx *bolt.Tx) error { return tx.CopyFile(to, 0o600) })
	if err != nil {
		t.Fatal(err)
	}
}
