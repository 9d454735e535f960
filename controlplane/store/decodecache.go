package store

import (
	"bytes"
	"fmt"
	"sync"

	"google.golang.org/protobuf/proto"
)

// decodeCache keeps the decoded messages of the last Snapshot, bucket by bucket, so that the
// next Snapshot decodes only the values whose bytes changed. A one-endpoint change then costs
// one decode instead of one per endpoint, and unchanged resources keep their pointers from
// revision to revision, which compile and xds use to skip work on them.
type decodeCache struct {
	mu      sync.Mutex // held for a whole Snapshot, so entries always match one revision
	buckets map[string][]cachedValue
}

// cachedValue is one bucket entry: its key and value bytes (copied out of the bbolt page) and
// the message decoded from them, shared by every Snapshot that read those bytes.
type cachedValue struct {
	key, raw []byte
	msg      proto.Message
}

// allCached reads every resource of t in key order, reusing the cached message of each value
// whose bytes are unchanged. The bucket's cache is replaced by what this walk saw, so deleted
// keys drop out and the cache is bounded by the data. Both the cursor and the cache are in key
// order, so the walk is a merge.
func allCached[T proto.Message](tx *Tx, c *decodeCache, t Table[T]) ([]T, error) {
	prev := c.buckets[t.bucket]
	next := make([]cachedValue, 0, len(prev)+1)
	var out []T
	cur := tx.bucket(t.bucket).Cursor()
	i := 0
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		for i < len(prev) && bytes.Compare(prev[i].key, k) < 0 {
			i++
		}
		if i < len(prev) && bytes.Equal(prev[i].key, k) && bytes.Equal(prev[i].raw, v) {
			next = append(next, prev[i])
			out = append(out, prev[i].msg.(T))
			i++
			continue
		}
		m := t.new()
		if err := proto.Unmarshal(v, m); err != nil {
			return nil, fmt.Errorf("decode %s %s: %w", t.kind, k, err)
		}
		// bbolt's bytes live only as long as the transaction.
		next = append(next, cachedValue{key: bytes.Clone(k), raw: bytes.Clone(v), msg: m})
		out = append(out, m)
	}
	c.buckets[t.bucket] = next
	return out, nil
}
