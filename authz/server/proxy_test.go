package server

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"gatehouse/authz/check/checktest"
)

// findBinary returns the path of a Debian server binary, or skips the test when it is missing
// outside CI (in CI a missing binary fails).
func findBinary(t *testing.T, name string, more ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range more {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (apt-get install %s)", name, name)
	}
	t.Skipf("%s is not installed (apt-get install %s)", name, name)
	return ""
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// serve runs h on a free loopback port for the test's lifetime.
func serve(t *testing.T, h http.Handler) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// echoUpstream stands in for the recipe runtime: it answers with the request headers it got.
func echoUpstream(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.RequestURI(), "headers": r.Header})
}

// startProxy writes the config template into a temp dir and runs the proxy in the foreground
// until the test ends; it returns once the proxy accepts connections.
func startProxy(t *testing.T, bin, tmpl string, vars map[string]any, args func(dir, conf string) []string) {
	t.Helper()
	dir := t.TempDir()
	vars["Dir"] = dir
	vars["Root"] = os.Geteuid() == 0
	tp, err := template.ParseFiles(filepath.Join("testdata", tmpl))
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, strings.TrimSuffix(tmpl, ".tmpl"))
	f, err := os.Create(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Execute(f, vars); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd := exec.Command(bin, args(dir, conf)...)
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("%s output:\n%s\n%s", filepath.Base(bin), out.String(), b)
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", vars["Port"])
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("%s exited at start:\n%s", bin, out.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen on %s:\n%s", bin, addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type proxyCase struct {
	name       string
	path       string
	headers    map[string]string
	repeat     int // sends the request this many times and checks the last answer
	wantStatus int
	wantCode   string
	// wantUpstream are headers the runtime must see; "" means absent.
	wantUpstream map[string]string
	wantHeaders  []string // response headers that must be present on a refusal
}

// proxyCases are the end-to-end cases. stripsOwned says whether the proxy drops inbound
// x-gatehouse-* headers before the check (Caddy's config does); nginx cannot, and the check
// then refuses the request.
func proxyCases(fx *checktest.Fixture, stripsOwned bool) []proxyCase {
	sec := fx.Secret
	spoofed := proxyCase{name: "spoofed identity headers", path: "/sales/orders/o-1",
		headers: map[string]string{
			"Api-Token":               sec(checktest.TokenSales),
			"X-Gatehouse-Client-Id":   "cl-spoofed",
			"X-Gatehouse-Jwt-Claims":  "eyJhZG1pbiI6dHJ1ZX0",
			"X-Gatehouse-Param-Admin": "1",
		},
		wantStatus: 401, wantCode: "invalid_credentials",
	}
	if stripsOwned {
		spoofed.wantStatus, spoofed.wantCode = 200, ""
		spoofed.wantUpstream = map[string]string{"X-Gatehouse-Client-Id": "cl-acme", "X-Gatehouse-Jwt-Claims": "", "X-Gatehouse-Param-Admin": ""}
	}
	return []proxyCase{
		spoofed,
		{name: "allowed with identity and without credential", path: "/sales/orders/o-9/items/3?x=1",
			headers:    map[string]string{"API-Token": sec(checktest.TokenSales)},
			wantStatus: 200,
			wantUpstream: map[string]string{
				"X-Gatehouse-Client-Id": "cl-acme", "X-Gatehouse-Profile-Id": "prof-sales",
				"X-Gatehouse-Auth-Method": "api_token", "X-Gatehouse-Token-Id": checktest.TokenSales,
				"X-Gatehouse-Endpoint-Id": checktest.EndpointItem, "X-Gatehouse-Collection-Id": "col-sales",
				"X-Gatehouse-Recipe-Id": "recipe-" + checktest.EndpointItem,
				"X-Gatehouse-Param-Id":  "o-9", "X-Gatehouse-Param-Item": "3",
				"X-Gatehouse-Jwt-Claims": "", "Api-Token": "", "Authorization": "",
			}},
		{name: "allowed with basic auth", path: "/sales/orders",
			headers:      map[string]string{"Authorization": "Basic " + b64("api-token:"+sec(checktest.TokenSales))},
			wantStatus:   200,
			wantUpstream: map[string]string{"X-Gatehouse-Endpoint-Id": checktest.EndpointListOrders, "Authorization": ""}},
		{name: "missing credentials", path: "/sales/orders", wantStatus: 401, wantCode: "missing_credentials",
			wantHeaders: []string{"Www-Authenticate"}},
		{name: "invalid token", path: "/sales/orders", headers: map[string]string{"Api-Token": "gth_guess"},
			wantStatus: 401, wantCode: "invalid_credentials", wantHeaders: []string{"Www-Authenticate"}},
		{name: "token for another collection", path: "/sales/orders", headers: map[string]string{"Api-Token": sec(checktest.TokenHR)},
			wantStatus: 403, wantCode: "collection_not_allowed"},
		{name: "spoofed original URI", path: "/hr/people",
			headers: map[string]string{
				"Api-Token":      sec(checktest.TokenSales),
				"X-Original-Uri": "/sales/orders", "X-Forwarded-Uri": "/sales/orders",
				"X-Original-Method": "GET", "X-Forwarded-Method": "GET",
			},
			wantStatus: 403, wantCode: "collection_not_allowed"},
		{name: "spoofed x-forwarded-for", path: "/sales/orders",
			headers:    map[string]string{"Api-Token": sec(checktest.TokenIP), "X-Forwarded-For": "203.0.113.5"},
			wantStatus: 403, wantCode: "ip_not_allowed"},
		{name: "unknown endpoint", path: "/sales/nothing", headers: map[string]string{"Api-Token": sec(checktest.TokenSales)},
			wantStatus: 404, wantCode: "endpoint_not_found"},
		{name: "rate limited", path: "/sales/orders", headers: map[string]string{"Api-Token": sec(checktest.TokenLimited)}, repeat: 3,
			wantStatus: 429, wantCode: "rate_limited", wantHeaders: []string{"Retry-After", "Ratelimit", "Ratelimit-Policy"}},
	}
}

// runProxyCases sends each case through the proxy at port.
func runProxyCases(t *testing.T, port int, cases []proxyCase) {
	client := &http.Client{Timeout: 10 * time.Second}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var resp *http.Response
			var body []byte
			for i := 0; i < max(tc.repeat, 1); i++ {
				req, err := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d%s", port, tc.path), nil)
				if err != nil {
					t.Fatal(err)
				}
				for k, v := range tc.headers {
					req.Header[k] = []string{v} // as sent, without canonicalizing
				}
				resp, err = client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ = io.ReadAll(resp.Body)
				_ = resp.Body.Close()
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantStatus == 200 {
				var echo struct {
					Headers http.Header `json:"headers"`
				}
				if err := json.Unmarshal(body, &echo); err != nil {
					t.Fatalf("upstream answer: %v: %s", err, body)
				}
				for k, want := range tc.wantUpstream {
					if got := echo.Headers.Get(k); got != want {
						t.Errorf("upstream %s = %q, want %q", k, got, want)
					}
				}
				return
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
				t.Errorf("content type %q", ct)
			}
			var p map[string]any
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatalf("problem body: %v: %s", err, body)
			}
			if p["code"] != tc.wantCode || p["status"] != float64(tc.wantStatus) || p["request_id"] == "" {
				t.Errorf("problem %v, want code %s", p, tc.wantCode)
			}
			for _, h := range tc.wantHeaders {
				if n := len(resp.Header.Values(h)); n != 1 {
					t.Errorf("refusal has %d %s headers, want 1: %v", n, h, resp.Header)
				}
			}
		})
	}
}

// startAuthz serves the HTTP check with one trusted hop: the proxy in front of it.
func startAuthz(t *testing.T) (*env, int) {
	e := newEnv(t, true, 1)
	e.cfg.Logger = slog.New(slog.DiscardHandler)
	return e, serve(t, NewHTTPHandler(e.cfg, nil))
}

func TestNginxAuthRequest(t *testing.T) {
	bin := findBinary(t, "nginx", "/usr/sbin/nginx")
	e, authzPort := startAuthz(t)
	port := freePort(t)
	startProxy(t, bin, "nginx.conf.tmpl",
		map[string]any{"Port": port, "Authz": authzPort, "Upstream": serve(t, http.HandlerFunc(echoUpstream))},
		func(dir, conf string) []string {
			return []string{"-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log")}
		})
	runProxyCases(t, port, proxyCases(e.fx, false))
}

func TestCaddyForwardAuth(t *testing.T) {
	bin := findBinary(t, "caddy", "/usr/bin/caddy")
	e, authzPort := startAuthz(t)
	port := freePort(t)
	startProxy(t, bin, "Caddyfile.tmpl",
		map[string]any{"Port": port, "Authz": authzPort, "Upstream": serve(t, http.HandlerFunc(echoUpstream))},
		func(_, conf string) []string { return []string{"run", "--config", conf, "--adapter", "caddyfile"} })
	runProxyCases(t, port, proxyCases(e.fx, true))
}
