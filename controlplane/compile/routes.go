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
	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

// paramSegmentRegex matches one path parameter: a non-empty segment. Envoy has normalised the
// path and refused escaped slashes before routing, so a parameter cannot span segments.
const paramSegmentRegex = "[^/]+"

// notFoundBody is the problem+json of an unknown or inactive endpoint. Both answer the same so
// a caller cannot tell that an inactive endpoint exists. The body is static (Envoy 1.36, the
// version the deployments run, has no body_format on direct responses); the request id is in
// the x-request-id response header.
const notFoundBody = `{"type":"https://gatehouse.dev/problems/endpoint_not_found",` +
	`"title":"Endpoint not found","status":404,"code":"endpoint_not_found"}`

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
	// route and authz are the endpoint's resources, set by routeConfiguration and
	// authzResources, or carried over from the previous compile of a Compiler.
	route *routev3.Route
	authz *authzv1.Endpoint
}

// endpointRoutes prepares every endpoint of snap and sorts them into route order. An endpoint
// found in prev with the same collection message is taken from there with its resources.
func endpointRoutes(snap *store.Snapshot, idx *index, prev map[*adminv1.Endpoint]*epRoute) ([]epRoute, error) {
	out := make([]epRoute, 0, len(snap.Endpoints))
	for _, ep := range snap.Endpoints {
		coll, ok := idx.collections[ep.GetCollectionId()]
		if !ok {
			return nil, fmt.Errorf("endpoint %q: unknown collection %q", ep.GetId(), ep.GetCollectionId())
		}
		if m, ok := prev[ep]; ok && m.coll == coll {
			out = append(out, *m)
			continue
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
	// problemHeaders set the content type of the 404s, which the router would default to
	// text/plain.
	problemHeaders []*corev3.HeaderValueOption
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
			Body:   &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: notFoundBody}},
		}},
		problemHeaders: []*corev3.HeaderValueOption{setHeader("content-type", problemContentType)},
	}, nil
}

// routeConfiguration builds the single RouteConfiguration: one route per endpoint in order,
// then the catch-all 404. Endpoints that already carry their route keep it.
func routeConfiguration(eps []epRoute, b *routeBuilder) *routev3.RouteConfiguration {
	routes := make([]*routev3.Route, 0, len(eps)+1)
	missing := 0
	for i := range eps {
		if eps[i].route == nil {
			missing++
		}
	}
	// One allocation for the messages of all new routes instead of some twenty per route: at
	// 100,000 endpoints allocation and GC were most of the compile time.
	parts := make([]routeParts, missing)
	for i := range eps {
		if eps[i].route == nil {
			eps[i].route = b.route(&eps[i], &parts[len(parts)-missing])
			missing--
		}
		routes = append(routes, eps[i].route)
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
	}
}

// routeParts holds the messages of one route, allocated together.
type routeParts struct {
	route     routev3.Route
	match     routev3.RouteMatch
	methods   [1]*routev3.HeaderMatcher
	exact     routev3.RouteMatch_Path
	safeRegex routev3.RouteMatch_SafeRegex
	regex     matcherv3.RegexMatcher
	action    routev3.Route_Route
	ra        routev3.RouteAction
	cluster   routev3.RouteAction_Cluster
	timeout   durationpb.Duration
	rewrite   matcherv3.RegexMatchAndSubstitute
	headers   [3]*corev3.HeaderValueOption
	options   [3]corev3.HeaderValueOption
	values    [3]corev3.HeaderValue
	authz     anypb.Any
}

// route builds the route of one endpoint in p: to the runtime when active, else the 404.
func (b *routeBuilder) route(e *epRoute, p *routeParts) *routev3.Route {
	p.methods[0] = b.methodMatcher(e.ep.GetMethod())
	p.match.Headers = p.methods[:]
	if e.templated {
		p.regex.Regex = pathRegex(e.segs)
		p.safeRegex.SafeRegex = &p.regex
		p.match.PathSpecifier = &p.safeRegex
	} else {
		p.exact.Path = e.path
		p.match.PathSpecifier = &p.exact
	}
	if !e.active {
		return b.notFoundRoute(e.ep.GetId(), &p.match)
	}
	p.cluster.Cluster = RuntimeCluster
	p.timeout.Seconds = int64(e.timeout / time.Second)
	p.timeout.Nanos = int32(e.timeout % time.Second)
	p.rewrite.Pattern = b.rewrite
	p.rewrite.Substitution = b.runtimePrefix + e.ep.GetRecipeId()
	p.ra.ClusterSpecifier = &p.cluster
	p.ra.Timeout = &p.timeout
	p.ra.RegexRewrite = &p.rewrite
	p.action.Route = &p.ra
	// Set by the router, after ext_authz, overwriting anything that got through: the runtime
	// always learns which recipe, endpoint and collection it serves.
	for i, kv := range [3][2]string{
		{HeaderRecipeID, e.ep.GetRecipeId()},
		{HeaderEndpointID, e.ep.GetId()},
		{HeaderCollectionID, e.ep.GetCollectionId()},
	} {
		p.values[i].Key, p.values[i].Value = kv[0], kv[1]
		p.options[i].Header = &p.values[i]
		p.options[i].AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		p.headers[i] = &p.options[i]
	}
	p.authz.TypeUrl = filterConfigType
	p.authz.Value = encodeAuthzCheck(e.ep.GetCollectionId(), e.ep.GetId(), e.ep.GetRecipeId())

	p.route.Name = e.ep.GetId()
	p.route.Match = &p.match
	p.route.Action = &p.action
	p.route.RequestHeadersToAdd = p.headers[:]
	p.route.TypedPerFilterConfig = map[string]*anypb.Any{wellknown.HTTPExternalAuthorization: &p.authz}
	return &p.route
}

// notFoundRoute answers 404 problem+json from Envoy without asking the authz.
func (b *routeBuilder) notFoundRoute(name string, match *routev3.RouteMatch) *routev3.Route {
	return &routev3.Route{
		Name:                 name,
		Match:                match,
		Action:               b.notFound,
		TypedPerFilterConfig: b.authzOff,
		ResponseHeadersToAdd: b.problemHeaders,
	}
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
	inner, err := marshalAny(m)
	if err != nil {
		return nil, err
	}
	return marshalAny(&routev3.FilterConfig{Config: inner, IsOptional: true})
}

// marshalAny is anypb.New with deterministic map order, so equal configs give equal bytes.
func marshalAny(m proto.Message) (*anypb.Any, error) {
	v, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("marshal %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return &anypb.Any{TypeUrl: "type.googleapis.com/" + string(m.ProtoReflect().Descriptor().FullName()), Value: v}, nil
}
