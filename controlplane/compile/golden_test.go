package compile

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// goldenJSON renders the whole output as indented JSON: protojson per resource, then
// re-indented by encoding/json, because protojson's own spacing is deliberately unstable.
func goldenJSON(t *testing.T, out *Output) []byte {
	t.Helper()
	msg := func(m proto.Message) json.RawMessage {
		b, err := protojson.Marshal(m)
		if err != nil {
			t.Fatalf("protojson: %v", err)
		}
		return b
	}
	doc := map[string]any{"version": out.Version}
	envoy := map[string][]json.RawMessage{}
	for typ, rs := range out.Envoy {
		for _, r := range rs {
			envoy[typ] = append(envoy[typ], msg(r))
		}
	}
	doc["envoy"] = envoy
	doc["authz"] = msg(out.AuthzConfig())
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatalf("json: %v", err)
	}
	return append(b, '\n')
}

// TestGolden compares the complete output for the fixture with testdata/<case>.golden. Run
// `go test ./controlplane/compile -run TestGolden -update` after an intended change and review
// the diff.
func TestGolden(t *testing.T) {
	for _, tc := range settingsCases {
		t.Run(tc.name, func(t *testing.T) {
			got := goldenJSON(t, mustCompile(t, fixture(), tc.s))
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden (run with -update to create it): %v", err)
			}
			if !bytes.Equal(want, got) {
				t.Errorf("output differs from %s (run with -update if intended):\n%s", path,
					cmp.Diff(string(want), string(got)))
			}
		})
	}
}
