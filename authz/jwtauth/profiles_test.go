package jwtauth

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

func TestSetProfilesRefusesBadConfig(t *testing.T) {
	k := keys(t)
	privDER, err := x509.MarshalPKCS8PrivateKey(k.rsa)
	if err != nil {
		t.Fatal(err)
	}
	privPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))
	withAlgs := func(j *authzv1.JwtAuth, algs ...string) *authzv1.JwtAuth {
		j.Algorithms = algs
		return j
	}
	sameValue := hmacAuth(k.hmac)
	sameValue.Claim, sameValue.ClaimValue = "sub", "p-one"
	tests := []struct {
		name     string
		profiles []*authzv1.Profile
		want     []string // substrings of the error
	}{
		{"short hmac secret", []*authzv1.Profile{jwtProfile("p-short", hmacAuth([]byte("short")))}, []string{`"p-short"`, "hmac_secret has 5 bytes"}},
		{"bad pem", []*authzv1.Profile{jwtProfile("p-bad", pemAuth("not a pem"))}, []string{`"p-bad"`, "pem[0]"}},
		{"private key pem", []*authzv1.Profile{jwtProfile("p-priv", pemAuth(privPEM))}, []string{`"p-priv"`, "not a public key"}},
		{"P-521 key", []*authzv1.Profile{jwtProfile("p-521", pemAuth(pemOf(t, &k.p521.PublicKey)))}, []string{`"p-521"`, "P-256 and P-384"}},
		{"no pem", []*authzv1.Profile{jwtProfile("p-empty", pemAuth())}, []string{`"p-empty"`, "no key"}},
		{"no key", []*authzv1.Profile{jwtProfile("p-nokey", &authzv1.JwtAuth{})}, []string{`"p-nokey"`, "no key"}},
		{"HS256 for an RSA key", []*authzv1.Profile{jwtProfile("p-conf", withAlgs(pemAuth(pemOf(t, &k.rsa.PublicKey)), "RS256", "HS256"))}, []string{`"p-conf"`, "HS256 does not fit"}},
		{"RS256 for a secret", []*authzv1.Profile{jwtProfile("p-conf2", withAlgs(hmacAuth(k.hmac), "RS256"))}, []string{`"p-conf2"`, "RS256 does not fit"}},
		{"HS256 for a JWKS", []*authzv1.Profile{jwtProfile("p-conf3", withAlgs(&authzv1.JwtAuth{Key: &authzv1.JwtAuth_JwksUrl{JwksUrl: "http://127.0.0.1:1/keys"}}, "HS256"))}, []string{`"p-conf3"`, "HS256 does not fit"}},
		{"alg none", []*authzv1.Profile{jwtProfile("p-none", withAlgs(hmacAuth(k.hmac), "none"))}, []string{`"p-none"`, `"none" is not supported`}},
		{"same claim value", []*authzv1.Profile{jwtProfile("p-one", hmacAuth(k.hmac)), jwtProfile("p-two", sameValue)}, []string{`"p-two"`, `already selects profile "p-one"`}},
		{"listed twice", []*authzv1.Profile{jwtProfile("p-one", hmacAuth(k.hmac)), jwtProfile("p-one", hmacAuth(k.hmac))}, []string{`"p-one": listed twice`}},
		{"every bad profile named", []*authzv1.Profile{jwtProfile("p-a", hmacAuth(nil)), jwtProfile("p-b", pemAuth("x"))}, []string{`"p-a"`, `"p-b"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, Config{}, jwtProfile("p-hmac", hmacAuth(k.hmac)))
			err := v.SetProfiles(tt.profiles)
			if err == nil {
				t.Fatal("SetProfiles accepted a bad config")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), string(k.hmac)) {
				t.Errorf("error %q contains the HMAC secret", err)
			}
			// The previous profiles stay in force.
			tok := signRaw(t, hdr("HS256", ""), claimsAt("p-hmac", nil), "HS256", k.hmac)
			if _, err := v.Verify(context.Background(), tok, testNow); err != nil {
				t.Errorf("previous profile after a refused config: %v", err)
			}
		})
	}
}

func TestSetProfilesInvalidatesCachedTokens(t *testing.T) {
	k := keys(t)
	ctx := context.Background()
	v := newVerifier(t, Config{}, jwtProfile("p-hmac", hmacAuth(k.hmac)), jwtProfile("p-rsa", pemAuth(pemOf(t, &k.rsa.PublicKey))))
	hsTok := signRaw(t, hdr("HS256", ""), claimsAt("p-hmac", nil), "HS256", k.hmac)
	rsTok := signRaw(t, hdr("RS256", ""), claimsAt("p-rsa", nil), "RS256", k.rsa)
	for _, tok := range []string{hsTok, rsTok} {
		if _, err := v.Verify(ctx, tok, testNow); err != nil {
			t.Fatal(err)
		}
	}
	unchanged := v.idx.Load().byID["p-rsa"]

	// p-hmac gets a new secret and p-rsa only a new client state: p-hmac's
	// cached token must stop verifying, p-rsa's stays cached.
	rsa := jwtProfile("p-rsa", pemAuth(pemOf(t, &k.rsa.PublicKey)))
	rsa.Active = false
	if err := v.SetProfiles([]*authzv1.Profile{jwtProfile("p-hmac", hmacAuth([]byte(strings.Repeat("n", 40)))), rsa}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, hsTok, testNow); CodeOf(err) != Signature {
		t.Errorf("token of a changed profile: err %v, want %v", err, Signature)
	}
	if v.idx.Load().byID["p-rsa"] != unchanged {
		t.Error("an unchanged profile was compiled again")
	}
	if !cached(v, rsTok) {
		t.Error("token of an unchanged profile left the cache")
	}
	if _, err := v.Verify(ctx, rsTok, testNow); err != nil {
		t.Errorf("token of an unchanged profile: %v", err)
	}

	// A removed profile's cached token is refused.
	if err := v.SetProfiles(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, rsTok, testNow); CodeOf(err) != UnknownProfile {
		t.Errorf("token of a removed profile: err %v, want %v", err, UnknownProfile)
	}
}

// cached reports whether tok is served from the cache at testNow.
func cached(v *Verifier, tok string) bool {
	key := sha256.Sum256([]byte(tok))
	_, ok := v.cache.get(&key, testNow.UnixNano())
	return ok
}

func TestCacheIsBounded(t *testing.T) {
	k := keys(t)
	ctx := context.Background()
	tests := []struct {
		name       string
		cfg        Config
		pad        int
		maxEntries int
		maxBytes   int
		minEntries int // the cache is not merely empty
	}{
		{"by entries", Config{CacheEntries: 128}, 0, 128, DefaultCacheBytes, 64},
		// About 1.5 KiB per entry, 4 KiB per shard: two entries a shard.
		{"by bytes", Config{CacheBytes: 256 << 10}, 500, DefaultCacheEntries, 256 << 10, 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, tt.cfg, jwtProfile("p-hmac", hmacAuth(k.hmac)))
			pad := strings.Repeat("p", tt.pad)
			for i := range 2000 {
				tok := signRaw(t, hdr("HS256", ""), claimsAt("p-hmac", map[string]any{"n": i, "pad": pad}), "HS256", k.hmac)
				if _, err := v.Verify(ctx, tok, testNow); err != nil {
					t.Fatal(err)
				}
				// Refused tokens are never cached.
				if _, err := v.Verify(ctx, tok+"x", testNow); err == nil {
					t.Fatal("altered token verified")
				}
			}
			n, b := v.cache.stats()
			if n > tt.maxEntries || b > tt.maxBytes {
				t.Errorf("cache holds %d entries in %d bytes, want at most %d in %d", n, b, tt.maxEntries, tt.maxBytes)
			}
			if n < tt.minEntries {
				t.Errorf("cache holds only %d entries", n)
			}
		})
	}
}

// TestCacheKeepsHotTokens checks the eviction order: a token in use survives
// a stream of tokens seen once.
func TestCacheKeepsHotTokens(t *testing.T) {
	k := keys(t)
	ctx := context.Background()
	v := newVerifier(t, Config{CacheEntries: 4 * cacheShards}, jwtProfile("p-hmac", hmacAuth(k.hmac)))
	hot := signRaw(t, hdr("HS256", ""), claimsAt("p-hmac", map[string]any{"hot": true}), "HS256", k.hmac)
	for i := range 1000 {
		if _, err := v.Verify(ctx, hot, testNow); err != nil {
			t.Fatal(err)
		}
		once := signRaw(t, hdr("HS256", ""), claimsAt("p-hmac", map[string]any{"n": i}), "HS256", k.hmac)
		if _, err := v.Verify(ctx, once, testNow); err != nil {
			t.Fatal(err)
		}
	}
	if !cached(v, hot) {
		t.Error("the token in use was evicted")
	}
}

func TestCacheSkipsHugeEntries(t *testing.T) {
	k := keys(t)
	v := newVerifier(t, Config{CacheBytes: 64 << 10}, jwtProfile("p-hmac", hmacAuth(k.hmac)))
	// One shard's budget is 1 KiB: this token verifies but is not cached.
	tok := signRaw(t, hdr("HS256", ""), claimsAt("p-hmac", map[string]any{"pad": strings.Repeat("p", 2000)}), "HS256", k.hmac)
	if _, err := v.Verify(context.Background(), tok, testNow); err != nil {
		t.Fatal(err)
	}
	if cached(v, tok) {
		t.Error("an entry over the shard budget was cached")
	}
}

func TestCacheEntryEndsAtExp(t *testing.T) {
	k := keys(t)
	ctx := context.Background()
	v := newVerifier(t, Config{}, jwtProfile("p-hmac", hmacAuth(k.hmac)))
	tok := signRaw(t, hdr("HS256", ""), claimsAt("p-hmac", nil), "HS256", k.hmac) // exp testNow+600s
	if _, err := v.Verify(ctx, tok, testNow); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, tok, testNow.Add(599e9)); err != nil {
		t.Errorf("before exp: %v", err)
	}
	// Past exp and the leeway the token is refused even though it is cached.
	if _, err := v.Verify(ctx, tok, testNow.Add(631e9)); CodeOf(err) != Expired {
		t.Errorf("after exp: err %v, want %v", err, Expired)
	}
}
