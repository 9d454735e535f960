package compile

import (
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	grpcalsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/grpc/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// HeaderMutationFilter is the name of the HTTP filter that strips inbound x-gatehouse-* headers.
const HeaderMutationFilter = "envoy.filters.http.header_mutation"

// requestHeadersTimeout bounds the time from connection to the end of the request headers.
const requestHeadersTimeout = 10 * time.Second

// authzRequestHeaders are the request headers sent to the authz: its credentials, the request
// id for its problem bodies and logs, and x-forwarded-for for deployments with trusted proxies
// in front of Envoy. Method, path and the peer address travel in the check request's own
// fields; nothing else of the caller's reaches the authz.
var authzRequestHeaders = []string{"api-token", "authorization", "x-forwarded-for", "x-request-id"}

// accessLogHeaders are the request headers the access log records besides the standard fields:
// who called (set by the authz), what was called (set by the route) and the request id.
var accessLogHeaders = []string{
	HeaderClientID, HeaderProfileID, HeaderEndpointID, HeaderCollectionID, "x-request-id",
}

// listener builds the public HTTP listener: header_mutation → ext_authz → router, routes over
// RDS, access log over gRPC ALS.
func listener(s Settings) (*listenerv3.Listener, error) {
	strip, err := marshalAny(&headermutationv3.HeaderMutation{
		Mutations: &headermutationv3.Mutations{RequestMutations: []*mutationrulesv3.HeaderMutation{{
			Action: &mutationrulesv3.HeaderMutation_RemoveOnMatch_{
				RemoveOnMatch: &mutationrulesv3.HeaderMutation_RemoveOnMatch{KeyMatcher: &matcherv3.StringMatcher{
					MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: HeaderPrefix},
					IgnoreCase:   true,
				}},
			},
		}}},
	})
	if err != nil {
		return nil, err
	}
	authz, err := marshalAny(extAuthz(s))
	if err != nil {
		return nil, err
	}
	router, err := marshalAny(&routerv3.Router{})
	if err != nil {
		return nil, err
	}
	als, err := marshalAny(&grpcalsv3.HttpGrpcAccessLogConfig{
		CommonConfig: &grpcalsv3.CommonGrpcAccessLogConfig{
			LogName:             AccessLogName,
			GrpcService:         envoyGRPC(ControlPlaneCluster, 0),
			TransportApiVersion: corev3.ApiVersion_V3,
		},
		AdditionalRequestHeadersToLog: accessLogHeaders,
	})
	if err != nil {
		return nil, err
	}
	localReply, err := localReplyConfig()
	if err != nil {
		return nil, err
	}
	hcm, err := marshalAny(&hcmv3.HttpConnectionManager{
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		StatPrefix: "gatehouse_public",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource:    adsSource(),
			RouteConfigName: RouteConfigName,
		}},
		// Normalise before routing so that /a/../b, //a and %2e forms reach only the route
		// (and so the authz check) their normal form names; escaped slashes are refused.
		NormalizePath:                wrapperspb.Bool(true),
		MergeSlashes:                 true,
		PathWithEscapedSlashesAction: hcmv3.HttpConnectionManager_REJECT_REQUEST,
		// Envoy is the edge: the caller's address (for IP allow/deny lists) is the peer, not a
		// caller-supplied x-forwarded-for, and inbound x-request-id is replaced.
		UseRemoteAddress: wrapperspb.Bool(true),
		// Callers can quote the request id of any answer, including Envoy's own 404s.
		AlwaysSetRequestIdInResponse: true,
		// Some runtimes (CGI, WSGI, nginx) read x_gatehouse_client_id as x-gatehouse-client-id,
		// which the prefix strip would miss: drop every header with an underscore.
		CommonHttpProtocolOptions: &corev3.HttpProtocolOptions{
			HeadersWithUnderscoresAction: corev3.HttpProtocolOptions_DROP_HEADER,
		},
		// Bound how long a caller may take to send its headers (slow-header attacks).
		RequestHeadersTimeout: durationpb.New(requestHeadersTimeout),
		HttpFilters: []*hcmv3.HttpFilter{
			{Name: HeaderMutationFilter, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: strip}},
			{Name: wellknown.HTTPExternalAuthorization, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: authz}},
			{Name: wellknown.Router, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: router}},
		},
		// Envoy's own 503/504s (authz or runtime unreachable) answer problem+json too.
		LocalReplyConfig: localReply,
		AccessLog: []*accesslogv3.AccessLog{{
			Name:       wellknown.HTTPGRPCAccessLog,
			ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: als},
		}},
	})
	if err != nil {
		return nil, err
	}
	return &listenerv3.Listener{
		Name:    ListenerName,
		Address: socketAddress(s.ListenerAddress, s.ListenerPort),
		FilterChains: []*listenerv3.FilterChain{{
			Filters: []*listenerv3.Filter{{
				Name:       wellknown.HTTPConnectionManager,
				ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: hcm},
			}},
		}},
	}, nil
}

// extAuthz is the ext_authz filter: fail closed with 503, route decided before the check.
func extAuthz(s Settings) *extauthzv3.ExtAuthz {
	allowed := make([]*matcherv3.StringMatcher, len(authzRequestHeaders))
	for i, h := range authzRequestHeaders {
		allowed[i] = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: h}, IgnoreCase: true}
	}
	return &extauthzv3.ExtAuthz{
		Services:               &extauthzv3.ExtAuthz_GrpcService{GrpcService: envoyGRPC(AuthzCluster, s.AuthzTimeout)},
		TransportApiVersion:    corev3.ApiVersion_V3,
		FailureModeAllow:       false,
		StatusOnError:          &typev3.HttpStatus{Code: typev3.StatusCode_ServiceUnavailable},
		IncludePeerCertificate: false,
		ClearRouteCache:        false,
		AllowedHeaders:         &matcherv3.ListStringMatcher{Patterns: allowed},
	}
}

// envoyGRPC is a gRPC service on an Envoy cluster; timeout 0 leaves Envoy's default.
func envoyGRPC(cluster string, timeout time.Duration) *corev3.GrpcService {
	g := &corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
		EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: cluster},
	}}
	if timeout > 0 {
		g.Timeout = durationpb.New(timeout)
	}
	return g
}

// adsSource is the config source of resources that come over the same ADS stream.
func adsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion:    corev3.ApiVersion_V3,
	}
}

// socketAddress is a TCP address.
func socketAddress(host string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Protocol:      corev3.SocketAddress_TCP,
		Address:       host,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
		// "::" also accepts IPv4 callers, as "0.0.0.0" users would expect.
		Ipv4Compat: host == "::",
	}}}
}
