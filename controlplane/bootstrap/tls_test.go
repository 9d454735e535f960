package bootstrap

import (
	"bytes"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
)

// controlPlaneTLS returns the UpstreamTlsContext of the gatehouse-controlplane cluster in a
// rendered bootstrap, or nil when the cluster is plaintext.
func controlPlaneTLS(t *testing.T, y []byte) *tlsv3.UpstreamTlsContext {
	t.Helper()
	b, err := Parse(y)
	if err != nil {
		t.Fatal(err)
	}
	var cp *clusterv3.Cluster
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() == "gatehouse-controlplane" {
			cp = c
		}
		if c.GetName() == "gatehouse-authz" && c.GetTransportSocket() != nil {
			t.Error("the local authz cluster got a transport socket")
		}
	}
	ts := cp.GetTransportSocket()
	if ts == nil {
		return nil
	}
	if ts.GetName() != "envoy.transport_sockets.tls" {
		t.Errorf("transport socket %q", ts.GetName())
	}
	var up tlsv3.UpstreamTlsContext
	if err := ts.GetTypedConfig().UnmarshalTo(&up); err != nil {
		t.Fatal(err)
	}
	if err := up.ValidateAll(); err != nil {
		t.Fatalf("UpstreamTlsContext invalid: %v", err)
	}
	return &up
}

func file(name string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: name}}
}

func wantTLS(sni string, san tlsv3.SubjectAltNameMatcher_SanType, name string, cert, key string) *tlsv3.UpstreamTlsContext {
	common := &tlsv3.CommonTlsContext{
		AlpnProtocols: []string{"h2"},
		ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: file("/etc/gatehouse/xds/ca.crt"),
			MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
				SanType: san,
				Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: name}},
			}},
		}},
	}
	if cert != "" {
		common.TlsCertificates = []*tlsv3.TlsCertificate{{CertificateChain: file(cert), PrivateKey: file(key)}}
	}
	return &tlsv3.UpstreamTlsContext{Sni: sni, CommonTlsContext: common}
}

func TestRenderXDSTLS(t *testing.T) {
	const ca, cert, key = "/etc/gatehouse/xds/ca.crt", "/etc/gatehouse/xds/tls.crt", "/etc/gatehouse/xds/tls.key"
	tests := []struct {
		name    string
		cfg     Config
		want    *tlsv3.UpstreamTlsContext // nil: plaintext
		wantErr string
	}{
		{name: "plaintext by default", cfg: Config{ControlPlaneAddr: "controlplane:18000"}},
		{name: "TLS checks the control plane's DNS name", cfg: Config{ControlPlaneAddr: "controlplane:18000", XDSCAFile: ca},
			want: wantTLS("controlplane", tlsv3.SubjectAltNameMatcher_DNS, "controlplane", "", "")},
		{name: "mutual TLS presents the gateway's certificate", cfg: Config{ControlPlaneAddr: "controlplane:18000", XDSCAFile: ca, XDSCertFile: cert, XDSKeyFile: key},
			want: wantTLS("controlplane", tlsv3.SubjectAltNameMatcher_DNS, "controlplane", cert, key)},
		{name: "server name overrides the address's host", cfg: Config{ControlPlaneAddr: "10.0.0.5:18000", XDSCAFile: ca, XDSCertFile: cert, XDSKeyFile: key, XDSServerName: "xds.gatehouse.internal"},
			want: wantTLS("xds.gatehouse.internal", tlsv3.SubjectAltNameMatcher_DNS, "xds.gatehouse.internal", cert, key)},
		{name: "an IP address is matched as an IP SAN without SNI", cfg: Config{ControlPlaneAddr: "10.0.0.5:18000", XDSCAFile: ca},
			want: wantTLS("", tlsv3.SubjectAltNameMatcher_IP_ADDRESS, "10.0.0.5", "", "")},
		{name: "client certificate without a CA", cfg: Config{XDSCertFile: cert, XDSKeyFile: key}, wantErr: "-xds-ca-file"},
		{name: "server name without a CA", cfg: Config{XDSServerName: "controlplane"}, wantErr: "-xds-ca-file"},
		{name: "certificate without key", cfg: Config{XDSCAFile: ca, XDSCertFile: cert}, wantErr: "-xds-key-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y, err := Render(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := Parse(y)
			if err != nil {
				t.Fatal(err)
			}
			checkShape(t, b, tt.cfg.withDefaults())
			if diff := cmp.Diff(tt.want, controlPlaneTLS(t, y), protocmp.Transform()); diff != "" {
				t.Errorf("control plane TLS (-want +got):\n%s", diff)
			}
		})
	}
}

// Parse validates the typed config inside the transport socket, as Envoy does at startup.
func TestParseValidatesTheTransportSocket(t *testing.T) {
	y, err := Render(Config{XDSCAFile: "/ca.pem"})
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(y, []byte(`filename: "/ca.pem"`), []byte(`filename: ""`), 1)
	if _, err := Parse(bad); err == nil || !strings.Contains(err.Error(), "transport socket") {
		t.Fatalf("an empty trusted CA file name: %v", err)
	}
}

func TestMainCommandXDSTLS(t *testing.T) {
	var out, errOut bytes.Buffer
	args := []string{"-xds-addr", "cp.internal:18000", "-xds-ca-file", "/x/ca.crt", "-xds-cert-file", "/x/tls.crt", "-xds-key-file", "/x/tls.key", "-xds-server-name", "xds.internal"}
	if code := Main(args, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	want := wantTLS("xds.internal", tlsv3.SubjectAltNameMatcher_DNS, "xds.internal", "/x/tls.crt", "/x/tls.key")
	want.CommonTlsContext.GetValidationContext().TrustedCa = file("/x/ca.crt")
	if diff := cmp.Diff(want, controlPlaneTLS(t, out.Bytes()), protocmp.Transform()); diff != "" {
		t.Errorf("control plane TLS (-want +got):\n%s", diff)
	}
	if code := Main([]string{"-xds-cert-file", "/x/tls.crt"}, &out, &errOut); code != 1 {
		t.Errorf("a client certificate without a CA: exit %d, want 1", code)
	}
}
