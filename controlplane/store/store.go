// Package store keeps the control plane's configuration in a bbolt file.
//
// Every write is one bbolt transaction that bumps a global revision, so readers always see one
// consistent revision and a crash leaves either the whole write or none of it. Subscribers are
// told each new revision after it is committed. Values are the admin API's proto messages,
// binary-encoded; the store neither validates them nor sets ids, times or etags.
package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketMeta  = []byte("meta")
	keyRevision = []byte("revision")
	keySchema   = []byte("schema")
)

// schemaVersion is written on creation so that a later layout change can migrate old files.
const schemaVersion = 1

// ErrNotFound is returned when a resource does not exist.
var ErrNotFound = errors.New("not found")

// Config configures a Store.
type Config struct {
	// Path is the bbolt file; it and its directory are created if missing.
	Path string
	// Logger receives store events; nil discards them.
	Logger *slog.Logger
}

// Store is the revisioned configuration store.
type Store struct {
	db     *bolt.DB
	log    *slog.Logger
	rev    atomic.Uint64
	mu     sync.Mutex // guards subs
	subs   map[chan uint64]struct{}
	closed atomic.Bool
	decode decodeCache
}

// Open opens or creates the store file at cfg.Path.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Path == "" {
		return nil, errors.New("open store: no path")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o700); err != nil {
		return nil, fmt.Errorf("open store: create directory: %w", err)
	}
	db, err := bolt.Open(cfg.Path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: the file is locked by another process (is another control plane running with the same data directory?)", cfg.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", cfg.Path, err)
	}
	s := &Store{db: db, log: log, subs: map[chan uint64]struct{}{}, decode: decodeCache{buckets: map[string][]cachedValue{}}}
	var rev uint64
	err = db.Update(func(btx *bolt.Tx) error {
		meta, err := btx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := meta.Get(keySchema); v == nil {
			if err := meta.Put(keySchema, u64(schemaVersion)); err != nil {
				return err
			}
		} else if got := binary.BigEndian.Uint64(v); got != schemaVersion {
			return fmt.Errorf("store schema version %d, this build reads %d", got, schemaVersion)
		}
		for _, name := range allBuckets() {
			if _, err := btx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		rev = readRevision(btx)
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", cfg.Path, err)
	}
	s.rev.Store(rev)
	log.InfoContext(ctx, "store opened", "path", cfg.Path, "revision", rev)
	return s, nil
}

// Close closes the file and every subscription channel.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.mu.Lock()
	for ch := range s.subs {
		close(ch)
		delete(s.subs, ch)
	}
	s.mu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// Revision returns the last committed revision; 0 for an empty store.
func (s *Store) Revision() uint64 { return s.rev.Load() }

// View runs fn in a read transaction that sees one consistent revision.
func (s *Store) View(fn func(*Tx) error) error {
	return s.db.View(func(btx *bolt.Tx) error {
		return fn(&Tx{btx: btx, rev: readRevision(btx)})
	})
}

// Update runs fn in one write transaction. If fn writes anything the global revision is bumped
// once and the new revision returned; if fn returns an error nothing is written. Subscribers
// are told the new revision after the commit is durable.
func (s *Store) Update(fn func(*Tx) error) (uint64, error) {
	var tx *Tx
	err := s.db.Update(func(btx *bolt.Tx) error {
		tx = &Tx{btx: btx, rev: readRevision(btx), writable: true}
		if err := fn(tx); err != nil {
			return err
		}
		if !tx.dirty {
			return nil
		}
		return btx.Bucket(bucketMeta).Put(keyRevision, u64(tx.rev+1))
	})
	if err != nil {
		return 0, err
	}
	if !tx.dirty {
		return tx.rev, nil
	}
	rev := tx.rev + 1
	// Writers commit in order, but two of them may reach this line out of order: the
	// revision only ever moves forward.
	for cur := s.rev.Load(); rev > cur && !s.rev.CompareAndSwap(cur, rev); cur = s.rev.Load() {
	}
	s.notify(rev)
	return rev, nil
}

// Subscribe returns a channel that receives the latest committed revision after each write.
// Slow readers see only the newest revision (the channel holds one). The channel is closed
// when ctx is done or the store is closed.
func (s *Store) Subscribe(ctx context.Context) <-chan uint64 {
	ch := make(chan uint64, 1)
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		close(ch)
		return ch
	}
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	go func() {
		<-ctx.Done()
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.subs[ch]; ok {
			delete(s.subs, ch)
			close(ch)
		}
	}()
	return ch
}

func (s *Store) notify(rev uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs {
		latest := rev
		select {
		case old := <-ch: // replace the revision the reader has not taken yet
			latest = max(latest, old)
		default:
		}
		ch <- latest
	}
}

// Snapshot reads the whole configuration at one revision.
//
// The messages of a Snapshot are read-only and shared: a resource whose stored bytes did not
// change since the previous Snapshot is the same message (same pointer) in both, so callers
// must never modify them. Later stages rely on that to skip unchanged resources.
func (s *Store) Snapshot() (*Snapshot, error) {
	snap := &Snapshot{}
	s.decode.mu.Lock()
	defer s.decode.mu.Unlock()
	c := &s.decode
	err := s.View(func(tx *Tx) error {
		snap.Revision = tx.Revision()
		var err error
		if snap.Collections, err = allCached(tx, c, Collections); err != nil {
			return err
		}
		if snap.Endpoints, err = allCached(tx, c, Endpoints); err != nil {
			return err
		}
		if snap.Clients, err = allCached(tx, c, Clients); err != nil {
			return err
		}
		if snap.Profiles, err = allCached(tx, c, Profiles); err != nil {
			return err
		}
		if snap.Tokens, err = allCached(tx, c, Tokens); err != nil {
			return err
		}
		snap.Policies, err = allCached(tx, c, Policies)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	return snap, nil
}

// Tx is a read or write transaction.
type Tx struct {
	btx      *bolt.Tx
	rev      uint64
	writable bool
	dirty    bool
}

// Revision returns the revision this transaction reads.
func (tx *Tx) Revision() uint64 { return tx.rev }

// NextRevision returns the revision a write transaction commits as, once it writes anything.
func (tx *Tx) NextRevision() uint64 { return tx.rev + 1 }

func (tx *Tx) bucket(name string) *bolt.Bucket { return tx.btx.Bucket([]byte(name)) }

func (tx *Tx) markWrite() error {
	if !tx.writable {
		return errors.New("write in a read transaction")
	}
	tx.dirty = true
	return nil
}

func readRevision(btx *bolt.Tx) uint64 {
	v := btx.Bucket(bucketMeta).Get(keyRevision)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}
