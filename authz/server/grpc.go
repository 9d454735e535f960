package server

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"

	"gatehouse/authz/check"
)

// Context extension keys set by the control plane on each route.
const (
	ExtEndpointID   = "endpoint_id"
	ExtCollectionID = "collection_id"
	ExtRecipeID     = "recipe_id"
)

// Decider is the pipeline the servers call; *check.Checker implements it.
type Decider interface {
	Decide(ctx context.Context, r *check.Request, d *check.Decision)
	Ready() bool
}

// Config configures the servers.
type Config struct {
	// Decider decides each request. Required.
	Decider Decider
	// Metrics records decisions; nil records nothing.
	Metrics *Metrics
	// Logger receives one line per refusal. Default: discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Authorization implements envoy.service.auth.v3.Authorization.
type Authorization struct {
	authv3.UnimplementedAuthorizationServer
	cfg  Config
	pool sync.Pool
}

// NewAuthorization returns the ext_authz gRPC service.
func NewAuthorization(cfg Config) *Authorization {
	a := &Authorization{cfg: cfg.withDefaults()}
	a.pool.New = func() any { return new(scratch) }
	return a
}

// scratch is per-request working memory, pooled so a decision allocates little.
type scratch struct {
	d       check.Decision
	headers []check.Header
	body    []byte
}

// Check decides one request. It always answers with a decision, never a gRPC error, so that
// Envoy's failure_mode_allow can never turn a malformed request into an allowed one.
func (a *Authorization) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	start := time.Now()
	r := RequestFromCheck(req)
	headers := r.Headers.(check.MapHeaders)
	return a.decide(ctx, start, &r, func(f func(string)) {
		for k := range headers {
			f(k)
		}
	}), nil
}

// checkWire decides a request decoded from the wire by the server's codec.
func (a *Authorization) checkWire(ctx context.Context, w *wireRequest) *authv3.CheckResponse {
	start := time.Now()
	r := w.toRequest()
	return a.decide(ctx, start, &r, w.eachName)
}

// decide runs the pipeline and renders the response; names lists the inbound header names.
func (a *Authorization) decide(ctx context.Context, start time.Time, r *check.Request, names func(func(string))) *authv3.CheckResponse {
	s := a.pool.Get().(*scratch)
	a.cfg.Decider.Decide(ctx, r, &s.d)
	resp := s.checkResponse(names)
	a.cfg.Metrics.decided(apiGRPC, s.d.Code, time.Since(start))
	logDecision(ctx, a.cfg.Logger, r, &s.d)
	s.headers, s.body = s.headers[:0], s.body[:0]
	a.pool.Put(s)
	return resp
}

// RequestFromCheck turns Envoy's CheckRequest into the pipeline's Request. Missing parts
// become empty values, which the pipeline refuses.
func RequestFromCheck(req *authv3.CheckRequest) check.Request {
	attrs := req.GetAttributes()
	h := attrs.GetRequest().GetHttp()
	headers := check.MapHeaders(h.GetHeaders())
	if headers == nil {
		headers = rawHeaders(h.GetHeaderMap())
	}
	r := check.Request{
		Method:     h.GetMethod(),
		Path:       h.GetPath(),
		Headers:    headers,
		EndpointID: attrs.GetContextExtensions()[ExtEndpointID],
		RequestID:  h.GetId(),
		// Envoy (use_remote_address) appends the source it reports here to
		// X-Forwarded-For; that entry is not a trusted hop in front of it.
		SourceAppended: true,
	}
	if r.RequestID == "" {
		r.RequestID = headers["x-request-id"]
	}
	if sa := attrs.GetSource().GetAddress().GetSocketAddress(); sa != nil {
		if a, err := netip.ParseAddr(sa.GetAddress()); err == nil {
			r.Source = a
		}
	}
	return r
}

// rawHeaders reads the header list Envoy sends with encode_raw_headers, joining repeated
// headers as Envoy does in the map form.
func rawHeaders(hm *corev3.HeaderMap) check.MapHeaders {
	m := make(check.MapHeaders, len(hm.GetHeaders()))
	for _, hv := range hm.GetHeaders() {
		k := strings.ToLower(hv.GetKey())
		v := string(hv.GetRawValue())
		if v == "" {
			v = hv.GetValue()
		}
		if old, ok := m[k]; ok {
			v = old + "," + v
		}
		m[k] = v
	}
	return m
}

// checkResponse renders the decision for Envoy.
func (s *scratch) checkResponse(names func(func(string))) *authv3.CheckResponse {
	d := &s.d
	if d.Allowed() {
		ok := &authv3.OkHttpResponse{
			Headers:         upstreamOptions(d),
			HeadersToRemove: headersToRemove(d, names),
		}
		if d.Limited {
			ok.ResponseHeadersToAdd = headerOptions(d.AppendLimitHeaders(s.headers[:0]))
		}
		return &authv3.CheckResponse{
			Status:       &status.Status{Code: int32(codes.OK)},
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
		}
	}
	s.body = d.AppendProblem(s.body[:0])
	return &authv3.CheckResponse{
		Status: &status.Status{Code: int32(grpcCode(d.Code)), Message: d.Code.String()},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(d.Status())},
			Headers: headerOptions(d.AppendDenyHeaders(s.headers[:0])),
			Body:    string(s.body),
		}},
	}
}

// headersToRemove lists the credential headers, every fixed owned header the decision does
// not set, and every other inbound x-gatehouse-* header (path parameters of another
// endpoint): Envoy strips them before ext_authz, and this keeps a spoofed copy from
// surviving when that filter is missing. The fixed headers are listed whether or not they
// came in, since Envoy may send ext_authz only some of the request's headers
// (allowed_headers); parameter names cannot be listed that way, so a spoofed parameter
// header is removed only when ext_authz sees it.
func headersToRemove(d *check.Decision, names func(func(string))) []string {
	out := make([]string, 0, 4)
	out = append(out, check.HeaderAPIToken, check.HeaderAuthorization)
	for _, k := range check.FixedHeaders {
		if !d.Sets(k) {
			out = append(out, k)
		}
	}
	names(func(k string) {
		if strings.HasPrefix(k, check.OwnedHeaderPrefix) && !d.Sets(k) && !slices.Contains(out, k) {
			out = append(out, k)
		}
	})
	return out
}

// upstreamOptions are the upstream headers of an allowed decision. The identity headers of
// the profile, the endpoint and the token are built once per config and shared by every
// response (marshaling only reads them); parameters and claims are built per request.
func upstreamOptions(d *check.Decision) []*corev3.HeaderValueOption {
	n := 7 + len(d.Params)
	if d.Claims != "" {
		n++
	}
	opts := make([]*corev3.HeaderValueOption, 0, n)
	opts = append(opts, profileOptions(d.Profile)[:]...)
	opts = append(opts, endpointOptions(d.Endpoint)[:]...)
	if d.Token != nil {
		opts = append(opts, tokenOption(d.Token))
	} else if d.TokenID != "" {
		opts = append(opts, option(check.HeaderTokenID, d.TokenID))
	}
	if d.Claims != "" {
		opts = append(opts, option(check.HeaderJWTClaims, d.Claims))
	}
	for _, p := range d.Params {
		opts = append(opts, option(p.Header, p.Value))
	}
	return opts
}

func option(name, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: name, Value: value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

func profileOptions(p *check.Profile) *[3]*corev3.HeaderValueOption {
	if v, ok := p.Memo().Load().(*[3]*corev3.HeaderValueOption); ok {
		return v
	}
	v := &[3]*corev3.HeaderValueOption{
		option(check.HeaderClientID, p.ClientID),
		option(check.HeaderProfileID, p.ID),
		option(check.HeaderAuthMethod, p.Auth.String()),
	}
	p.Memo().Store(v)
	return v
}

func endpointOptions(e *check.Endpoint) *[3]*corev3.HeaderValueOption {
	if v, ok := e.Memo().Load().(*[3]*corev3.HeaderValueOption); ok {
		return v
	}
	v := &[3]*corev3.HeaderValueOption{
		option(check.HeaderEndpointID, e.ID),
		option(check.HeaderCollectionID, e.CollectionID),
		option(check.HeaderRecipeID, e.RecipeID),
	}
	e.Memo().Store(v)
	return v
}

func tokenOption(t *check.Token) *corev3.HeaderValueOption {
	if v, ok := t.Memo().Load().(*corev3.HeaderValueOption); ok {
		return v
	}
	v := option(check.HeaderTokenID, t.ID)
	t.Memo().Store(v)
	return v
}

func headerOptions(hs []check.Header) []*corev3.HeaderValueOption {
	if len(hs) == 0 {
		return nil
	}
	opts := make([]*corev3.HeaderValueOption, len(hs))
	vals := make([]corev3.HeaderValue, len(hs))
	backing := make([]corev3.HeaderValueOption, len(hs))
	for i, h := range hs {
		vals[i].Key, vals[i].Value = h.Name, h.Value
		backing[i].Header = &vals[i]
		backing[i].AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		opts[i] = &backing[i]
	}
	return opts
}

// grpcCode is the gRPC status of a refusal; Envoy only distinguishes OK from the rest, but
// the code keeps logs and traces of the ext_authz call readable.
func grpcCode(c check.Code) codes.Code {
	switch c.Status() {
	case 401:
		return codes.Unauthenticated
	case 404:
		return codes.NotFound
	case 429:
		return codes.ResourceExhausted
	case 503:
		return codes.Unavailable
	}
	return codes.PermissionDenied
}
