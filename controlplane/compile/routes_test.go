package compile

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

func TestPathRegex(t *testing.T) {
	tests := []struct {
		name     string
		template string
		want     string
		match    []string
		noMatch  []string
	}{
		{
			name:     "one parameter matches one segment",
			template: "/sales/invoices/{id}",
			want:     `^/sales/invoices/[^/]+$`,
			match:    []string{"/sales/invoices/42", "/sales/invoices/a-b.c"},
			noMatch:  []string{"/sales/invoices/", "/sales/invoices/4/2", "/sales/invoices", "/x/sales/invoices/1"},
		},
		{
			name:     "regex characters in literal segments are quoted",
			template: "/sales/reports/{year}/q1.v2+csv",
			want:     `^/sales/reports/[^/]+/q1\.v2\+csv$`,
			match:    []string{"/sales/reports/2026/q1.v2+csv"},
			noMatch:  []string{"/sales/reports/2026/q1xv2+csv", "/sales/reports/2026/q1.v22csv"},
		},
		{
			name:     "parameters in several places",
			template: "/hr/employees/{employee_id}/payslips/{month}",
			want:     `^/hr/employees/[^/]+/payslips/[^/]+$`,
			match:    []string{"/hr/employees/7/payslips/2026-01"},
			noMatch:  []string{"/hr/employees/7/payslips", "/hr/employees//payslips/1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := pathRegex(strings.Split(tc.template[1:], "/"))
			if got != tc.want {
				t.Errorf("pathRegex(%q) = %q, want %q", tc.template, got, tc.want)
			}
			// Go's regexp is RE2, the syntax Envoy's safe_regex and grpc-go use.
			re := regexp.MustCompile(got)
			for _, p := range tc.match {
				if !re.MatchString(p) {
					t.Errorf("%q does not match %q", got, p)
				}
			}
			for _, p := range tc.noMatch {
				if re.MatchString(p) {
					t.Errorf("%q matches %q", got, p)
				}
			}
		})
	}
}

// routesOf returns the routes of the single virtual host.
func routesOf(t *testing.T, out *Output) []*routev3.Route {
	t.Helper()
	rs := out.Envoy[resource.RouteType]
	if len(rs) != 1 {
		t.Fatalf("%d route configurations, want 1", len(rs))
	}
	rc := rs[0].(*routev3.RouteConfiguration)
	if rc.GetName() != RouteConfigName || len(rc.GetVirtualHosts()) != 1 {
		t.Fatalf("route configuration %q with %d virtual hosts", rc.GetName(), len(rc.GetVirtualHosts()))
	}
	return rc.GetVirtualHosts()[0].GetRoutes()
}

func TestRouteOrder(t *testing.T) {
	var got []string
	for _, r := range routesOf(t, mustCompile(t, fixture(), Settings{})) {
		got = append(got, r.GetName())
	}
	want := []string{
		// Literal paths first, by path then method.
		"ep-root",           // /hr-v2/
		"ep-list-invoices",  // GET /sales-api-v1/invoices
		"ep-create-invoice", // POST /sales-api-v1/invoices
		"ep-latest-invoice", // /sales-api-v1/invoices/latest
		"ep-payslip",        // /hr-v2/employees/{employee_id}/payslips/{month}
		"ep-delete-invoice", // DELETE /sales-api-v1/invoices/{id}
		"ep-get-invoice",    // GET /sales-api-v1/invoices/{id}
		"ep-report",         // /sales-api-v1/reports/{year}/q1.v2+csv
		NotFoundRouteName,   // everything else
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("route order (-want +got):\n%s", diff)
	}
}

func TestCompareRoutesPrefersLiteralSegments(t *testing.T) {
	mk := func(id, path string) epRoute {
		segs := strings.Split(path[1:], "/")
		e := epRoute{path: path, segs: segs}
		for _, s := range segs {
			e.templated = e.templated || isParam(s)
		}
		e.ep = &adminv1.Endpoint{Id: id, Method: "GET"}
		return e
	}
	tests := []struct {
		name  string
		first epRoute
		then  epRoute
	}{
		{"literal path before any template", mk("a", "/c/z/z"), mk("b", "/c/a/{x}")},
		{"literal segment before parameter at the first difference", mk("a", "/c/a/{x}"), mk("b", "/c/{y}/b")},
		{"literal segments in byte order", mk("a", "/c/a/{x}"), mk("b", "/c/b/{x}")},
		{"shorter template before its extension", mk("a", "/c/{x}"), mk("b", "/c/{x}/d")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if c := compareRoutes(tc.first, tc.then); c >= 0 {
				t.Errorf("compareRoutes(%s, %s) = %d, want < 0", tc.first.path, tc.then.path, c)
			}
			if c := compareRoutes(tc.then, tc.first); c <= 0 {
				t.Errorf("compareRoutes(%s, %s) = %d, want > 0", tc.then.path, tc.first.path, c)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	routes := map[string]*routev3.Route{}
	for _, r := range routesOf(t, mustCompile(t, fixture(), Settings{RuntimePathPrefix: "/api"})) {
		routes[r.GetName()] = r
	}
	authzOff := &extauthzv3.ExtAuthzPerRoute{Override: &extauthzv3.ExtAuthzPerRoute_Disabled{Disabled: true}}
	tests := []struct {
		name       string
		route      string
		wantMatch  *routev3.RouteMatch
		wantAction *routev3.RouteAction // nil: answers 404 from Envoy
		wantAuthz  *extauthzv3.ExtAuthzPerRoute
		wantHeader map[string]string
	}{
		{
			name:  "literal endpoint matches the exact path and method",
			route: "ep-list-invoices",
			wantMatch: &routev3.RouteMatch{
				PathSpecifier: &routev3.RouteMatch_Path{Path: "/sales-api-v1/invoices"},
				Headers:       []*routev3.HeaderMatcher{methodHeader("GET")},
			},
			wantAction: runtimeAction("/api/recipes/rcp-list", 30*time.Second),
			wantAuthz:  checkSettings("col-sales", "ep-list-invoices", "rcp-list"),
			wantHeader: map[string]string{HeaderRecipeID: "rcp-list", HeaderEndpointID: "ep-list-invoices", HeaderCollectionID: "col-sales"},
		},
		{
			name:  "templated endpoint matches a regex and keeps its timeout",
			route: "ep-payslip",
			wantMatch: &routev3.RouteMatch{
				PathSpecifier: safeRegex(`^/hr-v2/employees/[^/]+/payslips/[^/]+$`),
				Headers:       []*routev3.HeaderMatcher{methodHeader("GET")},
			},
			wantAction: runtimeAction("/api/recipes/rcp-payslip", 60*time.Second),
			wantAuthz:  checkSettings("col-hr", "ep-payslip", "rcp-payslip"),
			wantHeader: map[string]string{HeaderRecipeID: "rcp-payslip", HeaderEndpointID: "ep-payslip", HeaderCollectionID: "col-hr"},
		},
		{
			name:  "inactive endpoint answers 404 without asking the authz",
			route: "ep-delete-invoice",
			wantMatch: &routev3.RouteMatch{
				PathSpecifier: safeRegex(`^/sales-api-v1/invoices/[^/]+$`),
				Headers:       []*routev3.HeaderMatcher{methodHeader("DELETE")},
			},
			wantAuthz: authzOff,
		},
		{
			name:      "unknown paths answer 404 without asking the authz",
			route:     NotFoundRouteName,
			wantMatch: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			wantAuthz: authzOff,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := routes[tc.route]
			if !ok {
				t.Fatalf("no route %q", tc.route)
			}
			if diff := cmp.Diff(tc.wantMatch, r.GetMatch(), protocmp.Transform()); diff != "" {
				t.Errorf("match (-want +got):\n%s", diff)
			}
			fc := &routev3.FilterConfig{}
			if err := r.GetTypedPerFilterConfig()[wellknown.HTTPExternalAuthorization].UnmarshalTo(fc); err != nil {
				t.Fatalf("ext_authz per-route config: %v", err)
			}
			if !fc.GetIsOptional() {
				t.Errorf("ext_authz per-route config is not optional: grpc-go would reject the route")
			}
			authz := &extauthzv3.ExtAuthzPerRoute{}
			if err := fc.GetConfig().UnmarshalTo(authz); err != nil {
				t.Fatalf("ext_authz per-route config: %v", err)
			}
			if diff := cmp.Diff(tc.wantAuthz, authz, protocmp.Transform()); diff != "" {
				t.Errorf("ext_authz per-route (-want +got):\n%s", diff)
			}
			if tc.wantAction == nil {
				dr := r.GetDirectResponse()
				if dr.GetStatus() != 404 {
					t.Fatalf("route action %T, want a 404 direct response", r.GetAction())
				}
				body := dr.GetBody().GetInlineString()
				if !strings.Contains(body, `"code":"endpoint_not_found"`) || !strings.Contains(body, `"status":404`) {
					t.Errorf("404 body %s", body)
				}
				if h := headers(r.GetResponseHeadersToAdd()); h["content-type"] != problemContentType {
					t.Errorf("404 content-type %q", h["content-type"])
				}
				return
			}
			if diff := cmp.Diff(tc.wantAction, r.GetRoute(), protocmp.Transform()); diff != "" {
				t.Errorf("route action (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantHeader, headers(r.GetRequestHeadersToAdd())); diff != "" {
				t.Errorf("request headers (-want +got):\n%s", diff)
			}
			if len(r.GetRequestHeadersToRemove()) != 0 {
				t.Errorf("route removes %v: that runs after ext_authz and would drop its headers", r.GetRequestHeadersToRemove())
			}
		})
	}
}

// TestListenerFilters checks the security-relevant HTTP connection manager settings: paths
// normalised before routing, x-gatehouse-* stripped before ext_authz, authz failing closed.
func TestListenerFilters(t *testing.T) {
	out := mustCompile(t, fixture(), Settings{AuthzTimeout: 150 * time.Millisecond})
	lis := out.Envoy[resource.ListenerType][0].(*listenerv3.Listener)
	if lis.GetName() != ListenerName || lis.GetAddress().GetSocketAddress().GetPortValue() != 10000 {
		t.Fatalf("listener %q on %v", lis.GetName(), lis.GetAddress())
	}
	hcm := &hcmv3.HttpConnectionManager{}
	if err := lis.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(hcm); err != nil {
		t.Fatal(err)
	}
	if !hcm.GetNormalizePath().GetValue() || !hcm.GetMergeSlashes() ||
		hcm.GetPathWithEscapedSlashesAction() != hcmv3.HttpConnectionManager_REJECT_REQUEST {
		t.Errorf("path normalisation off: normalize=%v merge=%v escaped=%v", hcm.GetNormalizePath(),
			hcm.GetMergeSlashes(), hcm.GetPathWithEscapedSlashesAction())
	}
	if hcm.GetCommonHttpProtocolOptions().GetHeadersWithUnderscoresAction() != corev3.HttpProtocolOptions_DROP_HEADER {
		t.Errorf("headers with underscores are not dropped: x_gatehouse_* would reach the runtime")
	}
	if !hcm.GetUseRemoteAddress().GetValue() {
		t.Errorf("use_remote_address off: callers could choose their address with x-forwarded-for")
	}
	var order []string
	for _, f := range hcm.GetHttpFilters() {
		order = append(order, f.GetName())
	}
	if diff := cmp.Diff([]string{HeaderMutationFilter, wellknown.HTTPExternalAuthorization, wellknown.Router}, order); diff != "" {
		t.Errorf("filter order (-want +got):\n%s", diff)
	}
	authz := &extauthzv3.ExtAuthz{}
	if err := hcm.GetHttpFilters()[1].GetTypedConfig().UnmarshalTo(authz); err != nil {
		t.Fatal(err)
	}
	if authz.GetFailureModeAllow() || authz.GetStatusOnError().GetCode() != 503 || authz.GetClearRouteCache() {
		t.Errorf("ext_authz does not fail closed with 503: %v", authz)
	}
	if got := authz.GetGrpcService().GetTimeout().AsDuration(); got != 150*time.Millisecond {
		t.Errorf("ext_authz timeout %v", got)
	}
	if got := authz.GetGrpcService().GetEnvoyGrpc().GetClusterName(); got != AuthzCluster {
		t.Errorf("ext_authz cluster %q", got)
	}
}

func methodHeader(m string) *routev3.HeaderMatcher {
	return (&routeBuilder{methods: map[string]*routev3.HeaderMatcher{}}).methodMatcher(m)
}

func safeRegex(re string) *routev3.RouteMatch_SafeRegex {
	return &routev3.RouteMatch_SafeRegex{SafeRegex: matcherRegex(re)}
}

func runtimeAction(rewrite string, timeout time.Duration) *routev3.RouteAction {
	return &routev3.RouteAction{
		ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: RuntimeCluster},
		Timeout:          durationpb.New(timeout),
		RegexRewrite:     regexRewrite(rewrite),
	}
}

func checkSettings(col, ep, rcp string) *extauthzv3.ExtAuthzPerRoute {
	return &extauthzv3.ExtAuthzPerRoute{Override: &extauthzv3.ExtAuthzPerRoute_CheckSettings{
		CheckSettings: &extauthzv3.CheckSettings{ContextExtensions: map[string]string{
			ContextCollectionID: col, ContextEndpointID: ep, ContextRecipeID: rcp,
		}},
	}}
}

func headers(opts []*corev3.HeaderValueOption) map[string]string {
	m := map[string]string{}
	for _, o := range opts {
		if o.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			m[o.GetHeader().GetKey()] = "appended: " + o.GetHeader().GetValue()
			continue
		}
		m[o.GetHeader().GetKey()] = o.GetHeader().GetValue()
	}
	return m
}

func matcherRegex(re string) *matcherv3.RegexMatcher {
	return &matcherv3.RegexMatcher{Regex: re}
}

func regexRewrite(to string) *matcherv3.RegexMatchAndSubstitute {
	return &matcherv3.RegexMatchAndSubstitute{Pattern: matcherRegex("^.*$"), Substitution: to}
}

// TestAuthzCheckEncoding holds the hand-encoded per-route ext_authz config byte-equal to what
// deterministic proto marshalling produces, for short and long (multi-byte length) values.
func TestAuthzCheckEncoding(t *testing.T) {
	tests := []struct {
		name            string
		col, ep, recipe string
	}{
		{"short ids", "col-1", "ep-1", "rcp-1"},
		{"empty ids", "", "", ""},
		{"long ids need multi-byte lengths", strings.Repeat("c", 64), strings.Repeat("e", 64), strings.Repeat("r", 200)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, err := optionalFilterConfig(checkSettings(tc.col, tc.ep, tc.recipe))
			if err != nil {
				t.Fatal(err)
			}
			got := &anypb.Any{TypeUrl: filterConfigType, Value: encodeAuthzCheck(tc.col, tc.ep, tc.recipe)}
			if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
				t.Errorf("decoded config (-want +got):\n%s", diff)
			}
			if !bytes.Equal(want.GetValue(), got.GetValue()) {
				t.Errorf("bytes differ:\nwant %x\ngot  %x", want.GetValue(), got.GetValue())
			}
		})
	}
}
