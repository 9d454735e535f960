package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binaries of the test, built once per run from the module's own sources.
const (
	binControlPlane = "gatehouse-controlplane"
	binCtl          = "gatehousectl"
	binAuthz        = "gatehouse-authz"
	binRuntime      = "example-runtime"
)

var packages = map[string]string{
	binControlPlane: "./controlplane/cmd/gatehouse-controlplane",
	binCtl:          "./controlplane/cmd/gatehousectl",
	binAuthz:        "./authz/cmd/gatehouse-authz",
	binRuntime:      "./deploy/example-runtime",
}

// requireBinary returns the path of a server binary the test starts itself. A missing binary
// skips the test on a developer machine and fails it in CI, where it must be installed.
func requireBinary(t *testing.T, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin"} {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (%s); CI must provide it", name, install)
	}
	t.Skipf("%s is not installed (%s)", name, install)
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// buildBinaries compiles the Gatehouse commands into dir, the way `make build` does, so the
// test runs exactly what users run.
func buildBinaries(t *testing.T, dir string) map[string]string {
	t.Helper()
	// go test puts its own toolchain first on PATH.
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go command: %v", err)
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	out := map[string]string{}
	for name, pkg := range packages {
		args = append(args, pkg)
		out[name] = filepath.Join(dir, name)
	}
	cmd := exec.Command(goBin, args...)
	cmd.Dir = moduleRoot(t)
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// moduleRoot is the directory of go.mod, two levels above this package.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	return root
}

// freeAddr returns a loopback address with a port that was free a moment ago. The port is
// released before the server binds it; nothing else in the test picks ports concurrently.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// proc is a server process of the test. Its output goes to a log file that is printed when
// the test fails.
type proc struct {
	t    *testing.T
	name string
	bin  string
	args []string
	env  []string
	log  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// startProc starts a process and stops it when the test ends.
func startProc(t *testing.T, logDir, name, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, bin: bin, args: args, env: env, log: filepath.Join(logDir, name+".log")}
	p.start()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			t.Logf("--- %s log (%s) ---\n%s", name, p.log, tail(b, 60))
		}
	})
	return p
}

// start runs the process (again, after stop); output is appended to its log.
func (p *proc) start() {
	p.t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	fmt.Fprintf(f, "=== start %s %s\n", p.bin, strings.Join(p.args, " "))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done, p.err = cmd, done, nil
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		_ = f.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
}

// stop ends the process with SIGTERM, the way an orchestrator does, and waits for it; a
// process that ignores SIGTERM is killed after a grace period and fails the test.
func (p *proc) stop() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		p.t.Errorf("%s did not stop within 15s of SIGTERM", p.name)
	}
}

// exited reports whether the process has ended, and how.
func (p *proc) exited() (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// waitReady polls url until it answers 200, failing early when the process exits.
func waitReady(t *testing.T, p *proc, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	last := "no answer"
	for {
		if ended, err := p.exited(); ended {
			b, _ := os.ReadFile(p.log)
			t.Fatalf("%s exited before it was ready (%v):\n%s", p.name, err, tail(b, 40))
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s not ready at %s: %s", p.name, url, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ctl runs gatehousectl against the control plane and returns its standard output.
type ctl struct {
	bin, addr, token string
}

func (c ctl) run(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := c.try(stdin, args...)
	if err != nil {
		t.Fatalf("gatehousectl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (c ctl) try(stdin string, args ...string) (string, error) {
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(os.Environ(), "GATEHOUSE_ADDR="+c.addr, "GATEHOUSE_ADMIN_TOKEN="+c.token)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return stdout.String(), fmt.Errorf("%w\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
		}
		return "", err
	}
	return stdout.String(), nil
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
