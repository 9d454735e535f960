package admin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"gatehouse/authz/check"
	"gatehouse/authz/jwtauth"
	"gatehouse/controlplane/compile"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// TestSidecarAcceptsWhatAdminAccepts creates edge cases of every resource the sidecars see
// through the admin API and, after each, compiles the store's snapshot and hands the authz
// config to the sidecar's own index builder and JWT verifier. A sidecar refuses a whole
// config for one bad item, which would freeze every later change, so whatever the admin API
// accepts must pass both.
func TestSidecarAcceptsWhatAdminAccepts(t *testing.T) {
	e := newEnv(t)
	f := e.fixture("edge")
	k := newTestKeys(t)
	pkcs1, cert := rsaPKCS1PEM(t), certificatePEM(t)
	now := e.clock.now()

	endpoint := func(method, path string, timeout time.Duration) func(context.Context) error {
		return func(ctx context.Context) error {
			ep := &adminv1.Endpoint{Name: method + " " + path, Method: method, Path: path, RecipeId: "recipe.1:a-b_c"}
			if timeout > 0 {
				ep.Timeout = durationpb.New(timeout)
			}
			_, err := e.eps.CreateEndpoint(ctx, &adminv1.CreateEndpointRequest{CollectionId: f.col.Id, Endpoint: ep})
			return err
		}
	}
	profile := func(name string, p *adminv1.AccessProfile) func(context.Context) error {
		return func(ctx context.Context) error {
			p.Name, p.CollectionIds, p.PolicyId = name, []string{f.col.Id}, f.pol.Id
			_, err := e.prfs.CreateAccessProfile(ctx, &adminv1.CreateAccessProfileRequest{ClientId: f.cli.Id, AccessProfile: p})
			return err
		}
	}
	apiToken := &adminv1.AccessProfile_ApiToken{ApiToken: &adminv1.ApiTokenAuth{}}
	jwt := func(j *adminv1.JwtAuth) *adminv1.AccessProfile_Jwt { return &adminv1.AccessProfile_Jwt{Jwt: j} }
	pems := func(p ...string) *adminv1.JwtAuth_PublicKeys {
		return &adminv1.JwtAuth_PublicKeys{PublicKeys: &adminv1.PublicKeys{Pem: p}}
	}
	token := func(name string, exp *timestamppb.Timestamp) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := e.toks.CreateToken(ctx, &adminv1.CreateTokenRequest{ClientId: f.cli.Id, ProfileId: f.prf.Id, Name: name, ExpireTime: exp})
			return err
		}
	}

	tests := []struct {
		name   string
		create func(context.Context) error
	}{
		{"endpoint: root", endpoint("GET", "/", 0)},
		{"endpoint: literal with every allowed character", endpoint("POST", "/a-b._~!$&'()*+,;=:@z", 240*time.Second)},
		{"endpoint: dots inside literals", endpoint("PUT", "/a.b/...", 0)},
		{"endpoint: parameters of mixed case", endpoint("PATCH", "/x/{invoiceId}/y/{Line_2}", time.Second)},
		{"endpoint: longest parameter name", endpoint("DELETE", "/{"+strings.Repeat("p", 64)+"}", 0)},
		{"profile: IPv4, IPv6 and IPv4-mapped ranges", profile("ips", &adminv1.AccessProfile{Auth: apiToken,
			IpAllow: []string{"10.1.2.3/8", "192.0.2.7", "2001:db8::1", "::ffff:198.51.100.7", "::ffff:198.51.100.0/120", "::ffff:0.0.0.0/96"},
			IpDeny:  []string{"::ffff:0:0/80", "0.0.0.0/0", "::/0"}})},
		{"jwt: HMAC with every HS algorithm", profile("hmac", &adminv1.AccessProfile{Auth: jwt(&adminv1.JwtAuth{
			Key:        &adminv1.JwtAuth_HmacSecret{HmacSecret: strings.Repeat("s", 32)},
			Algorithms: []string{"HS256", "HS384", "HS512"}, Claim: "client.id", ClaimValue: "hmac-client",
			RequiredClaims: []string{"scope"}, Issuers: []string{"https://issuer.example"}, Audiences: []string{"gatehouse"}})})},
		{"jwt: RSA key with RS and PS", profile("rsa", &adminv1.AccessProfile{Auth: jwt(&adminv1.JwtAuth{
			Key: pems(k.rsa), Algorithms: []string{"RS256", "RS384", "RS512", "PS256"}})})},
		{"jwt: RSA PKCS #1 block", profile("pkcs1", &adminv1.AccessProfile{Auth: jwt(&adminv1.JwtAuth{Key: pems(pkcs1)})})},
		{"jwt: P-256 certificate", profile("cert", &adminv1.AccessProfile{Auth: jwt(&adminv1.JwtAuth{Key: pems(cert), Algorithms: []string{"ES256"}})})},
		{"jwt: P-256 key", profile("p256", &adminv1.AccessProfile{Auth: jwt(&adminv1.JwtAuth{Key: pems(k.p256), Algorithms: []string{"ES256"}})})},
		{"jwt: P-384 key", profile("p384", &adminv1.AccessProfile{Auth: jwt(&adminv1.JwtAuth{Key: pems(k.p384), Algorithms: []string{"ES384"}})})},
		{"jwt: Ed25519 key", profile("ed25519", &adminv1.AccessProfile{Auth: jwt(&adminv1.JwtAuth{Key: pems(k.ed25519), Algorithms: []string{"EdDSA"}})})},
		{"jwt: every key kind, no algorithms", profile("all", &adminv1.AccessProfile{Auth: jwt(&adminv1.JwtAuth{Key: pems(k.rsa, k.p256, k.p384, k.ed25519, pkcs1, cert)})})},
		{"jwt: every key kind, every asymmetric algorithm", profile("all-algs", &adminv1.AccessProfile{Auth: jwt(&adminv1.JwtAuth{
			Key: pems(k.rsa, k.p256, k.p384, k.ed25519), Algorithms: []string{"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"}})})},
		{"jwt: JWKS URL", profile("jwks", &adminv1.AccessProfile{Auth: jwt(&adminv1.JwtAuth{
			Key: &adminv1.JwtAuth_JwksUrl{JwksUrl: "https://127.0.0.1:1/jwks.json"}, Algorithms: []string{"RS256", "ES384", "EdDSA"}})})},
		{"jwt: OIDC issuer", profile("oidc", &adminv1.AccessProfile{Auth: jwt(&adminv1.JwtAuth{
			Key: &adminv1.JwtAuth_OidcIssuer{OidcIssuer: "http://127.0.0.1:1/realms/x"}})})},
		{"token: no expiry", token("forever", nil)},
		{"token: last nanosecond of a second", token("nanos", &timestamppb.Timestamp{Seconds: now.Add(time.Hour).Unix(), Nanos: 999_999_999})},
		{"token: just under ten years", token("long", timestamppb.New(now.Add(maxTokenLifetime-time.Nanosecond)))},
		{"token: rotated with a grace period", func(ctx context.Context) error {
			ts, err := e.toks.CreateToken(ctx, &adminv1.CreateTokenRequest{ClientId: f.cli.Id, ProfileId: f.prf.Id, Name: "rotate"})
			if err != nil {
				return err
			}
			_, err = e.toks.RotateToken(ctx, &adminv1.RotateTokenRequest{ClientId: f.cli.Id, ProfileId: f.prf.Id, Id: ts.Token.Id, GracePeriod: durationpb.New(time.Hour)})
			return err
		}},
	}

	verifier, err := jwtauth.New(t.Context(), jwtauth.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(verifier.Close)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.create(e.ctx()); err != nil {
				t.Fatalf("admin API refused: %v", err)
			}
			snap, err := e.store.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			out, err := compile.Compile(snap, compile.Settings{})
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			x, err := check.Build(out.AuthzConfig())
			if err != nil {
				t.Fatalf("sidecar index refuses the config: %v", err)
			}
			if err := verifier.SetProfiles(x.JWTProfiles()); err != nil {
				t.Fatalf("sidecar JWT verifier refuses the profiles: %v", err)
			}
		})
	}
}

// rsaPKCS1PEM returns an RSA public key as an "RSA PUBLIC KEY" (PKCS #1) block.
func rsaPKCS1PEM(t testing.TB) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.PublicKey)}))
}

// certificatePEM returns a self-signed certificate for a P-256 key.
func certificatePEM(t testing.TB) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "issuer.example"},
		NotBefore: fixedNow, NotAfter: fixedNow.Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
