package xds

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestGRPCJSClient runs @grpc/grpc-js-xds (scripts/xds-js), an xDS client written apart from
// grpc-go, against the server: it must resolve xds:///gatehouse-grpc and reach the runtime.
func TestGRPCJSClient(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("..", "..", "scripts", "xds-js"))
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	_, modErr := os.Stat(filepath.Join(dir, "node_modules", "@grpc", "grpc-js-xds"))
	if err != nil || modErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node or scripts/xds-js/node_modules missing in CI (npm ci in .ci/run): %v %v", err, modErr)
		}
		t.Skip("node or scripts/xds-js/node_modules missing; run npm ci in scripts/xds-js")
	}
	s := startServer(t)
	b := startBackend(t)
	if err := s.Publish(context.Background(), 1, newFixture(2, b.addr).resources(t)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "index.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GATEHOUSE_XDS_ADDR="+s.Addr().String(), "XDS_METHOD=/echo/Call1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("grpc-js-xds client: %v\n%s", err, out)
	}
	if got := b.count("/echo/Call1"); got != 1 {
		t.Errorf("runtime served /echo/Call1 %d times, want 1; client said:\n%s", got, out)
	}
}
