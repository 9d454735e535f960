package server

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gatehouse/authz/check"
)

// Paths of the HTTP server.
const (
	// CheckPath is the prefix of the HTTP check with Envoy http_service semantics: Envoy
	// (path_prefix "/check") appends the original path to it; nginx and Caddy send the
	// original method and URI in X-Original-* or X-Forwarded-* headers instead. A prefix of
	// its own keeps caller paths apart from /healthz, /readyz and /metrics.
	CheckPath = "/check"
	// AuthRequestPath is the check for nginx auth_request, which passes only 2xx, 401 and 403
	// through: refusals also carry their status and problem body in the X-Gatehouse-Status
	// and X-Gatehouse-Problem headers, for an error_page location to replay.
	AuthRequestPath = "/auth-request"
	HealthzPath     = "/healthz"
	ReadyzPath      = "/readyz"
	MetricsPath     = "/metrics"
)

// Headers of the nginx auth_request replay.
const (
	HeaderReplayStatus  = "X-Gatehouse-Status"
	HeaderReplayProblem = "X-Gatehouse-Problem"
	// headerEnvoyRemove asks Envoy's http_service client to drop request headers.
	headerEnvoyRemove = "X-Envoy-Auth-Headers-To-Remove"
)

// NewHTTPHandler returns the HTTP check endpoints, /healthz, /readyz and, when gatherer is
// set, /metrics.
func NewHTTPHandler(cfg Config, gatherer prometheus.Gatherer) http.Handler {
	cfg = cfg.withDefaults()
	mux := http.NewServeMux()
	hc := &httpCheck{cfg: cfg}
	hc.pool.New = func() any { return new(scratch) }
	mux.Handle(CheckPath, hc.handler(CheckPath, false))
	mux.Handle(CheckPath+"/", hc.handler(CheckPath, false))
	mux.Handle(AuthRequestPath, hc.handler(AuthRequestPath, true))
	mux.HandleFunc(HealthzPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc(ReadyzPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !cfg.Decider.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("no config yet\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	if gatherer != nil {
		mux.Handle(MetricsPath, promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	}
	return mux
}

type httpCheck struct {
	cfg  Config
	pool sync.Pool
}

func (hc *httpCheck) handler(prefix string, replay bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		s := hc.pool.Get().(*scratch)
		r := RequestFromHTTP(req, prefix)
		hc.cfg.Decider.Decide(req.Context(), &r, &s.d)
		s.writeHTTP(w, replay)
		hc.cfg.Metrics.decided(apiHTTP, s.d.Code, time.Since(start))
		logDecision(req.Context(), hc.cfg.Logger, &r, &s.d)
		s.headers, s.body = s.headers[:0], s.body[:0]
		hc.pool.Put(s)
	})
}

// RequestFromHTTP turns an HTTP check request into the pipeline's Request. The original
// method and URI come from X-Original-Method/X-Original-URI (nginx) or
// X-Forwarded-Method/X-Forwarded-Uri (Caddy, Traefik); without them the request itself is
// the original one, its path after prefix (Envoy http_service). The source is the peer: the
// proxy, so X-Forwarded-For needs a trusted hop.
func RequestFromHTTP(req *http.Request, prefix string) check.Request {
	h := httpHeaders(req.Header)
	r := check.Request{
		Method:    firstOf(req.Header, "X-Original-Method", "X-Forwarded-Method"),
		Path:      firstOf(req.Header, "X-Original-Uri", "X-Forwarded-Uri"),
		Headers:   h,
		RequestID: req.Header.Get("X-Request-Id"),
	}
	if r.Method == "" {
		r.Method = req.Method
	}
	if r.Path == "" {
		r.Path = strings.TrimPrefix(req.URL.RequestURI(), prefix)
	}
	if ap, err := netip.ParseAddrPort(req.RemoteAddr); err == nil {
		r.Source = ap.Addr()
	}
	for k := range req.Header {
		if len(k) >= len(ownedPrefixCanonical) && strings.EqualFold(k[:len(ownedPrefixCanonical)], ownedPrefixCanonical) &&
			!isReplayHeader(k) {
			r.ForgedIdentity = true
			break
		}
	}
	return r
}

// ownedPrefixCanonical is check.OwnedHeaderPrefix as net/http spells header names.
const ownedPrefixCanonical = "X-Gatehouse-"

func isReplayHeader(k string) bool { return k == HeaderReplayStatus || k == HeaderReplayProblem }

func firstOf(h http.Header, names ...string) string {
	for _, n := range names {
		if v := h[n]; len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// httpHeaders reads net/http headers by lower-case name; repeated headers are joined, so a
// doubled credential is refused rather than one of them picked.
type httpHeaders http.Header

// Get returns the value of the lower-case header name.
func (h httpHeaders) Get(name string) string {
	var key string
	switch name {
	case check.HeaderAPIToken:
		key = "Api-Token"
	case check.HeaderAuthorization:
		key = "Authorization"
	case "x-forwarded-for":
		key = "X-Forwarded-For"
	default:
		key = http.CanonicalHeaderKey(name)
	}
	v := h[key]
	switch len(v) {
	case 0:
		return ""
	case 1:
		return v[0]
	}
	return strings.Join(v, ", ")
}

// writeHTTP renders the decision as an HTTP check response.
func (s *scratch) writeHTTP(w http.ResponseWriter, replay bool) {
	d := &s.d
	wh := w.Header()
	if d.Allowed() {
		// Every fixed owned header is listed, empty when it does not apply, so a proxy that
		// copies a fixed list overwrites any spoofed copy.
		for _, name := range check.FixedHeaders {
			wh[http.CanonicalHeaderKey(name)] = []string{""}
		}
		s.headers = d.AppendUpstream(s.headers[:0])
		for _, h := range s.headers {
			wh[http.CanonicalHeaderKey(h.Name)] = []string{h.Value}
		}
		wh[headerEnvoyRemove] = []string{check.HeaderAPIToken + ", " + check.HeaderAuthorization}
		for _, h := range d.AppendLimitHeaders(s.headers[:0]) {
			wh.Set(h.Name, h.Value)
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	for _, h := range d.AppendDenyHeaders(s.headers[:0]) {
		wh.Set(h.Name, h.Value)
	}
	s.body = d.AppendProblem(s.body[:0])
	if replay {
		wh.Set(HeaderReplayStatus, strconv.Itoa(d.Status()))
		wh.Set(HeaderReplayProblem, string(s.body))
	}
	w.WriteHeader(d.Status())
	_, _ = w.Write(s.body)
}
