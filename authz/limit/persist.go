package limit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// PersisterConfig configures a Persister.
type PersisterConfig struct {
	// DB is the sidecar's open bbolt file; the Persister never closes it.
	DB *bolt.DB
	// Bucket holds the quota counters and nothing else. Default "limit_quota".
	Bucket string
	// Memory is the limiter whose quota counters are saved.
	Memory *Memory
	// Interval between flushes. Default 1s: a crash loses at most that much.
	Interval time.Duration
	// Logger reports flush failures. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock used to discard ended windows. Default time.Now.
	Now func() time.Time
}

// Persister saves the in-memory quota counters to bbolt so that a restart
// keeps them. Rate state is not saved: it replenishes within one period.
type Persister struct {
	cfg     PersisterConfig
	mu      sync.Mutex // serialises flushes
	pending []quotaCount
	pruned  time.Time
	stop    context.CancelFunc
	done    chan struct{}
}

const pruneEvery = time.Hour

// OpenPersister creates the bucket, loads the counters of current windows
// into cfg.Memory (dropping those of ended windows from the file) and starts
// flushing every cfg.Interval until ctx ends or Close is called.
func OpenPersister(ctx context.Context, cfg PersisterConfig) (*Persister, error) {
	if cfg.DB == nil || cfg.Memory == nil {
		return nil, errors.New("open quota persister: DB and Memory are required")
	}
	if cfg.Bucket == "" {
		cfg.Bucket = "limit_quota"
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := &Persister{cfg: cfg, done: make(chan struct{})}
	if err := p.load(); err != nil {
		return nil, fmt.Errorf("open quota persister: %w", err)
	}
	cfg.Memory.track.Store(true)
	ctx, p.stop = context.WithCancel(ctx)
	go p.run(ctx)
	return p, nil
}

// load restores current counters and deletes the rest in one transaction.
func (p *Persister) load() error {
	now := p.cfg.Now()
	p.pruned = now
	return p.cfg.DB.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(p.cfg.Bucket))
		if err != nil {
			return fmt.Errorf("create bucket %q: %w", p.cfg.Bucket, err)
		}
		var stale [][]byte
		err = b.ForEach(func(k, v []byte) error {
			c, ok := decodeCount(k, v)
			if !ok || !p.cfg.Memory.restore(c, now) {
				stale = append(stale, k)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("read bucket %q: %w", p.cfg.Bucket, err)
		}
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return fmt.Errorf("delete ended counter: %w", err)
			}
		}
		return nil
	})
}

func (p *Persister) run(ctx context.Context) {
	defer close(p.done)
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := p.Flush(); err != nil {
				p.cfg.Logger.Warn("flush quota counters", "err", err)
			}
		}
	}
}

// Flush writes the counters changed since the last flush. Counters that
// fail to be written are retried on the next flush.
func (p *Persister) Flush() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = p.cfg.Memory.drainDirty(p.pending)
	now := p.cfg.Now()
	prune := now.Sub(p.pruned) >= pruneEvery
	if len(p.pending) == 0 && !prune {
		return nil
	}
	err := p.cfg.DB.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(p.cfg.Bucket))
		if b == nil {
			return fmt.Errorf("bucket %q is missing", p.cfg.Bucket)
		}
		var buf []byte
		for _, c := range p.pending {
			buf = encodeKey(buf[:0], c.Key)
			if err := b.Put(buf, encodeValue(c)); err != nil {
				return fmt.Errorf("put counter: %w", err)
			}
		}
		if prune {
			return pruneEnded(b, now)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("flush quota counters: %w", err)
	}
	clear(p.pending)
	p.pending = p.pending[:0]
	if prune {
		p.pruned = now
	}
	return nil
}

// Close stops the flush loop and writes the last changes.
func (p *Persister) Close() error {
	p.stop()
	<-p.done
	return p.Flush()
}

func pruneEnded(b *bolt.Bucket, now time.Time) error {
	var stale [][]byte
	err := b.ForEach(func(k, v []byte) error {
		c, ok := decodeCount(k, v)
		if !ok || now.Unix() >= c.Window.windowEnd(c.Start) {
			stale = append(stale, k)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("scan counters: %w", err)
	}
	for _, k := range stale {
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("delete ended counter: %w", err)
		}
	}
	return nil
}

// The key is uvarint(len(profile)) profile policy; the value is the window
// (1 byte), its start (8 bytes) and the count (8 bytes), big-endian.
func encodeKey(dst []byte, k Key) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(k.Profile)))
	dst = append(dst, k.Profile...)
	return append(dst, k.Policy...)
}

func encodeValue(c quotaCount) []byte {
	v := make([]byte, 17)
	v[0] = byte(c.Window)
	binary.BigEndian.PutUint64(v[1:], uint64(c.Start))
	binary.BigEndian.PutUint64(v[9:], c.Used)
	return v
}

func decodeCount(k, v []byte) (quotaCount, bool) {
	n, w := binary.Uvarint(k)
	if w <= 0 || uint64(len(k)-w) < n || len(v) != 17 {
		return quotaCount{}, false
	}
	profile := k[w : w+int(n)]
	return quotaCount{
		Key:    Key{Profile: string(profile), Policy: string(k[w+int(n):])},
		Window: Window(v[0]),
		Start:  int64(binary.BigEndian.Uint64(v[1:])),
		Used:   binary.BigEndian.Uint64(v[9:]),
	}, true
}
