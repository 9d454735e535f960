// Package dashboard serves the control plane's operator dashboard: one static HTML page, its
// script and its style sheet, embedded in the binary. The page holds no data: the operator
// pastes an admin token, the page keeps it in sessionStorage only and sends it as
// "Authorization: Bearer" to the admin REST API on the same origin, which authenticates every
// call. The files are therefore public, and served with a Content-Security-Policy that allows
// only same-origin scripts, styles and requests, so nothing injected into the page can run or
// send the token elsewhere.
package dashboard

import (
	"embed"
	"net/http"
	"strings"
)

// Prefix is the path the dashboard is served under.
const Prefix = "/dashboard/"

// ContentSecurityPolicy is sent with every dashboard response: same-origin only, no inline
// scripts or styles, and no framing (the page handles an admin token).
const ContentSecurityPolicy = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

//go:embed static/index.html static/app.js static/style.css
var files embed.FS

// asset is one embedded file and its content type.
type asset struct {
	file, contentType string
}

var assets = map[string]asset{
	"":           {"static/index.html", "text/html; charset=utf-8"},
	"index.html": {"static/index.html", "text/html; charset=utf-8"},
	"app.js":     {"static/app.js", "text/javascript; charset=utf-8"},
	"style.css":  {"static/style.css", "text/css; charset=utf-8"},
}

// Handler returns the dashboard's handler for the paths under Prefix; "/dashboard" redirects
// to Prefix. Other paths are not found.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path == strings.TrimSuffix(Prefix, "/") {
			http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, Prefix)
		a, known := assets[name]
		if !ok || !known {
			http.NotFound(w, r)
			return
		}
		body, err := files.ReadFile(a.file)
		if err != nil {
			http.Error(w, "dashboard asset missing", http.StatusInternalServerError)
			return
		}
		h.Set("Content-Type", a.contentType)
		// The files change only with the binary; revalidating each load keeps an upgraded
		// control plane from running an old script against a new API.
		h.Set("Cache-Control", "no-cache")
		_, _ = w.Write(body)
	})
}

// Mount returns a handler that serves the dashboard under Prefix and sends every other
// request to next (the admin API).
func Mount(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	d := Handler()
	mux.Handle(Prefix, d)
	mux.Handle(strings.TrimSuffix(Prefix, "/"), d)
	mux.Handle("/", next)
	return mux
}
