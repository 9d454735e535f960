package dashboard_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"gatehouse/controlplane/dashboard"
)

// get serves one request through Mount in front of an admin handler that answers "admin".
func get(t *testing.T, method, path string) (*http.Response, string) {
	t.Helper()
	admin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "admin") })
	srv := httptest.NewServer(dashboard.Mount(admin))
	t.Cleanup(srv.Close)
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestServesAssetsWithSecurityHeaders(t *testing.T) {
	tests := []struct {
		name, method, path string
		code               int
		contentType        string
		contains           string
	}{
		{name: "page", method: "GET", path: "/dashboard/", code: 200, contentType: "text/html; charset=utf-8", contains: `<script src="app.js" defer></script>`},
		{name: "page by name", method: "GET", path: "/dashboard/index.html", code: 200, contentType: "text/html; charset=utf-8", contains: "<title>Gatehouse dashboard</title>"},
		{name: "script", method: "GET", path: "/dashboard/app.js", code: 200, contentType: "text/javascript; charset=utf-8", contains: "sessionStorage"},
		{name: "style", method: "GET", path: "/dashboard/style.css", code: 200, contentType: "text/css; charset=utf-8", contains: "[hidden]"},
		{name: "no trailing slash redirects", method: "GET", path: "/dashboard", code: 301},
		{name: "unknown file", method: "GET", path: "/dashboard/secrets.json", code: 404},
		{name: "no directory walk", method: "GET", path: "/dashboard/static/app.js", code: 404},
		{name: "read only", method: "POST", path: "/dashboard/", code: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, tt.method, tt.path)
			if resp.StatusCode != tt.code {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.code)
			}
			h := resp.Header
			if got := h.Get("Content-Security-Policy"); !strings.HasPrefix(got, "default-src 'self'") || strings.Contains(got, "unsafe") {
				t.Errorf("Content-Security-Policy = %q", got)
			}
			if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q", got)
			}
			if got := h.Get("Referrer-Policy"); got != "no-referrer" {
				t.Errorf("Referrer-Policy = %q", got)
			}
			if tt.contentType != "" && h.Get("Content-Type") != tt.contentType {
				t.Errorf("Content-Type = %q, want %q", h.Get("Content-Type"), tt.contentType)
			}
			if !strings.Contains(body, tt.contains) {
				t.Errorf("body does not contain %q", tt.contains)
			}
		})
	}
}

func TestOtherPathsReachTheAdminHandler(t *testing.T) {
	for _, path := range []string{"/v1/calls", "/healthz", "/dashboardx"} {
		if resp, body := get(t, "GET", path); resp.StatusCode != 200 || body != "admin" {
			t.Errorf("GET %s = %d %q, want the admin handler", path, resp.StatusCode, body)
		}
	}
}

// TestPageRunsNothingInline checks the page works under its own CSP: every script and style
// is a same-origin file, and no markup carries inline code.
func TestPageRunsNothingInline(t *testing.T) {
	_, page := get(t, "GET", "/dashboard/")
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<script(\s[^>]*)?>\s*[^<\s]`), // a script element with a body
		regexp.MustCompile(`<script>`),                    // no src
		regexp.MustCompile(`<style`),
		regexp.MustCompile(`\sstyle=`),
		regexp.MustCompile(`\son[a-z]+=`),
		regexp.MustCompile(`(?i)(src|href)="(?:[a-z]+:|//)`),
	} {
		if m := bad.FindString(page); m != "" {
			t.Errorf("page has inline or foreign content: %q", m)
		}
	}
}

// TestScriptTalksOnlyToTheAdminAPI checks that the script's only requests are same-origin
// calls under /v1/, so the admin token it sends cannot reach another origin.
func TestScriptTalksOnlyToTheAdminAPI(t *testing.T) {
	_, js := get(t, "GET", "/dashboard/app.js")
	for _, forbidden := range []string{"://", "'//", `"//`, "`//", "XMLHttpRequest", "WebSocket", "EventSource", "sendBeacon", "import(", "innerHTML", "localStorage", "eval("} {
		if strings.Contains(js, forbidden) {
			t.Errorf("app.js contains %q", forbidden)
		}
	}
	if n := strings.Count(js, "fetch("); n != 1 || !strings.Contains(js, "fetch(path, {") {
		t.Errorf("app.js has %d fetch calls; want the one in api()", n)
	}
	calls := regexp.MustCompile(`\b(api|list)\(([^)]*)`).FindAllStringSubmatch(js, -1)
	if len(calls) < 5 {
		t.Fatalf("found only %d api/list calls", len(calls))
	}
	for _, c := range calls {
		arg := strings.TrimSpace(c[2])
		if arg == "path" || arg == "path, key" || strings.HasPrefix(arg, "path + sep") {
			continue // the definitions and the paging call inside list
		}
		if !strings.HasPrefix(arg, "'/v1/") {
			t.Errorf("%s(%s): the path does not start with a literal '/v1/'", c[1], arg)
		}
	}
}
