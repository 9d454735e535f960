package sidecar

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

// LoadConfigFile reads a compiled authz config: protojson (.json), YAML of the same JSON
// (.yaml, .yml) or binary protobuf (.pb, .binpb). Unknown fields are errors, so a typo never
// silently drops a rule.
func LoadConfigFile(path string) (*authzv1.Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read authz config: %w", err)
	}
	cfg := &authzv1.Config{}
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".json":
		err = protojson.Unmarshal(b, cfg)
	case ".yaml", ".yml":
		var j []byte
		if j, err = yaml.YAMLToJSON(b); err == nil {
			err = protojson.Unmarshal(j, cfg)
		}
	case ".pb", ".binpb":
		err = proto.Unmarshal(b, cfg)
	default:
		return nil, fmt.Errorf("authz config %s: unknown extension %q (want .json, .yaml, .yml or .pb)", path, ext)
	}
	if err != nil {
		return nil, fmt.Errorf("decode authz config %s: %w", path, err)
	}
	return cfg, nil
}
