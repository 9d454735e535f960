package ctl

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// Golden is golden for the feature tests of package ctl_test.
var Golden = golden

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

func TestExport(t *testing.T) {
	st := storedState()
	out, err := Export(st)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "export.golden", out)

	// The export is an apply file: applied to the state it came from, it changes nothing.
	spec, err := testDecoder(map[string]string{"GATEHOUSE_HMAC_ACME_ACME_JWT": testSecret}).DecodeSpec(out)
	if err != nil {
		t.Fatalf("export does not decode: %v\n%s", err, out)
	}
	plan, err := MakePlan(spec, st, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) != 0 {
		t.Errorf("applying the export to its own state plans %v, want no changes", plan)
	}
}

func TestExportEmpty(t *testing.T) {
	out, err := Export(emptyState())
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "{}\n" {
		t.Errorf("Export(empty) = %q, want {}", out)
	}
}
