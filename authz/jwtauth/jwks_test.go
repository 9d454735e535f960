package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

// keyServer is a JWKS and OIDC discovery endpoint on a real loopback HTTP
// server that counts its requests.
type keyServer struct {
	*httptest.Server
	mu        sync.Mutex
	keys      []map[string]any
	issuer    string        // discovery issuer; default the server URL
	gate      chan struct{} // when set, requests wait for it to close
	jwksHits  atomic.Int64
	discovery atomic.Int64
	inflight  atomic.Int64 // requests waiting at the gate
}

func newKeyServer(t *testing.T, keys ...map[string]any) *keyServer {
	t.Helper()
	ks := &keyServer{keys: keys}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		ks.wait(r)
		ks.jwksHits.Add(1)
		ks.mu.Lock()
		body, _ := json.Marshal(map[string]any{"keys": ks.keys})
		ks.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		ks.wait(r)
		ks.discovery.Add(1)
		ks.mu.Lock()
		iss := ks.issuer
		ks.mu.Unlock()
		if iss == "" {
			iss = ks.URL
		}
		json.NewEncoder(w).Encode(map[string]any{"issuer": iss, "jwks_uri": ks.URL + "/keys"})
	})
	ks.Server = httptest.NewServer(mux)
	t.Cleanup(ks.Close)
	return ks
}

func (ks *keyServer) wait(r *http.Request) {
	ks.mu.Lock()
	gate := ks.gate
	ks.mu.Unlock()
	if gate != nil {
		ks.inflight.Add(1)
		defer ks.inflight.Add(-1)
		select {
		case <-gate:
		case <-r.Context().Done():
		}
	}
}

func (ks *keyServer) setKeys(keys ...map[string]any) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.keys = keys
}

func b64int(n *big.Int) string { return base64.RawURLEncoding.EncodeToString(n.Bytes()) }

// jwkOf writes a public key as a JWK by hand, independently of jwx.
func jwkOf(kid string, pub any, extra map[string]any) map[string]any {
	var m map[string]any
	switch k := pub.(type) {
	case *rsa.PublicKey:
		m = map[string]any{"kty": "RSA", "n": b64int(k.N), "e": b64int(big.NewInt(int64(k.E)))}
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		x, y := make([]byte, size), make([]byte, size)
		k.X.FillBytes(x)
		k.Y.FillBytes(y)
		m = map[string]any{"kty": "EC", "crv": k.Curve.Params().Name, "x": base64.RawURLEncoding.EncodeToString(x), "y": base64.RawURLEncoding.EncodeToString(y)}
	case ed25519.PublicKey:
		m = map[string]any{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(k)}
	case []byte:
		m = map[string]any{"kty": "oct", "k": base64.RawURLEncoding.EncodeToString(k)}
	}
	if kid != "" {
		m["kid"] = kid
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func jwksAuth(url string) *authzv1.JwtAuth {
	return &authzv1.JwtAuth{Key: &authzv1.JwtAuth_JwksUrl{JwksUrl: url}}
}

// waitFor polls cond until it holds; background fetches have no other signal.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func verifyCode(v *Verifier, tok string) Code {
	_, err := v.Verify(context.Background(), tok, testNow)
	return CodeOf(err)
}

func TestJWKSKeyUnavailableUntilFetched(t *testing.T) {
	k := keys(t)
	ks := newKeyServer(t, jwkOf("r1", &k.rsa.PublicKey, nil))
	ks.gate = make(chan struct{})
	v := newVerifier(t, Config{}, jwtProfile("p-jwks", jwksAuth(ks.URL+"/keys")))
	tok := signRaw(t, hdr("RS256", "r1"), claimsAt("p-jwks", nil), "RS256", k.rsa)
	if got := verifyCode(v, tok); got != KeyUnavailable {
		t.Fatalf("before the first fetch: %v, want %v", got, KeyUnavailable)
	}
	if v.Ready() {
		t.Error("Ready before the first fetch")
	}
	close(ks.gate)
	waitFor(t, "the first fetch", v.Ready)
	if got := verifyCode(v, tok); got != 0 {
		t.Fatalf("after the first fetch: %v", got)
	}
}

func TestJWKSKeySelection(t *testing.T) {
	k := keys(t)
	ks := newKeyServer(t,
		jwkOf("sym", k.hmac, nil),
		jwkOf("r1", &k.rsa.PublicKey, map[string]any{"alg": "RS256", "use": "sig"}),
		jwkOf("enc", &k.rsa2.PublicKey, map[string]any{"use": "enc"}),
		jwkOf("e1", &k.p256.PublicKey, nil),
		jwkOf("ed", k.ed.Public(), nil),
		// Keys that cannot be used are skipped, not fatal to the set.
		map[string]any{"kty": "RSA", "kid": "small", "n": "AQAB", "e": "AQAB"},
		map[string]any{"kty": "XYZ", "kid": "odd"},
		jwkOf("p521", &k.p521.PublicKey, nil),
	)
	v := newVerifier(t, Config{}, jwtProfile("p-jwks", jwksAuth(ks.URL+"/keys")))
	waitFor(t, "the first fetch", v.Ready)
	claims := claimsAt("p-jwks", nil)
	tests := []struct {
		name  string
		token string
		want  Code
	}{
		{"RS256 by kid", signRaw(t, hdr("RS256", "r1"), claims, "RS256", k.rsa), 0},
		{"ES256 by kid", signRaw(t, hdr("ES256", "e1"), claims, "ES256", k.p256), 0},
		{"EdDSA by kid", signRaw(t, hdr("EdDSA", "ed"), claims, "EdDSA", k.ed), 0},
		{"no kid tries the fitting keys", signRaw(t, hdr("ES256", ""), claims, "ES256", k.p256), 0},
		{"PS256 with a key limited to RS256", signRaw(t, hdr("PS256", "r1"), claims, "PS256", k.rsa), Algorithm},
		{"HS256 with a published symmetric key", signRaw(t, hdr("HS256", "sym"), claims, "HS256", k.hmac), Algorithm},
		{"HS256 with the RSA key's JWK as secret", signRaw(t, hdr("HS256", "r1"), claims, "HS256", mustJSON(t, jwkOf("r1", &k.rsa.PublicKey, nil))), Algorithm},
		{"encryption key is not a signing key", signRaw(t, hdr("RS256", "enc"), claims, "RS256", k.rsa2), UnknownKey},
		{"kid of another key", signRaw(t, hdr("ES256", "r1"), claims, "ES256", k.p256), Algorithm},
		{"unknown kid", signRaw(t, hdr("RS256", "r9"), claims, "RS256", k.rsa), UnknownKey},
		{"wrong key for kid", signRaw(t, hdr("RS256", "r1"), claims, "RS256", k.rsa2), Signature},
		{"skipped small RSA key", signRaw(t, hdr("RS256", "small"), claims, "RS256", k.rsa), UnknownKey},
		{"skipped P-521 key", signRaw(t, hdr("ES256", "p521"), claims, "ES256", k.p256), UnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := verifyCode(v, tt.token); got != tt.want {
				t.Errorf("Verify code = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestJWKSRotationByUnknownKid(t *testing.T) {
	k := keys(t)
	ks := newKeyServer(t, jwkOf("r1", &k.rsa.PublicKey, nil))
	v := newVerifier(t, Config{JWKSRefresh: time.Hour, JWKSMinInterval: 20 * time.Millisecond},
		jwtProfile("p-jwks", jwksAuth(ks.URL+"/keys")))
	waitFor(t, "the first fetch", v.Ready)
	old := signRaw(t, hdr("RS256", "r1"), claimsAt("p-jwks", nil), "RS256", k.rsa)
	if got := verifyCode(v, old); got != 0 {
		t.Fatalf("first key: %v", got)
	}
	ks.setKeys(jwkOf("r1", &k.rsa.PublicKey, nil), jwkOf("e2", &k.p256.PublicKey, nil))
	rotated := signRaw(t, hdr("ES256", "e2"), claimsAt("p-jwks", nil), "ES256", k.p256)
	if got := verifyCode(v, rotated); got != UnknownKey {
		t.Fatalf("new kid before a refresh: %v, want %v", got, UnknownKey)
	}
	waitFor(t, "the new kid to verify", func() bool { return verifyCode(v, rotated) == 0 })
	if got := verifyCode(v, old); got != 0 {
		t.Errorf("first key after the rotation: %v", got)
	}
}

// TestVerifyNeverWaitsForAFetch keeps a refresh hanging at the server while
// tokens are verified from the keys already fetched.
func TestVerifyNeverWaitsForAFetch(t *testing.T) {
	k := keys(t)
	ks := newKeyServer(t, jwkOf("r1", &k.rsa.PublicKey, nil))
	v := newVerifier(t, Config{JWKSRefresh: time.Hour, JWKSMinInterval: time.Millisecond},
		jwtProfile("p-jwks", jwksAuth(ks.URL+"/keys")))
	waitFor(t, "the first fetch", v.Ready)
	gate := make(chan struct{})
	defer close(gate)
	ks.mu.Lock()
	ks.gate = gate
	ks.mu.Unlock()
	if got := verifyCode(v, unknownKidToken(t, 1)); got != UnknownKey {
		t.Fatalf("unknown kid: %v", got)
	}
	// The refresh the unknown kid asked for is now stuck at the server.
	waitFor(t, "the refresh to reach the server", func() bool { return ks.inflight.Load() > 0 })
	tok := signRaw(t, hdr("RS256", "r1"), claimsAt("p-jwks", nil), "RS256", k.rsa)
	if got := verifyCode(v, tok); got != 0 {
		t.Errorf("known kid during a refresh: %v", got)
	}
}

func TestJWKSBackgroundRefreshDropsRemovedKeys(t *testing.T) {
	k := keys(t)
	ks := newKeyServer(t, jwkOf("r1", &k.rsa.PublicKey, nil))
	v := newVerifier(t, Config{JWKSRefresh: 50 * time.Millisecond, JWKSMinInterval: 10 * time.Millisecond},
		jwtProfile("p-jwks", jwksAuth(ks.URL+"/keys")))
	waitFor(t, "the first fetch", v.Ready)
	old := signRaw(t, hdr("RS256", "r1"), claimsAt("p-jwks", nil), "RS256", k.rsa)
	if got := verifyCode(v, old); got != 0 {
		t.Fatalf("first key: %v", got)
	}
	if !cached(v, old) {
		t.Fatal("verified token not cached")
	}
	ks.setKeys(jwkOf("r2", &k.rsa2.PublicKey, nil))
	// No token asks for r2: the periodic refresh alone must pick it up.
	hits := ks.jwksHits.Load()
	waitFor(t, "two more fetches", func() bool { return ks.jwksHits.Load() >= hits+2 })
	rotated := signRaw(t, hdr("RS256", "r2"), claimsAt("p-jwks", nil), "RS256", k.rsa2)
	if got := verifyCode(v, rotated); got != 0 {
		t.Errorf("new key after a refresh: %v", got)
	}
	// The removed key no longer verifies, cached or not.
	if got := verifyCode(v, old); got != UnknownKey {
		t.Errorf("token of a removed key: %v, want %v", got, UnknownKey)
	}
}

func TestJWKSFetchRateIsBounded(t *testing.T) {
	k := keys(t)
	const minInterval = 100 * time.Millisecond
	ks := newKeyServer(t, jwkOf("r1", &k.rsa.PublicKey, nil))
	v := newVerifier(t, Config{JWKSRefresh: time.Hour, JWKSMinInterval: minInterval},
		jwtProfile("p-jwks", jwksAuth(ks.URL+"/keys")))
	waitFor(t, "the first fetch", v.Ready)
	start := time.Now()
	// Tokens with ever new unknown kids each ask for a refresh.
	for i := 0; i < 300 || ks.jwksHits.Load() < 3; i++ {
		if got := verifyCode(v, unknownKidToken(t, i)); got != UnknownKey {
			t.Fatalf("unknown kid: %v", got)
		}
		time.Sleep(time.Millisecond)
		if time.Since(start) > 10*time.Second {
			t.Fatal("unknown kids never caused a refetch")
		}
	}
	elapsed := time.Since(start)
	// The first fetch happened before start; each later one waits for
	// minInterval after the previous one.
	if got, bound := ks.jwksHits.Load(), int64(1+elapsed/minInterval+1); got > bound {
		t.Errorf("%d fetches in %v, more than the %d the rate bound allows", got, elapsed, bound)
	}
}

// unknownKidToken is refused at the kid lookup, before any signature check,
// so a cheap HMAC signature will do.
func unknownKidToken(t *testing.T, i int) string {
	return signRaw(t, hdr("RS256", "kid-"+itoa(int64(i))), claimsAt("p-jwks", nil), "HS256", []byte("x"))
}

func TestOIDCDiscovery(t *testing.T) {
	k := keys(t)
	ks := newKeyServer(t, jwkOf("e1", &k.p256.PublicKey, nil))
	oidc := &authzv1.JwtAuth{Key: &authzv1.JwtAuth_OidcIssuer{OidcIssuer: ks.URL}}
	v := newVerifier(t, Config{}, jwtProfile("p-oidc", oidc))
	waitFor(t, "the first fetch", v.Ready)
	if ks.discovery.Load() == 0 {
		t.Error("discovery document not fetched")
	}
	tests := []struct {
		name string
		iss  any
		want Code
	}{
		{"issuer's token", ks.URL, 0},
		{"other issuer", "https://evil.example", Issuer},
		{"no issuer", nil, Issuer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := claimsAt("p-oidc", map[string]any{"iss": tt.iss})
			if got := verifyCode(v, signRaw(t, hdr("ES256", "e1"), c, "ES256", k.p256)); got != tt.want {
				t.Errorf("Verify code = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOIDCDiscoveryIssuerMismatch(t *testing.T) {
	k := keys(t)
	ks := newKeyServer(t, jwkOf("e1", &k.p256.PublicKey, nil))
	ks.issuer = "https://impostor.example"
	oidc := &authzv1.JwtAuth{Key: &authzv1.JwtAuth_OidcIssuer{OidcIssuer: ks.URL}}
	v := newVerifier(t, Config{JWKSMinInterval: 10 * time.Millisecond}, jwtProfile("p-oidc", oidc))
	waitFor(t, "two discovery attempts", func() bool { return ks.discovery.Load() >= 2 })
	if ks.jwksHits.Load() != 0 {
		t.Error("key set fetched from a discovery document of another issuer")
	}
	tok := signRaw(t, hdr("ES256", "e1"), claimsAt("p-oidc", map[string]any{"iss": ks.URL}), "ES256", k.p256)
	if got := verifyCode(v, tok); got != KeyUnavailable {
		t.Errorf("Verify code = %v, want %v", got, KeyUnavailable)
	}
}

func TestKeySourcesAreSharedAndStopped(t *testing.T) {
	k := keys(t)
	ks := newKeyServer(t, jwkOf("r1", &k.rsa.PublicKey, nil))
	a, b := jwksAuth(ks.URL+"/keys"), jwksAuth(ks.URL+"/keys")
	b.Claim = "azp"
	v := newVerifier(t, Config{}, jwtProfile("p-a", a), jwtProfile("p-b", b))
	waitFor(t, "the first fetch", v.Ready)
	sources := v.idx.Load().sources
	if len(sources) != 1 {
		t.Fatalf("%d key sources for one URL, want 1", len(sources))
	}
	if err := v.SetProfiles(nil); err != nil {
		t.Fatal(err)
	}
	for _, s := range sources {
		select {
		case <-s.done:
		default:
			t.Error("key source of a removed profile still running")
		}
	}
}
