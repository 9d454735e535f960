package admin

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/testing/protocmp"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// testKeys are one public key of every kind the sidecars accept, in PEM.
type testKeys struct{ rsa, p256, p384, ed25519 string }

func newTestKeys(t testing.TB) testKeys {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKeys{
		rsa:     pemPublic(t, &rk.PublicKey),
		p256:    pemPublic(t, &p256.PublicKey),
		p384:    pemPublic(t, &p384.PublicKey),
		ed25519: pemPublic(t, edPub),
	}
}

// A profile whose algorithms no key can verify is refused by the sidecars, so the admin API
// refuses it first and says which algorithm and which keys.
func TestValidateProfileAlgorithmsFitKeys(t *testing.T) {
	k := newTestKeys(t)
	tests := []struct {
		name  string
		pems  []string
		algs  []string
		want  []*errdetails.BadRequest_FieldViolation
		hints []string // substrings of the first violation's description
	}{
		{name: "RSA takes RS and PS", pems: []string{k.rsa}, algs: []string{"RS256", "RS384", "RS512", "PS256"}},
		{name: "P-256 takes ES256", pems: []string{k.p256}, algs: []string{"ES256"}},
		{name: "P-384 takes ES384", pems: []string{k.p384}, algs: []string{"ES384"}},
		{name: "Ed25519 takes EdDSA", pems: []string{k.ed25519}, algs: []string{"EdDSA"}},
		{name: "no algorithms takes what the keys fit", pems: []string{k.rsa, k.p256}},
		{name: "each algorithm fits some key", pems: []string{k.rsa, k.p384, k.ed25519}, algs: []string{"PS256", "ES384", "EdDSA"}},
		{
			name: "ES256 with an RSA key", pems: []string{k.rsa}, algs: []string{"RS256", "ES256"},
			want:  []*errdetails.BadRequest_FieldViolation{{Field: "access_profile.jwt.algorithms[1]"}},
			hints: []string{"ES256", "which are RSA;"},
		},
		{
			name: "ES384 with a P-256 key", pems: []string{k.p256}, algs: []string{"ES384"},
			want:  []*errdetails.BadRequest_FieldViolation{{Field: "access_profile.jwt.algorithms[0]"}},
			hints: []string{"ES384", "EC P-256"},
		},
		{
			name: "RS256 with EC and Ed25519 keys", pems: []string{k.p256, k.p384, k.ed25519}, algs: []string{"RS256", "EdDSA", "PS256"},
			want:  []*errdetails.BadRequest_FieldViolation{{Field: "access_profile.jwt.algorithms[0]"}, {Field: "access_profile.jwt.algorithms[2]"}},
			hints: []string{"RS256", "EC P-256, EC P-384 and Ed25519"},
		},
		{
			name: "EdDSA with an RSA key", pems: []string{k.rsa}, algs: []string{"EdDSA"},
			want:  []*errdetails.BadRequest_FieldViolation{{Field: "access_profile.jwt.algorithms[0]"}},
			hints: []string{"EdDSA", "RSA"},
		},
		{
			name: "a bad key alone is reported once", pems: []string{"not pem"}, algs: []string{"ES256"},
			want: []*errdetails.BadRequest_FieldViolation{{Field: "access_profile.jwt.public_keys.pem[0]"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var v violations
			validateProfile(&v, &adminv1.AccessProfile{Auth: &adminv1.AccessProfile_Jwt{Jwt: &adminv1.JwtAuth{
				Key:        &adminv1.JwtAuth_PublicKeys{PublicKeys: &adminv1.PublicKeys{Pem: tc.pems}},
				Algorithms: tc.algs,
			}}})
			if d := cmp.Diff(tc.want, []*errdetails.BadRequest_FieldViolation(v), protocmp.Transform(),
				protocmp.IgnoreFields(&errdetails.BadRequest_FieldViolation{}, "description")); d != "" {
				t.Fatalf("violations mismatch (-want +got):\n%s", d)
			}
			for _, h := range tc.hints {
				if !strings.Contains(v[0].GetDescription(), h) {
					t.Errorf("description %q does not say %q", v[0].GetDescription(), h)
				}
			}
		})
	}
}

// IP lists are stored in one canonical spelling; IPv4-mapped IPv6 forms become IPv4, which is
// how IPv4 callers' addresses are compared.
func TestParseCIDRCanonical(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"IPv4 address", "198.51.100.7", "198.51.100.7/32"},
		{"IPv4 prefix with host bits", "10.1.2.3/8", "10.0.0.0/8"},
		{"IPv6 address", "2001:db8::1", "2001:db8::1/128"},
		{"IPv6 prefix", "2001:db8::/32", "2001:db8::/32"},
		{"mapped address", "::ffff:198.51.100.7", "198.51.100.7/32"},
		{"mapped /128", "::ffff:198.51.100.7/128", "198.51.100.7/32"},
		{"mapped /120", "::ffff:198.51.100.0/120", "198.51.100.0/24"},
		{"mapped /120 with host bits", "::ffff:198.51.100.9/120", "198.51.100.0/24"},
		{"mapped /96 is every IPv4 address", "::ffff:0.0.0.0/96", "0.0.0.0/0"},
		{"shorter than /96 stays IPv6", "::ffff:0:0/80", "::/80"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCIDR(tc.in)
			if err != nil {
				t.Fatalf("parseCIDR(%q): %v", tc.in, err)
			}
			if got.String() != tc.want {
				t.Errorf("parseCIDR(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestNormalizeProfileUnmapsIPv4(t *testing.T) {
	p := &adminv1.AccessProfile{
		IpAllow: []string{"::ffff:198.51.100.7", "::ffff:198.51.100.0/120", "2001:db8::/32"},
		IpDeny:  []string{"::FFFF:203.0.113.1/128"},
	}
	normalizeProfile(p)
	diff(t, &adminv1.AccessProfile{
		IpAllow: []string{"198.51.100.7/32", "198.51.100.0/24", "2001:db8::/32"},
		IpDeny:  []string{"203.0.113.1/32"},
	}, p, protocmp.Transform())
}
