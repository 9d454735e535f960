package compile

import (
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	celv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/filters/cel/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Problem codes of the replies Envoy makes itself, when neither the authz nor the runtime can
// answer. They complete the authz's own codes in the caller contract.
const (
	// ProblemAuthzUnavailable (503): the ext_authz check failed (sidecar unreachable, timed
	// out or broken), so the request was refused without a decision.
	ProblemAuthzUnavailable = "authz_unavailable"
	// ProblemRuntimeUnavailable (503): the recipe runtime could not be reached or reset the
	// request before answering.
	ProblemRuntimeUnavailable = "runtime_unavailable"
	// ProblemRuntimeTimeout (504): the recipe runtime did not answer within the endpoint's
	// timeout.
	ProblemRuntimeTimeout = "runtime_timeout"
)

// problemTypePrefix starts every problem "type" URI, as in the authz's own problem bodies.
const problemTypePrefix = "https://gatehouse.dev/problems/"

// celFilterName is the extension name of Envoy's CEL access-log filter.
const celFilterName = "envoy.access_loggers.extension_filters.cel"

// extAuthzErrorDetails are the response code details of the local reply ext_authz sends when
// the check call fails and failure_mode_allow is off. Its denials carry "ext_authz_denied".
const extAuthzErrorDetails = "ext_authz_error"

// authzErrorExpression selects the ext_authz failure reply by its code details; Envoy reads a
// CEL evaluation error as false, so a reply the expression cannot judge stays untouched.
const authzErrorExpression = `response.code_details == "` + extAuthzErrorDetails + `"`

// Envoy response flags the mappers select on.
const (
	// flagExtAuthz is set on every ext_authz refusal, denial and failure alike.
	flagExtAuthz = "UAEX"
	// flagUpstreamTimeout is set when the route's timeout (or a per-try timeout) expired.
	flagUpstreamTimeout = "UT"
)

// runtimeUnavailableFlags are the upstream failures after which the router answers 503
// itself: connection failure, no healthy host, circuit breaker overflow, retries exhausted,
// connection closed or stream reset before the response began, and no such cluster (only
// while a configuration is half applied). UPE (502, the runtime spoke broken HTTP) stays out:
// that is a runtime bug, not an outage.
var runtimeUnavailableFlags = []string{"UF", "UH", "UO", "URX", "UC", "UR", "NC"}

// localReplyConfig gives Envoy's own error replies the caller contract's problem+json body.
//
// Only local replies that one of the mappers selects are rewritten; there is no catch-all
// and no top-level body_format, because the authz's denials (which already carry its
// problem+json) and the 404 direct responses (which Envoy also passes through local reply
// mapping) must leave Envoy unchanged. None of them carries the flags below: a denial has
// UAEX with details ext_authz_denied, a direct response no flag at all.
func localReplyConfig() (*hcmv3.LocalReplyConfig, error) {
	cel, err := marshalAny(&celv3.ExpressionFilter{Expression: authzErrorExpression})
	if err != nil {
		return nil, err
	}
	authzError := &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_AndFilter{
		AndFilter: &accesslogv3.AndFilter{Filters: []*accesslogv3.AccessLogFilter{
			// The flag test comes first so that the CEL expression runs only on
			// ext_authz refusals, not on every 404.
			responseFlagFilter(flagExtAuthz),
			{FilterSpecifier: &accesslogv3.AccessLogFilter_ExtensionFilter{
				ExtensionFilter: &accesslogv3.ExtensionFilter{
					Name:       celFilterName,
					ConfigType: &accesslogv3.ExtensionFilter_TypedConfig{TypedConfig: cel},
				},
			}},
		}},
	}}
	return &hcmv3.LocalReplyConfig{Mappers: []*hcmv3.ResponseMapper{
		problemMapper(authzError, 503, ProblemAuthzUnavailable, "Authorization unavailable",
			"The authorization service could not decide; the request was refused."),
		// Routes configure no retries, so a reply carries at most one of the upstream
		// flags; were retries added, a reply that timed out in the end still says so.
		problemMapper(responseFlagFilter(flagUpstreamTimeout), 504, ProblemRuntimeTimeout,
			"Recipe runtime timeout", "The recipe runtime did not answer in time."),
		problemMapper(responseFlagFilter(runtimeUnavailableFlags...), 503, ProblemRuntimeUnavailable,
			"Recipe runtime unavailable", "The recipe runtime could not be reached."),
	}}, nil
}

// problemMapper rewrites a selected local reply to status with an RFC 9457 body for code. The
// status is set explicitly so that the HTTP status, the body's status (%RESPONSE_CODE% is read
// after the rewrite) and the code always agree.
func problemMapper(filter *accesslogv3.AccessLogFilter, status uint32, code, title, detail string) *hcmv3.ResponseMapper {
	return &hcmv3.ResponseMapper{
		Filter:     filter,
		StatusCode: wrapperspb.UInt32(status),
		BodyFormatOverride: &corev3.SubstitutionFormatString{
			Format: &corev3.SubstitutionFormatString_JsonFormat{JsonFormat: &structpb.Struct{
				Fields: map[string]*structpb.Value{
					"type":       structpb.NewStringValue(problemTypePrefix + code),
					"title":      structpb.NewStringValue(title),
					"status":     structpb.NewStringValue("%RESPONSE_CODE%"),
					"detail":     structpb.NewStringValue(detail),
					"code":       structpb.NewStringValue(code),
					"request_id": structpb.NewStringValue("%REQ(X-REQUEST-ID)%"),
				},
			}},
			ContentType: problemContentType,
		},
	}
}

// responseFlagFilter matches a reply that carries any of flags.
func responseFlagFilter(flags ...string) *accesslogv3.AccessLogFilter {
	return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_ResponseFlagFilter{
		ResponseFlagFilter: &accesslogv3.ResponseFlagFilter{Flags: flags},
	}}
}
