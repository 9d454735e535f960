package compile

import (
	"net"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// httpProtocolOptionsKey is where a cluster takes its upstream HTTP protocol options.
const httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// clusters builds the clusters sorted by name (gatehouse-authz, gatehouse-controlplane,
// gatehouse-runtime) and the load assignments served over EDS.
func clusters(s Settings) ([]types.Resource, []types.Resource, error) {
	h2, err := marshalAny(&upstreamhttpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
					Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
				},
			},
		},
	})
	if err != nil {
		return nil, nil, err
	}
	var loads []types.Resource
	var out []types.Resource
	// The bootstrap defines AuthzCluster and ControlPlaneCluster statically, and Envoy refuses
	// a CDS cluster with a static cluster's name: emit them only when asked to.
	for _, c := range []struct{ name, addr string }{
		{AuthzCluster, s.AuthzAddress},
		{ControlPlaneCluster, s.ControlPlaneAddress},
	} {
		if c.addr == "" {
			continue
		}
		cl, err := staticCluster(c.name, []string{c.addr}, s, h2)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, cl)
	}
	runtime, err := staticCluster(RuntimeCluster, s.RuntimeAddresses, s, nil)
	if err != nil {
		return nil, nil, err
	}
	if runtime.GetType() == clusterv3.Cluster_STATIC {
		// All runtime addresses are IPs: serve them over EDS so that scaling the runtime
		// changes one small resource instead of the cluster (which would drain connections).
		loads = append(loads, runtime.LoadAssignment)
		runtime.LoadAssignment = nil
		runtime.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}
		runtime.EdsClusterConfig = &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource()}
	}
	out = append(out, runtime)
	return out, loads, nil
}

// staticCluster is a cluster with its endpoints inline: STATIC when every address is an IP,
// STRICT_DNS otherwise. h2, when set, makes the upstream protocol HTTP/2 (for gRPC).
func staticCluster(name string, addrs []string, s Settings, h2 *anypb.Any) (*clusterv3.Cluster, error) {
	kind := clusterv3.Cluster_STATIC
	lbs := make([]*endpointv3.LbEndpoint, 0, len(addrs))
	for _, a := range addrs {
		host, port, err := splitHostPort(a)
		if err != nil {
			return nil, err
		}
		if net.ParseIP(host) == nil {
			kind = clusterv3.Cluster_STRICT_DNS
		}
		lbs = append(lbs, &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{
			Endpoint: &endpointv3.Endpoint{Address: socketAddress(host, port)},
		}})
	}
	c := &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: kind},
		ConnectTimeout:       durationpb.New(s.ConnectTimeout),
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: name,
			// Envoy ignores an empty locality and its weight here, but proxyless gRPC clients
			// drop a locality without both ("weighted-target: no targets to pick from").
			Endpoints: []*endpointv3.LocalityLbEndpoints{{
				Locality:            &corev3.Locality{},
				LoadBalancingWeight: wrapperspb.UInt32(1),
				LbEndpoints:         lbs,
			}},
		},
	}
	if h2 != nil {
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{httpProtocolOptionsKey: h2}
	}
	return c, nil
}
