package compile

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"cel.dev/cel-go/cel"
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	celv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/filters/cel/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/google/go-cmp/cmp"
)

// envoyReply is what Envoy knows about one of its own replies when it runs the mappers.
type envoyReply struct {
	status  uint32
	flags   []string
	details string
}

// problem is the rendered body of a rewritten reply; nil when the reply passes unchanged.
type problem map[string]any

// TestLocalReplyMappers runs the listener's local reply mappers, first match wins as in Envoy,
// over the replies Envoy makes itself, and checks that exactly the authz failure and the
// runtime failures get a problem+json body, while the authz's denials and the 404 direct
// responses pass unchanged. The CEL expression is evaluated by cel-go over Envoy's response
// attributes, so a misspelt attribute or a wrong comparison fails here rather than silently
// never matching in Envoy (which reads an evaluation error as false).
func TestLocalReplyMappers(t *testing.T) {
	const requestID = "6f1c0a52-2b1e-4c55-9a55-8c1e3b0f7d21"
	want := func(status int, code, title, detail string) problem {
		return problem{
			"type": problemTypePrefix + code, "title": title, "status": float64(status),
			"detail": detail, "code": code, "request_id": requestID,
		}
	}
	authzUnavailable := want(503, ProblemAuthzUnavailable, "Authorization unavailable",
		"The authorization service could not decide; the request was refused.")
	runtimeUnavailable := want(503, ProblemRuntimeUnavailable, "Recipe runtime unavailable",
		"The recipe runtime could not be reached.")
	runtimeTimeout := want(504, ProblemRuntimeTimeout, "Recipe runtime timeout",
		"The recipe runtime did not answer in time.")
	tests := []struct {
		name  string
		reply envoyReply
		want  problem
	}{
		{"authz unreachable", envoyReply{503, []string{"UAEX"}, "ext_authz_error"}, authzUnavailable},
		{"authz denial 401 keeps its body", envoyReply{401, []string{"UAEX"}, "ext_authz_denied"}, nil},
		{"authz denial 403 keeps its body", envoyReply{403, []string{"UAEX"}, "ext_authz_denied"}, nil},
		{"authz denial 429 keeps its body", envoyReply{429, []string{"UAEX"}, "ext_authz_denied"}, nil},
		{"authz's own 503 keeps its body", envoyReply{503, []string{"UAEX"}, "ext_authz_denied"}, nil},
		{"authz response Envoy refused", envoyReply{500, []string{"UAEX"}, "ext_authz_invalid"}, nil},
		{"unknown endpoint 404 direct response", envoyReply{404, nil, "direct_response"}, nil},
		{"no route", envoyReply{404, []string{"NR"}, "route_not_found"}, nil},
		{"escaped slash refused", envoyReply{400, nil, "path_with_escaped_slashes_rejected"}, nil},
		{"slow request headers", envoyReply{408, []string{"DT"}, "request_header_timeout"}, nil},
		{"runtime refuses connections", envoyReply{503, []string{"UF"},
			"upstream_reset_before_response_started{remote_connection_failure}"}, runtimeUnavailable},
		{"no healthy runtime host", envoyReply{503, []string{"UH"}, "no_healthy_upstream"}, runtimeUnavailable},
		{"runtime circuit breaker open", envoyReply{503, []string{"UO"},
			"upstream_reset_before_response_started{overflow}"}, runtimeUnavailable},
		{"retries exhausted", envoyReply{503, []string{"UF", "URX"},
			"upstream_reset_before_response_started{remote_connection_failure}"}, runtimeUnavailable},
		{"runtime closed the connection", envoyReply{503, []string{"UC"},
			"upstream_reset_before_response_started{connection_termination}"}, runtimeUnavailable},
		{"runtime reset the stream", envoyReply{503, []string{"UR"},
			"upstream_reset_before_response_started{remote_reset}"}, runtimeUnavailable},
		{"runtime cluster not yet known", envoyReply{503, []string{"NC"}, "cluster_not_found"}, runtimeUnavailable},
		{"runtime too slow", envoyReply{504, []string{"UT"}, "upstream_response_timeout"}, runtimeTimeout},
		{"runtime speaks broken HTTP", envoyReply{502, []string{"UPE"}, "upstream_reset_before_response_started{protocol_error}"}, nil},
	}
	lrc := listenerLocalReply(t)
	if lrc.GetBodyFormat() != nil {
		t.Errorf("local_reply_config has a body_format: it would rewrite every local reply, the authz's denials too")
	}
	ev := newFilterEvaluator(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got problem
			for _, m := range lrc.GetMappers() {
				if ev.matches(t, m.GetFilter(), tc.reply) {
					got = renderProblem(t, m, tc.reply, requestID)
					break
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("reply %+v (-want +got):\n%s", tc.reply, diff)
			}
		})
	}
}

// TestLocalReplyCELFilter checks the typed config inside the CEL extension filter: the name
// Envoy registers it under, its type, its PGV rules and the exact expression.
func TestLocalReplyCELFilter(t *testing.T) {
	var found []string
	for _, m := range listenerLocalReply(t).GetMappers() {
		walkFilters(m.GetFilter(), func(f *accesslogv3.AccessLogFilter) {
			ext := f.GetExtensionFilter()
			if ext == nil {
				return
			}
			if ext.GetName() != "envoy.access_loggers.extension_filters.cel" {
				t.Errorf("extension filter %q: Envoy knows the CEL filter as envoy.access_loggers.extension_filters.cel", ext.GetName())
			}
			expr := &celv3.ExpressionFilter{}
			if err := ext.GetTypedConfig().UnmarshalTo(expr); err != nil {
				t.Fatalf("unpack %s: %v", ext.GetTypedConfig().GetTypeUrl(), err)
			}
			if err := expr.ValidateAll(); err != nil {
				t.Errorf("ExpressionFilter.ValidateAll: %v", err)
			}
			found = append(found, expr.GetExpression())
		})
	}
	if diff := cmp.Diff([]string{`response.code_details == "ext_authz_error"`}, found); diff != "" {
		t.Errorf("CEL expressions (-want +got):\n%s", diff)
	}
}

// listenerLocalReply is the local_reply_config of the compiled public listener.
func listenerLocalReply(t *testing.T) *hcmv3.LocalReplyConfig {
	t.Helper()
	lis := mustCompile(t, fixture(), Settings{}).Envoy[resource.ListenerType][0].(*listenerv3.Listener)
	hcm := &hcmv3.HttpConnectionManager{}
	if err := lis.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(hcm); err != nil {
		t.Fatal(err)
	}
	if hcm.GetLocalReplyConfig() == nil {
		t.Fatal("the listener has no local_reply_config")
	}
	return hcm.GetLocalReplyConfig()
}

// walkFilters calls fn on f and every filter nested in it.
func walkFilters(f *accesslogv3.AccessLogFilter, fn func(*accesslogv3.AccessLogFilter)) {
	fn(f)
	for _, sub := range append(f.GetAndFilter().GetFilters(), f.GetOrFilter().GetFilters()...) {
		walkFilters(sub, fn)
	}
}

// filterEvaluator decides access-log filters the way Envoy does for the kinds the mappers use;
// any other kind fails the test, so a new one cannot go unchecked.
type filterEvaluator struct {
	env *cel.Env
}

func newFilterEvaluator(t *testing.T) *filterEvaluator {
	t.Helper()
	// Envoy's top-level CEL attributes; only "response" is filled in for a local reply test.
	env, err := cel.NewEnv(
		cel.Variable("request", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("response", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("connection", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("upstream", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("source", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("destination", cel.MapType(cel.StringType, cel.DynType)),
	)
	if err != nil {
		t.Fatal(err)
	}
	return &filterEvaluator{env: env}
}

func (e *filterEvaluator) matches(t *testing.T, f *accesslogv3.AccessLogFilter, r envoyReply) bool {
	t.Helper()
	switch {
	case f.GetAndFilter() != nil:
		for _, sub := range f.GetAndFilter().GetFilters() {
			if !e.matches(t, sub, r) {
				return false
			}
		}
		return true
	case f.GetOrFilter() != nil:
		return slices.ContainsFunc(f.GetOrFilter().GetFilters(), func(sub *accesslogv3.AccessLogFilter) bool {
			return e.matches(t, sub, r)
		})
	case f.GetResponseFlagFilter() != nil:
		// No flags listed means any flag at all.
		want := f.GetResponseFlagFilter().GetFlags()
		if len(want) == 0 {
			return len(r.flags) > 0
		}
		return slices.ContainsFunc(r.flags, func(fl string) bool { return slices.Contains(want, fl) })
	case f.GetExtensionFilter() != nil:
		expr := &celv3.ExpressionFilter{}
		if err := f.GetExtensionFilter().GetTypedConfig().UnmarshalTo(expr); err != nil {
			t.Fatalf("extension filter %q: %v", f.GetExtensionFilter().GetName(), err)
		}
		return e.evalCEL(t, expr.GetExpression(), r)
	}
	t.Fatalf("filter kind the test cannot judge: %v", f)
	return false
}

// evalCEL evaluates expr over Envoy's response attributes of r. An evaluation error is a test
// failure: Envoy would read it as false, and the mapper would silently never match.
func (e *filterEvaluator) evalCEL(t *testing.T, expr string, r envoyReply) bool {
	t.Helper()
	ast, iss := e.env.Compile(expr)
	if iss.Err() != nil {
		t.Fatalf("CEL %q: %v", expr, iss.Err())
	}
	prg, err := e.env.Program(ast)
	if err != nil {
		t.Fatalf("CEL %q: %v", expr, err)
	}
	out, _, err := prg.Eval(map[string]any{
		"request": map[string]any{}, "connection": map[string]any{}, "upstream": map[string]any{},
		"source": map[string]any{}, "destination": map[string]any{},
		"response": map[string]any{
			"code": int64(r.status), "code_details": r.details, "flags": uint64(len(r.flags)),
			"grpc_status": int64(0), "headers": map[string]string{}, "trailers": map[string]string{},
			"size": int64(0), "total_size": int64(0),
		},
	})
	if err != nil {
		t.Fatalf("CEL %q on %+v: %v", expr, r, err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		t.Fatalf("CEL %q gives %T, Envoy reads anything but a bool as false", expr, out.Value())
	}
	return b
}

// renderProblem formats the body m gives r as Envoy would: the mapper's status replaces the
// reply's, then the json_format is filled in (a lone %RESPONSE_CODE% renders as a number).
// It also checks the status and content type the mapper sets.
func renderProblem(t *testing.T, m *hcmv3.ResponseMapper, r envoyReply, requestID string) problem {
	t.Helper()
	status := r.status
	if m.GetStatusCode() != nil {
		status = m.GetStatusCode().GetValue()
	}
	bf := m.GetBodyFormatOverride()
	if bf.GetContentType() != "application/problem+json" {
		t.Errorf("content type %q", bf.GetContentType())
	}
	out := problem{}
	for k, v := range bf.GetJsonFormat().GetFields() {
		s := v.GetStringValue()
		switch {
		case s == "%RESPONSE_CODE%":
			out[k] = float64(status)
		case s == "%REQ(X-REQUEST-ID)%":
			out[k] = requestID
		case strings.Contains(s, "%"):
			t.Errorf("field %q: command operator %q not rendered by the test", k, s)
		default:
			out[k] = s
		}
	}
	// The body's status is the HTTP status.
	if b, err := json.Marshal(out["status"]); err != nil || string(b) != strconv.Itoa(int(status)) {
		t.Errorf("body status %v, HTTP status %d", out["status"], status)
	}
	return out
}
