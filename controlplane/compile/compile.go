// Package compile turns one store revision into the resources the platform serves: Envoy
// listeners, routes, clusters and endpoints for the public proxy, and the custom authz resources
// (gatehouse.authz.v1 Endpoint, Profile, Policy) for the authz sidecars.
//
// Compile is a pure function: no clock, no I/O, no package state. Its output is deterministic
// (every list sorted), so compiling the same snapshot twice, in any input order, gives byte-equal
// resources. The output is read-only: resources may share sub-messages.
//
// Decisions worth knowing when reading the output:
//   - Paths are normalised by Envoy (normalize_path, merge_slashes) and a request whose path
//     holds an escaped slash or backslash (%2F, %5C) is refused with 400, so no encoding trick
//     reaches a route other than the one the authz checked.
//   - Spoofable x-gatehouse-* request headers are removed by a header_mutation filter that runs
//     before ext_authz; the route then sets the recipe, endpoint and collection id headers, and
//     the authz OK response sets the identity headers.
//   - Templated paths are matched with a safe_regex whose parameter segments are [^/]+ (which
//     grpc-go's xDS client also understands); literal paths with an exact path match.
//   - Envoy refuses a safe_regex whose RE2 program is larger than the runtime's
//     re2.max_program_size.error_level (default 100), and with it the whole route table. A
//     route's program costs about one instruction per literal byte and ten per parameter, so
//     templates of eight parameters pass 100; the largest template the admin API accepts
//     (128 parameters) needs 1,283. The bootstrap Gatehouse renders raises the limit to 2,000
//     in its layered runtime (controlplane/bootstrap); a hand-written bootstrap needs the same.
//   - The Envoy bootstrap must define two clusters statically: ControlPlaneCluster (ADS, and
//     the access log's gRPC ALS) and AuthzCluster (the per-pod authz sidecar on
//     127.0.0.1:9191 that ext_authz calls). Envoy refuses a CDS cluster with the name of a
//     static one, so compile emits them over CDS only when Settings.ControlPlaneAddress or
//     Settings.AuthzAddress is set, for a bootstrap that lacks them. Compile itself always
//     emits RuntimeCluster.
//   - Envoy's own error replies answer problem+json through the listener's local_reply_config:
//     503 authz_unavailable when the ext_authz check fails (the sidecar is unreachable, times
//     out or errs; fail closed), 503 runtime_unavailable (flags UF, UH, UO, URX, UC, UR, NC)
//     and 504 runtime_timeout (UT) for the recipe runtime. There is no catch-all mapper: the
//     authz's denials keep the authz's body, and the 404 direct responses, which Envoy also
//     passes through the mappers, match none of them and keep theirs.
//   - ext_authz sets the UAEX flag on its denials and on its failures alike; only the response
//     code details tell them apart (ext_authz_denied, ext_authz_error), and no core access-log
//     filter reads those, so the authz mapper is UAEX AND a CEL filter
//     (envoy.access_loggers.extension_filters.cel) on response.code_details. That filter has
//     been in Envoy's v3 API and default build for years and is in v1.36, the version the
//     deployments pin (v1.36.2); an Envoy built without CEL support (no CEL parser) rejects
//     the listener. A CEL evaluation error counts as no match, so at worst the 503 keeps
//     Envoy's empty body; it never rewrites a denial.
package compile

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"gatehouse/controlplane/store"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// Fixed names shared by the control plane, the Envoy bootstrap and the authz sidecar.
const (
	// ListenerName is the public HTTP listener.
	ListenerName = "gatehouse-public"
	// RouteConfigName is the RouteConfiguration the listener loads over RDS.
	RouteConfigName = "gatehouse"
	// VirtualHostName is the single virtual host of RouteConfigName.
	VirtualHostName = "gatehouse"
	// RuntimeCluster is the recipe runtime; its endpoints come over EDS when all runtime
	// addresses are IPs.
	RuntimeCluster = "gatehouse-runtime"
	// AuthzCluster is the local authz sidecar (ext_authz gRPC, HTTP/2). The Envoy bootstrap
	// defines it statically; compile emits it only when Settings.AuthzAddress is set.
	AuthzCluster = "gatehouse-authz"
	// ControlPlaneCluster reaches the control plane's xDS and access-log (ALS) gRPC service. The
	// Envoy bootstrap defines it statically; compile emits it only when
	// Settings.ControlPlaneAddress is set.
	ControlPlaneCluster = "gatehouse-controlplane"
	// AccessLogName is the log_name of the gRPC access log.
	AccessLogName = "gatehouse"
	// NotFoundRouteName names the catch-all route that answers 404.
	NotFoundRouteName = "gatehouse-not-found"
)

// Keys of the per-route ext_authz context_extensions: the authz reads the endpoint from these.
const (
	// ContextCollectionID carries the endpoint's collection id.
	ContextCollectionID = "collection_id"
	// ContextEndpointID carries the endpoint id.
	ContextEndpointID = "endpoint_id"
	// ContextRecipeID carries the recipe id the endpoint calls.
	ContextRecipeID = "recipe_id"
)

// Request headers of the recipe runtime contract that the route sets.
const (
	// HeaderPrefix starts every header of the runtime contract; inbound ones are removed
	// before ext_authz runs.
	HeaderPrefix = "x-gatehouse-"
	// HeaderRecipeID names the recipe to run.
	HeaderRecipeID = "x-gatehouse-recipe-id"
	// HeaderEndpointID names the endpoint called.
	HeaderEndpointID = "x-gatehouse-endpoint-id"
	// HeaderCollectionID names the endpoint's collection.
	HeaderCollectionID = "x-gatehouse-collection-id"
	// HeaderClientID names the calling client; set by the authz OK response, logged.
	HeaderClientID = "x-gatehouse-client-id"
	// HeaderProfileID names the caller's access profile; set by the authz OK response, logged.
	HeaderProfileID = "x-gatehouse-profile-id"
)

// Type URLs of the authz resources.
const (
	// AuthzEndpointType is the type URL of *authzv1.Endpoint resources.
	AuthzEndpointType = "type.googleapis.com/gatehouse.authz.v1.Endpoint"
	// AuthzProfileType is the type URL of *authzv1.Profile resources.
	AuthzProfileType = "type.googleapis.com/gatehouse.authz.v1.Profile"
	// AuthzPolicyType is the type URL of *authzv1.Policy resources.
	AuthzPolicyType = "type.googleapis.com/gatehouse.authz.v1.Policy"
)

// Defaults applied by Compile to zero Settings fields.
const (
	// DefaultListenerAddress is the public listener's bind address.
	DefaultListenerAddress = "0.0.0.0"
	// DefaultListenerPort is the public listener's port.
	DefaultListenerPort = 10000
	// DefaultRuntimeAddress is the example recipe runtime's address.
	DefaultRuntimeAddress = "127.0.0.1:8081"
	// DefaultAuthzTimeout bounds one ext_authz check.
	DefaultAuthzTimeout = 200 * time.Millisecond
	// DefaultEndpointTimeout bounds a runtime call of an endpoint without a timeout.
	DefaultEndpointTimeout = 30 * time.Second
	// DefaultConnectTimeout bounds upstream connects.
	DefaultConnectTimeout = 2 * time.Second
)

// Settings are the deployment facts compile needs besides the store: where things listen.
// Zero fields take the defaults above.
type Settings struct {
	// ListenerAddress is the IP the public listener binds; default 0.0.0.0.
	ListenerAddress string
	// ListenerPort is the public listener's port; default 10000.
	ListenerPort uint32
	// RuntimeAddresses are the recipe runtime's host:port addresses; default 127.0.0.1:8081.
	// When all are IPs the runtime cluster uses EDS; a host name makes it STRICT_DNS, because
	// EDS endpoints must be IP addresses.
	RuntimeAddresses []string
	// RuntimePathPrefix is put before "/recipes/{recipe id}" in the path the runtime receives,
	// e.g. "/api"; default none.
	RuntimePathPrefix string
	// AuthzAddress is the authz sidecar's ext_authz gRPC host:port. Empty (the default) relies
	// on the bootstrap's static AuthzCluster (the per-pod sidecar on 127.0.0.1:9191); set it
	// only for a bootstrap without that cluster, and compile emits it over CDS.
	AuthzAddress string
	// AuthzTimeout bounds one ext_authz check; default 200ms.
	AuthzTimeout time.Duration
	// ControlPlaneAddress is the control plane's ALS host:port. Empty (the default) relies on
	// the bootstrap's static ControlPlaneCluster; set it only for a bootstrap without that
	// cluster, and compile emits it over CDS.
	ControlPlaneAddress string
	// ConnectTimeout bounds upstream connects of the emitted clusters; default 2s.
	ConnectTimeout time.Duration
}

// Output is what one revision compiles to.
type Output struct {
	// Version names the output; derived from the store revision only.
	Version string
	// Envoy holds listeners, routes, clusters and cluster load assignments keyed by type URL,
	// each sorted by name, ready for cache.NewSnapshot(Version, Envoy).
	Envoy map[resource.Type][]types.Resource
	// Authz holds the *authzv1.Endpoint, *authzv1.Profile and *authzv1.Policy resources keyed by
	// AuthzEndpointType, AuthzProfileType and AuthzPolicyType, each sorted by name (the id).
	Authz map[string][]types.Resource
}

// Resources is every resource of o, Envoy's and authz's, by type URL: the form the xDS server
// publishes. The slices are new; the messages are shared with o.
func (o *Output) Resources() map[string][]proto.Message {
	out := make(map[string][]proto.Message, len(o.Envoy)+len(o.Authz))
	for _, m := range []map[string][]types.Resource{o.Envoy, o.Authz} {
		for typ, rs := range m {
			ms := make([]proto.Message, len(rs))
			for i, r := range rs {
				ms[i] = r
			}
			out[typ] = ms
		}
	}
	return out
}

// Version is the xDS version string of a store revision.
func Version(revision uint64) string {
	return strconv.FormatUint(revision, 10)
}

// Compile builds the Envoy and authz resources of one snapshot. It fails when settings are
// malformed or the snapshot breaks a reference the store guarantees (an endpoint without its
// collection, a profile without its client or policy, a token without its profile).
func Compile(snap *store.Snapshot, s Settings) (*Output, error) {
	c, err := NewCompiler(s)
	if err != nil {
		return nil, err
	}
	return c.Compile(snap)
}

// Compiler compiles snapshot after snapshot with the same Settings, and gives the same output
// as Compile. It remembers the resources it built for each endpoint message and reuses them
// while the endpoint and its collection are the same messages (store.Snapshot shares unchanged
// ones), so a one-endpoint change rebuilds one route and one authz endpoint, and the output
// keeps the pointers of unchanged resources for the xDS server to skip. Safe for concurrent
// use; calls run one at a time.
type Compiler struct {
	settings Settings
	routes   *routeBuilder

	mu   sync.Mutex // guards memo and orders Compile calls
	memo map[*adminv1.Endpoint]*epRoute
}

// NewCompiler checks s and returns a Compiler for it.
func NewCompiler(s Settings) (*Compiler, error) {
	s = s.withDefaults()
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	b, err := newRouteBuilder(s)
	if err != nil {
		return nil, fmt.Errorf("compile: routes: %w", err)
	}
	return &Compiler{settings: s, routes: b}, nil
}

// Compile builds the Envoy and authz resources of one snapshot, as the package's Compile does.
// The output's messages are read-only: later outputs share them.
func (c *Compiler) Compile(snap *store.Snapshot) (*Output, error) {
	if snap == nil {
		return nil, fmt.Errorf("compile: nil snapshot")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.settings
	idx, err := newIndex(snap)
	if err != nil {
		return nil, fmt.Errorf("compile revision %d: %w", snap.Revision, err)
	}
	eps, err := endpointRoutes(snap, idx, c.memo)
	if err != nil {
		return nil, fmt.Errorf("compile revision %d: %w", snap.Revision, err)
	}
	routeCfg := routeConfiguration(eps, c.routes)
	lis, err := listener(s)
	if err != nil {
		return nil, fmt.Errorf("compile revision %d: listener: %w", snap.Revision, err)
	}
	clusters, loads, err := clusters(s)
	if err != nil {
		return nil, fmt.Errorf("compile revision %d: clusters: %w", snap.Revision, err)
	}
	authz, err := authzResources(snap, idx, eps)
	if err != nil {
		return nil, fmt.Errorf("compile revision %d: %w", snap.Revision, err)
	}
	// Rebuilt each time, so endpoints that are gone are forgotten.
	c.memo = make(map[*adminv1.Endpoint]*epRoute, len(eps))
	for i := range eps {
		c.memo[eps[i].ep] = &eps[i]
	}
	envoy := map[resource.Type][]types.Resource{
		resource.ListenerType: {lis},
		resource.RouteType:    {routeCfg},
		resource.ClusterType:  clusters,
		resource.EndpointType: loads,
	}
	return &Output{Version: Version(snap.Revision), Envoy: envoy, Authz: authz}, nil
}

func (s Settings) withDefaults() Settings {
	if s.ListenerAddress == "" {
		s.ListenerAddress = DefaultListenerAddress
	}
	if s.ListenerPort == 0 {
		s.ListenerPort = DefaultListenerPort
	}
	if len(s.RuntimeAddresses) == 0 {
		s.RuntimeAddresses = []string{DefaultRuntimeAddress}
	}
	if s.AuthzTimeout == 0 {
		s.AuthzTimeout = DefaultAuthzTimeout
	}
	if s.ConnectTimeout == 0 {
		s.ConnectTimeout = DefaultConnectTimeout
	}
	return s
}

func (s Settings) validate() error {
	if net.ParseIP(s.ListenerAddress) == nil {
		return fmt.Errorf("listener address %q is not an IP", s.ListenerAddress)
	}
	if s.ListenerPort > 65535 {
		return fmt.Errorf("listener port %d out of range", s.ListenerPort)
	}
	for _, a := range s.RuntimeAddresses {
		if _, _, err := splitHostPort(a); err != nil {
			return fmt.Errorf("runtime address: %w", err)
		}
	}
	if s.AuthzAddress != "" {
		if _, _, err := splitHostPort(s.AuthzAddress); err != nil {
			return fmt.Errorf("authz address: %w", err)
		}
	}
	if s.ControlPlaneAddress != "" {
		if _, _, err := splitHostPort(s.ControlPlaneAddress); err != nil {
			return fmt.Errorf("control plane address: %w", err)
		}
	}
	if s.AuthzTimeout < 0 || s.ConnectTimeout < 0 {
		return fmt.Errorf("negative timeout")
	}
	if p := s.RuntimePathPrefix; p != "" && (p[0] != '/' || p[len(p)-1] == '/') {
		return fmt.Errorf("runtime path prefix %q must start and not end with /", p)
	}
	return nil
}

// splitHostPort parses host:port with a numeric port in 1..65535.
func splitHostPort(addr string) (string, uint32, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q: %w", addr, err)
	}
	if host == "" {
		return "", 0, fmt.Errorf("%q: empty host", addr)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return "", 0, fmt.Errorf("%q: bad port", addr)
	}
	return host, uint32(p), nil
}
