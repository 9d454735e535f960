// Package bootstrap renders the Envoy bootstrap of a Gatehouse gateway: node identity, ADS to
// the control plane, the local authz sidecar cluster, the admin interface on loopback and a
// layered runtime (a static layer raising the RE2 program-size limit for templated routes, and
// the admin layer so /runtime_modify still works). Everything else (listeners, routes,
// clusters) arrives over ADS.
package bootstrap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"text/template"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	// Register the typed configs the bootstrap holds (HttpProtocolOptions and, with xDS TLS,
	// UpstreamTlsContext) for the strict decode and the validation in Parse.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"
)

// Config names the node and the addresses its bootstrap points at. Empty fields take the
// platform defaults.
type Config struct {
	// NodeID identifies the gateway to the control plane; default "gatehouse-gateway".
	NodeID string
	// Cluster is the node cluster; default "gatehouse".
	Cluster string
	// ControlPlaneAddr is the xDS (ADS) host:port; default "127.0.0.1:18000". A host name is
	// resolved by DNS.
	ControlPlaneAddr string
	// AuthzAddr is the authz sidecar's ext_authz gRPC host:port; default "127.0.0.1:9191".
	AuthzAddr string
	// AdminAddr is Envoy's admin host:port; default "127.0.0.1:9901". It must be a loopback
	// address: the admin interface can drain and reconfigure the proxy.
	AdminAddr string

	// XDSCAFile, when set, makes the gateway reach the control plane (xDS and access logs)
	// over TLS and verify its certificate against this PEM bundle: a path on the gateway, read
	// by Envoy. Envoy has no default trust store, so every other XDS* field needs it. Empty
	// keeps the connection plaintext.
	XDSCAFile string
	// XDSCertFile and XDSKeyFile are the gateway's client certificate and key, for a control
	// plane that requires them (mutual TLS); both or neither.
	XDSCertFile, XDSKeyFile string
	// XDSServerName is sent as SNI and must be a subject alternative name of the control
	// plane's certificate; default the host of ControlPlaneAddr.
	XDSServerName string
}

// Defaults returns the platform's default configuration.
func Defaults() Config {
	return Config{
		NodeID:           "gatehouse-gateway",
		Cluster:          "gatehouse",
		ControlPlaneAddr: "127.0.0.1:18000",
		AuthzAddr:        "127.0.0.1:9191",
		AdminAddr:        "127.0.0.1:9901",
	}
}

func (c Config) withDefaults() Config {
	d := Defaults()
	for _, f := range []struct{ v, def *string }{
		{&c.NodeID, &d.NodeID}, {&c.Cluster, &d.Cluster}, {&c.ControlPlaneAddr, &d.ControlPlaneAddr},
		{&c.AuthzAddr, &d.AuthzAddr}, {&c.AdminAddr, &d.AdminAddr},
	} {
		if *f.v == "" {
			*f.v = *f.def
		}
	}
	return c
}

// endpoint is a parsed host:port with the cluster discovery type that fits the host.
type endpoint struct {
	Host string
	Port uint32
	Type string
}

func parseAddr(what, addr string) (endpoint, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return endpoint{}, fmt.Errorf("%s address %q: %w", what, addr, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return endpoint{}, fmt.Errorf("%s address %q: bad port", what, addr)
	}
	e := endpoint{Host: host, Port: uint32(p), Type: "STATIC"}
	if net.ParseIP(host) == nil {
		e.Type = "STRICT_DNS"
	}
	return e, nil
}

// upstreamTLS is what the template needs for the control plane cluster's TLS.
type upstreamTLS struct {
	SNI                       string // empty when the server is named by an IP (SNI is a host name)
	CAFile, CertFile, KeyFile string
	SANType, SAN              string // the subject alternative name the server's certificate must carry
}

// xdsTLS checks the XDS* fields and returns the TLS of the control plane cluster, or nil for
// plaintext. Envoy checks only the chain unless told a name to match, so the server's
// name is always matched against its certificate: without it, any certificate from the same
// CA (a gateway's client certificate, say) could pose as the control plane.
func (c Config) xdsTLS(cpHost string) (*upstreamTLS, error) {
	if c.XDSCAFile == "" {
		if c.XDSCertFile != "" || c.XDSKeyFile != "" || c.XDSServerName != "" {
			return nil, fmt.Errorf("xDS TLS needs -xds-ca-file: Envoy verifies the control plane only against it")
		}
		return nil, nil
	}
	if (c.XDSCertFile == "") != (c.XDSKeyFile == "") {
		return nil, fmt.Errorf("xDS client certificate: -xds-cert-file and -xds-key-file go together")
	}
	t := &upstreamTLS{CAFile: c.XDSCAFile, CertFile: c.XDSCertFile, KeyFile: c.XDSKeyFile, SANType: "DNS", SAN: c.XDSServerName}
	if t.SAN == "" {
		t.SAN = cpHost
	}
	if net.ParseIP(t.SAN) != nil {
		t.SANType = "IP_ADDRESS"
	} else {
		t.SNI = t.SAN
	}
	return t, nil
}

// quote renders a string as a YAML double-quoted scalar (JSON strings are valid YAML).
func quote(s string) (string, error) {
	b, err := json.Marshal(s)
	return string(b), err
}

var tmpl = template.Must(template.New("bootstrap").Funcs(template.FuncMap{"q": quote}).Parse(bootstrapTemplate))

// Render returns the bootstrap YAML for cfg. The output is checked as Envoy would check it: a
// strict decode into the bootstrap proto and its validation rules.
func Render(cfg Config) ([]byte, error) {
	cfg = cfg.withDefaults()
	cp, err := parseAddr("control plane", cfg.ControlPlaneAddr)
	if err != nil {
		return nil, err
	}
	authz, err := parseAddr("authz", cfg.AuthzAddr)
	if err != nil {
		return nil, err
	}
	admin, err := parseAddr("admin", cfg.AdminAddr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(admin.Host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("admin address %q: must be a loopback IP", cfg.AdminAddr)
	}
	xdsTLS, err := cfg.xdsTLS(cp.Host)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err = tmpl.Execute(&buf, struct {
		Config
		ControlPlane, Authz, Admin  endpoint
		XDSTLS                      *upstreamTLS
		RE2ErrorLevel, RE2WarnLevel int
	}{cfg, cp, authz, admin, xdsTLS, RE2ErrorLevel, RE2WarnLevel})
	if err != nil {
		return nil, fmt.Errorf("render bootstrap: %w", err)
	}
	if _, err := Parse(buf.Bytes()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Parse decodes bootstrap YAML strictly (unknown fields are errors) and runs the bootstrap's
// validation rules.
func Parse(y []byte) (*bootstrapv3.Bootstrap, error) {
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		return nil, fmt.Errorf("bootstrap yaml: %w", err)
	}
	var b bootstrapv3.Bootstrap
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(j, &b); err != nil {
		return nil, fmt.Errorf("bootstrap decode: %w", err)
	}
	if err := b.ValidateAll(); err != nil {
		return nil, fmt.Errorf("bootstrap invalid: %w", err)
	}
	// ValidateAll stops at Any fields; Envoy validates the typed configs inside them too.
	for _, c := range b.GetStaticResources().GetClusters() {
		if ts := c.GetTransportSocket(); ts != nil {
			if err := validateTyped(ts.GetTypedConfig()); err != nil {
				return nil, fmt.Errorf("bootstrap invalid: cluster %s: transport socket %s: %w", c.GetName(), ts.GetName(), err)
			}
		}
		for name, opts := range c.GetTypedExtensionProtocolOptions() {
			if err := validateTyped(opts); err != nil {
				return nil, fmt.Errorf("bootstrap invalid: cluster %s: %s: %w", c.GetName(), name, err)
			}
		}
	}
	return &b, nil
}

// validateTyped unpacks a typed config and runs its validation rules.
func validateTyped(a *anypb.Any) error {
	m, err := a.UnmarshalNew()
	if err != nil {
		return err
	}
	v, ok := m.(interface{ ValidateAll() error })
	if !ok {
		return fmt.Errorf("%s has no validation rules", a.GetTypeUrl())
	}
	return v.ValidateAll()
}

// RE2 program-size limits of the runtime. Envoy refuses a safe_regex whose RE2 program is larger
// than re2.max_program_size.error_level (default 100), and one refused route makes it reject the
// whole route table. A templated endpoint route costs about one instruction per literal byte and
// ten per {param} segment ([^/]+ in UTF-8), so an eight-parameter template already needs ~150.
// The largest template the admin API accepts (a 63-byte collection path and a 512-byte endpoint
// path of 128 parameters) compiles to 1,283 instructions in RE2, so the error level sits above
// every route Gatehouse can emit, with headroom for RE2 versions that count a little
// differently. The warn level only logs and counts re2.exceeded_warn_level: it flags the
// unusually long templates, far above the ~10-150 of ordinary ones.
const (
	// RE2ErrorLevel is the bootstrap's re2.max_program_size.error_level.
	RE2ErrorLevel = 2000
	// RE2WarnLevel is the bootstrap's re2.max_program_size.warn_level.
	RE2WarnLevel = 1000
)

// The gRPC clusters speak HTTP/2 with keepalive pings, so a control plane or sidecar that
// vanished without closing the connection is noticed in seconds. Over TLS the control plane
// cluster offers ALPN h2: gRPC servers refuse TLS clients that negotiate no protocol.
const bootstrapTemplate = `# Envoy bootstrap of a Gatehouse gateway, rendered by "gatehouse-controlplane bootstrap".
# Listeners, routes and clusters come from the control plane over ADS.
node:
  id: {{q .NodeID}}
  cluster: {{q .Cluster}}
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    set_node_on_first_message_only: true
    grpc_services:
    - envoy_grpc:
        cluster_name: gatehouse-controlplane
  lds_config:
    resource_api_version: V3
    ads: {}
  cds_config:
    resource_api_version: V3
    ads: {}
static_resources:
  clusters:
  - name: gatehouse-controlplane
    type: {{.ControlPlane.Type}}
    connect_timeout: 5s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options:
            connection_keepalive:
              interval: 30s
              timeout: 5s
{{- with .XDSTLS}}
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
{{- if .SNI}}
        sni: {{q .SNI}}
{{- end}}
        common_tls_context:
          alpn_protocols:
          - h2
{{- if .CertFile}}
          tls_certificates:
          - certificate_chain:
              filename: {{q .CertFile}}
            private_key:
              filename: {{q .KeyFile}}
{{- end}}
          validation_context:
            trusted_ca:
              filename: {{q .CAFile}}
            match_typed_subject_alt_names:
            - san_type: {{.SANType}}
              matcher:
                exact: {{q .SAN}}
{{- end}}
    load_assignment:
      cluster_name: gatehouse-controlplane
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address:
                address: {{q .ControlPlane.Host}}
                port_value: {{.ControlPlane.Port}}
  - name: gatehouse-authz
    type: {{.Authz.Type}}
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options:
            connection_keepalive:
              interval: 10s
              timeout: 2s
    load_assignment:
      cluster_name: gatehouse-authz
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address:
                address: {{q .Authz.Host}}
                port_value: {{.Authz.Port}}
layered_runtime:
  layers:
  - name: static
    static_layer:
      re2.max_program_size.error_level: {{.RE2ErrorLevel}}
      re2.max_program_size.warn_level: {{.RE2WarnLevel}}
  - name: admin
    admin_layer: {}
admin:
  address:
    socket_address:
      address: {{q .Admin.Host}}
      port_value: {{.Admin.Port}}
`
