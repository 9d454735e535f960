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

// Paths of the HTTP server. Each check path trusts exactly one source of the original method
// and URI, the one its proxy sets and overwrites: a header of another family is the caller's
// and is ignored, so it cannot redirect the check to a path the caller may call.
const (
	// CheckPath is the prefix of the HTTP check with Envoy http_service semantics: Envoy
	// (path_prefix "/check") appends the original path to it and sends the original method.
	// A prefix of its own keeps caller paths apart from /healthz, /readyz and /metrics.
	CheckPath = "/check"
	// ForwardAuthPath is the check for Caddy forward_auth and Traefik ForwardAuth, which send
	// the original request in X-Forwarded-Method and X-Forwarded-Uri.
	ForwardAuthPath = "/forward-auth"
	// AuthRequestPath is the check for nginx auth_request, configured to send the original
	// request in X-Original-Method and X-Original-URI. nginx passes only 2xx, 401 and 403
	// through, so refusals also carry their status and problem body in the X-Gatehouse-Status
	// and X-Gatehouse-Problem headers, for an error_page location to replay.
	AuthRequestPath = "/auth-request"
	HealthzPath     = "/healthz"
	ReadyzPath      = "/readyz"
	MetricsPath     = "/metrics"
)

// Mode says where an HTTP check request carries the original method and URI.
type Mode uint8

// Modes of the check paths.
const (
	// ModeEnvoy reads the request line, the path after CheckPath.
	ModeEnvoy Mode = iota
	// ModeForwarded reads X-Forwarded-Method and X-Forwarded-Uri.
	ModeForwarded
	// ModeOriginal reads X-Original-Method and X-Original-URI.
	ModeOriginal
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
	for path, mode := range map[string]Mode{CheckPath: ModeEnvoy, ForwardAuthPath: ModeForwarded, AuthRequestPath: ModeOriginal} {
		mux.Handle(path, hc.handler(mode))
		mux.Handle(path+"/", hc.handler(mode))
	}
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

func (hc *httpCheck) handler(mode Mode) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		s := hc.pool.Get().(*scratch)
		r := RequestFromHTTP(req, mode)
		hc.cfg.Decider.Decide(req.Context(), &r, &s.d)
		s.writeHTTP(w, mode == ModeOriginal)
		hc.cfg.Metrics.decided(apiHTTP, s.d.Code, time.Since(start))
		logDecision(req.Context(), hc.cfg.Logger, &r, &s.d)
		s.headers, s.body = s.headers[:0], s.body[:0]
		hc.pool.Put(s)
	})
}

// RequestFromHTTP turns an HTTP check request into the pipeline's Request, reading the
// original method and URI where mode says. The source is the peer: the proxy, so
// X-Forwarded-For needs a trusted hop. Inbound x-gatehouse-* headers mark the request as
// forged: Envoy and the Caddy config strip them before the check, nginx cannot strip names
// it does not know, so a request still carrying one is refused.
func RequestFromHTTP(req *http.Request, mode Mode) check.Request {
	r := check.Request{
		Headers:   httpHeaders(req.Header),
		RequestID: req.Header.Get("X-Request-Id"),
	}
	switch mode {
	case ModeForwarded:
		r.Method, r.Path = req.Header.Get("X-Forwarded-Method"), req.Header.Get("X-Forwarded-Uri")
	case ModeOriginal:
		r.Method, r.Path = req.Header.Get("X-Original-Method"), req.Header.Get("X-Original-Uri")
	default:
		r.Method, r.Path = req.Method, strings.TrimPrefix(req.URL.RequestURI(), CheckPath)
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
