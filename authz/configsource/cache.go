package configsource

import (
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

// The cache lives in the sidecar's shared bbolt file, in bucket "config":
//
//	config/version               the config version
//	config/<type>/<name>         uvarint len(version) | version | resource (binary proto)
//
// with <type> "endpoints", "profiles" or "policies". One resource per key lets
// an update write only the resources it changed (a changed profile among
// 100,000 endpoints is one Put), and every write is one transaction, which
// bbolt commits whole or not at all: the file never holds half an update.
const (
	bucketName = "config"
	keyVersion = "version"
)

// cacheRecord is one cached resource.
type cacheRecord struct {
	kind    kind
	name    string
	version string
	raw     []byte // the resource, binary proto
	msg     named  // decoded; set by loadCache
}

// cacheWrite is one transaction's worth of cache changes.
type cacheWrite struct {
	full    bool // replace the whole cache with put
	version string
	put     []cacheRecord
	del     []resourceKey
}

// saveCache applies w in one bbolt transaction.
func saveCache(db *bolt.DB, w cacheWrite) error {
	err := db.Update(func(tx *bolt.Tx) error {
		if w.full {
			if err := tx.DeleteBucket([]byte(bucketName)); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
				return fmt.Errorf("clear bucket %q: %w", bucketName, err)
			}
		}
		root, err := tx.CreateBucketIfNotExists([]byte(bucketName))
		if err != nil {
			return fmt.Errorf("create bucket %q: %w", bucketName, err)
		}
		var subs [numKinds]*bolt.Bucket
		for k := range numKinds {
			if subs[k], err = root.CreateBucketIfNotExists([]byte(k.short())); err != nil {
				return fmt.Errorf("create bucket %q: %w", k.short(), err)
			}
		}
		for _, r := range w.put {
			val := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(r.version)+len(r.raw)), uint64(len(r.version)))
			val = append(append(val, r.version...), r.raw...)
			if err := subs[r.kind].Put([]byte(r.name), val); err != nil {
				return fmt.Errorf("put %s %q: %w", r.kind.short(), r.name, err)
			}
		}
		for _, key := range w.del {
			if err := subs[key.kind].Delete([]byte(key.name)); err != nil {
				return fmt.Errorf("delete %s %q: %w", key.kind.short(), key.name, err)
			}
		}
		if err := root.Put([]byte(keyVersion), []byte(w.version)); err != nil {
			return fmt.Errorf("put version: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save config %q: %w", w.version, err)
	}
	return nil
}

// cacheContent is what the cache holds: the last applied config as records,
// sorted by type and name (bbolt keeps keys in byte order).
type cacheContent struct {
	version string
	records []cacheRecord
}

// config assembles the cached records into a config.
func (c cacheContent) config() *authzv1.Config {
	cfg := &authzv1.Config{Version: c.version}
	for _, r := range c.records {
		switch m := r.msg.(type) {
		case *authzv1.Endpoint:
			cfg.Endpoints = append(cfg.Endpoints, m)
		case *authzv1.Profile:
			cfg.Profiles = append(cfg.Profiles, m)
		case *authzv1.Policy:
			cfg.Policies = append(cfg.Policies, m)
		}
	}
	return cfg
}

// loadCache reads the cache; ok is false when it holds nothing yet.
func loadCache(db *bolt.DB) (c cacheContent, ok bool, err error) {
	err = db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket([]byte(bucketName))
		if root == nil {
			return nil
		}
		version := root.Get([]byte(keyVersion))
		if version == nil {
			return nil
		}
		c.version = string(version)
		for k := range numKinds {
			sub := root.Bucket([]byte(k.short()))
			if sub == nil {
				continue
			}
			err := sub.ForEach(func(name, val []byte) error {
				r, err := decodeRecord(k, name, val)
				if err != nil {
					return err
				}
				c.records = append(c.records, r)
				return nil
			})
			if err != nil {
				return err
			}
		}
		ok = true
		return nil
	})
	if err != nil {
		return cacheContent{}, false, fmt.Errorf("load cached config: %w", err)
	}
	return c, ok, nil
}

// decodeRecord copies and decodes one value: bbolt's bytes are valid only
// inside the transaction.
func decodeRecord(k kind, name, val []byte) (cacheRecord, error) {
	n, size := binary.Uvarint(val)
	if size <= 0 || uint64(len(val)-size) < n {
		return cacheRecord{}, fmt.Errorf("%s %q: corrupt record", k.short(), name)
	}
	r := cacheRecord{
		kind:    k,
		name:    string(name),
		version: string(val[size : size+int(n)]),
		raw:     append([]byte(nil), val[size+int(n):]...),
		msg:     k.newMessage(),
	}
	if err := proto.Unmarshal(r.raw, r.msg); err != nil {
		return cacheRecord{}, fmt.Errorf("%s %q: decode: %w", k.short(), name, err)
	}
	return r, nil
}
