package configsource

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

// The cache lives in the sidecar's shared bbolt file, in its own bucket.
const (
	bucketName  = "config"
	keyConfig   = "config"            // authzv1.Config, binary proto
	keyVersions = "resource_versions" // JSON: type URL → resource name → version
)

// cached is what the cache holds: the last applied config and the resource
// versions that let the next stream resume from it.
type cached struct {
	cfg      *authzv1.Config
	versions map[string]map[string]string
}

// saveCache writes config and versions in one transaction: bbolt commits a
// transaction whole or not at all, so a crash never leaves half a config.
func saveCache(db *bolt.DB, c cached) error {
	cfgBytes, err := proto.MarshalOptions{Deterministic: true}.Marshal(c.cfg)
	if err != nil {
		return fmt.Errorf("encode config %q: %w", c.cfg.GetVersion(), err)
	}
	verBytes, err := json.Marshal(c.versions)
	if err != nil {
		return fmt.Errorf("encode resource versions: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(bucketName))
		if err != nil {
			return fmt.Errorf("create bucket %q: %w", bucketName, err)
		}
		if err := b.Put([]byte(keyConfig), cfgBytes); err != nil {
			return fmt.Errorf("put config: %w", err)
		}
		if err := b.Put([]byte(keyVersions), verBytes); err != nil {
			return fmt.Errorf("put resource versions: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save config %q: %w", c.cfg.GetVersion(), err)
	}
	return nil
}

// loadCache reads the cache; ok is false when it holds nothing yet.
func loadCache(db *bolt.DB) (c cached, ok bool, err error) {
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketName))
		if b == nil {
			return nil
		}
		cfgBytes, verBytes := b.Get([]byte(keyConfig)), b.Get([]byte(keyVersions))
		if cfgBytes == nil {
			return nil
		}
		// Bytes from Get are valid only inside the transaction: decode here.
		c.cfg = &authzv1.Config{}
		if err := proto.Unmarshal(cfgBytes, c.cfg); err != nil {
			return fmt.Errorf("decode config: %w", err)
		}
		if verBytes != nil {
			if err := json.Unmarshal(verBytes, &c.versions); err != nil {
				return fmt.Errorf("decode resource versions: %w", err)
			}
		}
		ok = true
		return nil
	})
	if err != nil {
		return cached{}, false, fmt.Errorf("load cached config: %w", err)
	}
	return c, ok, nil
}
