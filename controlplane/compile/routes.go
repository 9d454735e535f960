package compile

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"gatehouse/controlplane/store"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// paramSegmentRegex matches one path parameter: a non-empty segment. Envoy has normalised the
// path and refused escaped slashes before routing, so a parameter cannot span segments.
const paramSegmentRegex = "[^/]+"

// notFoundBody is the problem+json of an unknown or inactive endpoint. Both answer the same so
// a caller cannot tell that an inactive endpoint exists. Envoy fills in the request id (which
// it generates at the edge, so it never holds caller-chosen characters).
const notFoundBody = `{"type":"https://gatehouse.dev/problems/endpoint_not_found",` +
	`"title":"Endpoint not found","status":404,"code":"endpoint_not_found",` +
	`"request_id":"%REQ(x-request-id)%"}`

// problemContentType is the media type of RFC 9457 problem details.
const problemContentType = "application/problem+json"

// epRoute is one endpoint with the strings its route and authz resource share, computed once.
type epRoute struct {
	ep   *adminv1.Endpoint
	coll *adminv1.Collection
	// path is the full template callers use: "/{collection path}{endpoint path}".
	path string
	// segs are the segments of path, without the leading slash, for ordering.
	segs []string
	// templated is true when some segment is a {name} parameter.
	templated bool
	active    bool
	timeout   time.Duration
}

// endpointRoutes prepares every endpoint of snap and sorts them into route order.
func endpointRoutes(snap *store.Snapshot, idx *index) ([]epRoute, error) {
	out := make([]epRoute, 0, len(snap.Endpoints))
	for _, ep := range snap.Endpoints {
		coll, ok := idx.collections[ep.GetCollectionId()]
		if !ok {
			return nil, fmt.Errorf("endpoint %q: unknown collection %q", ep.GetId(), ep.GetCollectionId())
		}
		path := "/" + coll.GetPath() + ep.GetPath()
		segs := strings.Split(path[1:], "/")
		templated := false
		for _, s := range segs {
			if isParam(s) {
				templated = true
				break
			}
		}
		timeout := DefaultEndpointTimeout
		if d := ep.GetTimeout(); d != nil {
			timeout = d.AsDuration()
		}
		out = append(out, epRoute{
			ep: ep, coll: coll, path: path, segs: segs, templated: templated,
			// New endpoints start inactive unless active is set.
			active: ep.GetActive(), timeout: timeout,
		})
	}
	slices.SortFunc(out, compareRoutes)
	return out, nil
}

// compareRoutes orders routes so that the first match is the most specific one: literal paths
// before templated ones; then, segment by segment, a literal before a parameter and literals
// in byte order; a shorter path before its extensions; then method and endpoint id so that the
// order is total.
func compareRoutes(a, b epRoute) int {
	if a.templated != b.templated {
		if !a.templated {
			return -1
		}
		return 1
	}
	for i := 0; i < len(a.segs) && i < len(b.segs); i++ {
		sa, sb := a.segs[i], b.segs[i]
		pa, pb := isParam(sa), isParam(sb)
		switch {
		case pa && pb:
			continue
		case pa:
			return 1
		case pb:
			return -1
		}
		if c := strings.Compare(sa, sb); c != 0 {
			return c
		}
	}
	if c := len(a.segs) - len(b.segs); c != 0 {
		return c
	}
	if c := strings.Compare(a.ep.GetMethod(), b.ep.GetMethod()); c != 0 {
		return c
	}
	return strings.Compare(a.ep.GetId(), b.ep.GetId())
}

// isParam reports whether a path segment is a {name} parameter.
func isParam(seg string) bool {
	return len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}'
}

// pathRegex turns a path template into an RE2 regex that matches the whole path, each
// parameter matching one segment.
func pathRegex(segs []string) string {
	var b strings.Builder
	b.WriteByte('^')
	for _, s := range segs {
		b.WriteByte('/')
		if isParam(s) {
			b.WriteString(paramSegmentRegex)
		} else {
			b.WriteString(regexp.QuoteMeta(s))
		}
	}
	b.WriteByte('$')
	return b.String()
}

// routeBuilder holds the parts every route shares, built once per compile.
type routeBuilder struct {
	runtimePrefix string
	methods       map[string]*routev3.HeaderMatcher
	rewrite       *matcherv3.RegexMatcher
	authzOff      map[string]*anypb.Any
	notFound      *routev3.Route_DirectResponse
	marshal       proto.MarshalOptions
}

func newRouteBuilder(s Settings) (*routeBuilder, error) {
	off, err := optionalFilterConfig(&extauthzv3.ExtAuthzPerRoute{
		Override: &extauthzv3.ExtAuthzPerRoute_Disabled{Disabled: true},
	})
	if err != nil {
		return nil, err
	}
	return &routeBuilder{
		runtimePrefix: s.RuntimePathPrefix + "/recipes/",
		methods:       map[string]*routev3.HeaderMatcher{},
		// The rewrite pattern covers the whole path; Envoy keeps the query string and puts the
		// original path in x-envoy-original-path.
		rewrite:  &matcherv3.RegexMatcher{Regex: "^.*$"},
		authzOff: map[string]*anypb.Any{wellknown.HTTPExternalAuthorization: off},
		notFound: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
			Status: 404,
			BodyFormat: &corev3.SubstitutionFormatString{
				Format: &corev3.SubstitutionFormatString_TextFormatSource{
					TextFormatSource: &corev3.DataSource{
						Specifier: &corev3.DataSource_InlineString{InlineString: notFoundBody},
					},
				},
				ContentType: problemContentType,
			},
		}},
		marshal: proto.MarshalOptions{Deterministic: true},
	}, nil
}

// routeConfiguration builds the single RouteConfiguration: one route per endpoint in order,
// then the catch-all 404.
func routeConfiguration(eps []epRoute, s Settings) (*routev3.RouteConfiguration, error) {
	b, err := newRouteBuilder(s)
	if err != nil {
		return nil, err
	}
	routes := make([]*routev3.Route, 0, len(eps)+1)
	for i := range eps {
		r, err := b.route(&eps[i])
		if err != nil {
			return nil, fmt.Errorf("endpoint %q: %w", eps[i].ep.GetId(), err)
		}
		routes = append(routes, r)
	}
	routes = append(routes, b.notFoundRoute(NotFoundRouteName,
		&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}))
	return &routev3.RouteConfiguration{
		Name: RouteConfigName,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    VirtualHostName,
			Domains: []string{"*"},
			Routes:  routes,
		}},
	}, nil
}

// route builds the route of one endpoint: to the runtime when active, else the 404.
func (b *routeBuilder) route(e *epRoute) (*routev3.Route, error) {
	match := &routev3.RouteMatch{Headers: []*routev3.HeaderMatcher{b.methodMatcher(e.ep.GetMethod())}}
	if e.templated {
		match.PathSpecifier = &routev3.RouteMatch_SafeRegex{
			SafeRegex: &matcherv3.RegexMatcher{Regex: pathRegex(e.segs)},
		}
	} else {
		match.PathSpecifier = &routev3.RouteMatch_Path{Path: e.path}
	}
	if !e.active {
		return b.notFoundRoute(e.ep.GetId(), match), nil
	}
	authz, err := b.authzCheck(e)
	if err != nil {
		return nil, err
	}
	return &routev3.Route{
		Name:  e.ep.GetId(),
		Match: match,
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: RuntimeCluster},
			Timeout:          durationpb.New(e.timeout),
			RegexRewrite: &matcherv3.RegexMatchAndSubstitute{
				Pattern:      b.rewrite,
				Substitution: b.runtimePrefix + e.ep.GetRecipeId(),
			},
		}},
		// Set by the router, after ext_authz, overwriting anything that got through: the
		// runtime always learns which recipe, endpoint and collection it serves.
		RequestHeadersToAdd: []*corev3.HeaderValueOption{
			setHeader(HeaderRecipeID, e.ep.GetRecipeId()),
			setHeader(HeaderEndpointID, e.ep.GetId()),
			setHeader(HeaderCollectionID, e.ep.GetCollectionId()),
		},
		TypedPerFilterConfig: map[string]*anypb.Any{wellknown.HTTPExternalAuthorization: authz},
	}, nil
}

// notFoundRoute answers 404 problem+json from Envoy without asking the authz.
func (b *routeBuilder) notFoundRoute(name string, match *routev3.RouteMatch) *routev3.Route {
	return &routev3.Route{
		Name:                 name,
		Match:                match,
		Action:               b.notFound,
		TypedPerFilterConfig: b.authzOff,
		// The router would default a direct response to text/plain.
		ResponseHeadersToAdd: []*corev3.HeaderValueOption{setHeader("content-type", problemContentType)},
	}
}

// authzCheck is the per-route ext_authz config that tells the authz which endpoint it checks.
func (b *routeBuilder) authzCheck(e *epRoute) (*anypb.Any, error) {
	return optionalFilterConfigWith(b.marshal, &extauthzv3.ExtAuthzPerRoute{
		Override: &extauthzv3.ExtAuthzPerRoute_CheckSettings{CheckSettings: &extauthzv3.CheckSettings{
			ContextExtensions: map[string]string{
				ContextCollectionID: e.ep.GetCollectionId(),
				ContextEndpointID:   e.ep.GetId(),
				ContextRecipeID:     e.ep.GetRecipeId(),
			},
		}},
	})
}

// methodMatcher returns the shared :method matcher of an HTTP method.
func (b *routeBuilder) methodMatcher(method string) *routev3.HeaderMatcher {
	if m, ok := b.methods[method]; ok {
		return m
	}
	m := &routev3.HeaderMatcher{
		Name: ":method",
		HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
			MatchPattern: &matcherv3.StringMatcher_Exact{Exact: method},
		}},
	}
	b.methods[method] = m
	return m
}

// setHeader is a header option that replaces any value already present.
func setHeader(key, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: key, Value: value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// optionalFilterConfig wraps a per-route filter config in FilterConfig{is_optional: true}, so
// that xDS clients without the filter (grpc-go) accept the route while Envoy applies it.
func optionalFilterConfig(m proto.Message) (*anypb.Any, error) {
	return optionalFilterConfigWith(proto.MarshalOptions{Deterministic: true}, m)
}

func optionalFilterConfigWith(mo proto.MarshalOptions, m proto.Message) (*anypb.Any, error) {
	inner, err := marshalAny(mo, m)
	if err != nil {
		return nil, err
	}
	return marshalAny(mo, &routev3.FilterConfig{Config: inner, IsOptional: true})
}

// marshalAny is anypb.New with deterministic map order, so equal configs give equal bytes.
func marshalAny(mo proto.MarshalOptions, m proto.Message) (*anypb.Any, error) {
	v, err := mo.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("marshal %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return &anypb.Any{TypeUrl: typeURL(m), Value: v}, nil
}

func typeURL(m proto.Message) string {
	return "type.googleapis.com/" + string(m.ProtoReflect().Descriptor().FullName())
}
