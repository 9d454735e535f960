package jwtauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

// testProfiles is one profile per key kind plus profiles exercising claim rules.
func testProfiles(tb testing.TB) []*authzv1.Profile {
	k := keys(tb)
	strict := hmacAuth([]byte("strict-secret-strict-secret-strict-secret"))
	strict.Issuers = []string{"https://issuer.example", "https://other.example"}
	strict.Audiences = []string{"api://gatehouse"}
	strict.RequiredClaims = []string{"scope"}
	rs512 := pemAuth(pemOf(tb, &k.rsa2.PublicKey))
	rs512.Algorithms = []string{"RS512"}
	azp := hmacAuth([]byte("azp-secret-azp-secret-azp-secret-azp"))
	azp.Claim, azp.ClaimValue = "azp", "svc-1"
	return []*authzv1.Profile{
		jwtProfile("p-hmac", hmacAuth(k.hmac)),
		jwtProfile("p-rsa", pemAuth(pemOf(tb, &k.rsa.PublicKey))),
		jwtProfile("p-p256", pemAuth(pemOf(tb, &k.p256.PublicKey))),
		jwtProfile("p-p384", pemAuth(pemOf(tb, &k.p384.PublicKey))),
		jwtProfile("p-ed", pemAuth(pemOf(tb, k.ed.Public()))),
		jwtProfile("p-strict", strict),
		jwtProfile("p-rs512", rs512),
		jwtProfile("p-azp", azp),
		// API token profiles are not the verifier's business.
		{Name: "p-apitoken", Auth: &authzv1.Profile_ApiToken{ApiToken: &authzv1.ApiTokenAuth{}}},
	}
}

func TestVerifyAlgorithms(t *testing.T) {
	k := keys(t)
	v := newVerifier(t, Config{}, testProfiles(t)...)
	tests := []struct {
		alg     string
		key     any
		profile string
	}{
		{"HS256", k.hmac, "p-hmac"},
		{"HS384", k.hmac, "p-hmac"},
		{"HS512", k.hmac, "p-hmac"},
		{"RS256", k.rsa, "p-rsa"},
		{"RS384", k.rsa, "p-rsa"},
		{"RS512", k.rsa, "p-rsa"},
		{"PS256", k.rsa, "p-rsa"},
		{"ES256", k.p256, "p-p256"},
		{"ES384", k.p384, "p-p384"},
		{"EdDSA", k.ed, "p-ed"},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			claims := claimsAt(tt.profile, map[string]any{"scope": "read", "n": 1.5})
			tok := signRaw(t, hdr(tt.alg, ""), claims, tt.alg, tt.key)
			res, err := v.Verify(context.Background(), tok, testNow)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := Result{
				ProfileID:  tt.profile,
				ClaimsJSON: mustJSON(t, claims), // encoding/json sorts keys, as claimsJSON does
				Expiry:     testNow.Add(600 * time.Second),
			}
			want.ClaimsBase64 = base64.RawURLEncoding.EncodeToString(want.ClaimsJSON)
			if diff := cmp.Diff(want, res); diff != "" {
				t.Errorf("Verify result (-want +got):\n%s", diff)
			}
			// The second call is served from the cache with the same result.
			again, err := v.Verify(context.Background(), tok, testNow)
			if err != nil {
				t.Fatalf("cached Verify: %v", err)
			}
			if diff := cmp.Diff(want, again); diff != "" {
				t.Errorf("cached Verify result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerifyRefuses(t *testing.T) {
	k := keys(t)
	enc := base64.RawURLEncoding
	v := newVerifier(t, Config{}, testProfiles(t)...)
	good := signRaw(t, hdr("RS256", ""), claimsAt("p-rsa", nil), "RS256", k.rsa)
	parts := strings.Split(good, ".")
	strictClaims := func(extra map[string]any) map[string]any {
		c := claimsAt("p-strict", map[string]any{"iss": "https://issuer.example", "aud": "api://gatehouse", "scope": "read"})
		for k, v := range extra {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	strictSecret := []byte("strict-secret-strict-secret-strict-secret")
	tests := []struct {
		name  string
		token string
		want  Code // 0: accepted
	}{
		{"alg none", enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".", Algorithm},
		{"alg none with signature", enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + "." + parts[2], Algorithm},
		{"alg None", signRaw(t, []byte(`{"alg":"None"}`), claimsAt("p-rsa", nil), "RS256", k.rsa), Algorithm},
		{"alg lower case", signRaw(t, []byte(`{"alg":"rs256"}`), claimsAt("p-rsa", nil), "RS256", k.rsa), Algorithm},
		{"no alg", signRaw(t, []byte(`{"typ":"JWT"}`), claimsAt("p-rsa", nil), "RS256", k.rsa), Algorithm},
		{"ALG member is not alg", signRaw(t, []byte(`{"ALG":"RS256"}`), claimsAt("p-rsa", nil), "RS256", k.rsa), Algorithm},
		{"unsupported ES512", signRaw(t, hdr("ES512", ""), claimsAt("p-p256", nil), "ES512", k.p521), Algorithm},
		{"HS256 with RSA public key PEM as secret", signRaw(t, hdr("HS256", ""), claimsAt("p-rsa", nil), "HS256", []byte(pemOf(t, &k.rsa.PublicKey))), Algorithm},
		{"RS256 to an HMAC profile", signRaw(t, hdr("RS256", ""), claimsAt("p-hmac", nil), "RS256", k.rsa), Algorithm},
		{"ES384 to a P-256 profile", signRaw(t, hdr("ES384", ""), claimsAt("p-p256", nil), "ES384", k.p384), Algorithm},
		{"RS256 where only RS512 is allowed", signRaw(t, hdr("RS256", ""), claimsAt("p-rs512", nil), "RS256", k.rsa2), Algorithm},
		{"RS512 where only RS512 is allowed", signRaw(t, hdr("RS512", ""), claimsAt("p-rs512", nil), "RS512", k.rsa2), 0},
		{"signed by another key", signRaw(t, hdr("RS256", ""), claimsAt("p-rsa", nil), "RS256", k.rsa2), Signature},
		{"tampered claims", parts[0] + "." + enc.EncodeToString(mustJSON(t, claimsAt("p-rsa", map[string]any{"admin": true}))) + "." + parts[2], Signature},
		{"tampered signature", parts[0] + "." + parts[1] + "." + flipAt(parts[2], 10), Signature},
		{"non-canonical base64 signature", parts[0] + "." + parts[1] + "." + setPadBit(parts[2]), Malformed},
		{"signature from another token", parts[0] + "." + parts[1] + "." + strings.Split(signRaw(t, hdr("RS256", ""), claimsAt("p-rsa", map[string]any{"x": 1}), "RS256", k.rsa), ".")[2], Signature},
		{"expired", signRaw(t, hdr("HS256", ""), claimsAt("p-hmac", map[string]any{"exp": testNow.Unix() - 31}), "HS256", k.hmac), Expired},
		{"expired within leeway", signRaw(t, hdr("HS256", ""), claimsAt("p-hmac", map[string]any{"exp": testNow.Unix() - 29}), "HS256", k.hmac), 0},
		{"no exp", signRaw(t, hdr("HS256", ""), claimsAt("p-hmac", map[string]any{"exp": nil}), "HS256", k.hmac), MissingClaim},
		{"exp is a string", signRaw(t, hdr("HS256", ""), claimsAt("p-hmac", map[string]any{"exp": "tomorrow"}), "HS256", k.hmac), Malformed},
		{"nbf in the future", signRaw(t, hdr("HS256", ""), claimsAt("p-hmac", map[string]any{"nbf": testNow.Unix() + 31}), "HS256", k.hmac), NotYetValid},
		{"nbf within leeway", signRaw(t, hdr("HS256", ""), claimsAt("p-hmac", map[string]any{"nbf": testNow.Unix() + 29}), "HS256", k.hmac), 0},
		{"iat in the future", signRaw(t, hdr("HS256", ""), claimsAt("p-hmac", map[string]any{"iat": testNow.Unix() + 3600}), "HS256", k.hmac), NotYetValid},
		{"fractional exp", signRaw(t, hdr("HS256", ""), claimsAt("p-hmac", map[string]any{"exp": float64(testNow.Unix()) + 0.5}), "HS256", k.hmac), 0},
		{"huge exp", signRaw(t, hdr("HS256", ""), claimsAt("p-hmac", map[string]any{"exp": 1e300}), "HS256", k.hmac), 0},
		{"unknown subject", signRaw(t, hdr("HS256", ""), claimsAt("nobody", nil), "HS256", k.hmac), UnknownProfile},
		{"subject is a number", signRaw(t, hdr("HS256", ""), claimsAt("", map[string]any{"sub": 7}), "HS256", k.hmac), UnknownProfile},
		{"API token profile id as subject", signRaw(t, hdr("HS256", ""), claimsAt("p-apitoken", nil), "HS256", k.hmac), UnknownProfile},
		{"profile by other claim", signRaw(t, hdr("HS256", ""), claimsAt("x", map[string]any{"azp": "svc-1"}), "HS256", []byte("azp-secret-azp-secret-azp-secret-azp")), 0},
		{"strict ok", signRaw(t, hdr("HS256", ""), strictClaims(nil), "HS256", strictSecret), 0},
		{"wrong issuer", signRaw(t, hdr("HS256", ""), strictClaims(map[string]any{"iss": "https://evil.example"}), "HS256", strictSecret), Issuer},
		{"no issuer", signRaw(t, hdr("HS256", ""), strictClaims(map[string]any{"iss": nil}), "HS256", strictSecret), Issuer},
		{"second issuer", signRaw(t, hdr("HS256", ""), strictClaims(map[string]any{"iss": "https://other.example"}), "HS256", strictSecret), 0},
		{"wrong audience", signRaw(t, hdr("HS256", ""), strictClaims(map[string]any{"aud": "api://other"}), "HS256", strictSecret), Audience},
		{"no audience", signRaw(t, hdr("HS256", ""), strictClaims(map[string]any{"aud": nil}), "HS256", strictSecret), Audience},
		{"audience in array", signRaw(t, hdr("HS256", ""), strictClaims(map[string]any{"aud": []string{"x", "api://gatehouse"}}), "HS256", strictSecret), 0},
		{"audience of wrong type", signRaw(t, hdr("HS256", ""), strictClaims(map[string]any{"aud": 5}), "HS256", strictSecret), Malformed},
		{"required claim missing", signRaw(t, hdr("HS256", ""), strictClaims(map[string]any{"scope": nil}), "HS256", strictSecret), MissingClaim},
		{"too large", signRaw(t, hdr("HS256", ""), claimsAt("p-hmac", map[string]any{"pad": strings.Repeat("a", 8000)}), "HS256", k.hmac), TooLarge},
		{"just under the size limit", signRaw(t, hdr("HS256", ""), claimsAt("p-hmac", map[string]any{"pad": strings.Repeat("a", 7400)}), "HS256", k.hmac), 0},
		{"JWE", "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", Malformed},
		{"two parts", parts[0] + "." + parts[1], Malformed},
		{"empty", "", Malformed},
		{"garbage", "not a token", Malformed},
		{"header not JSON", enc.EncodeToString([]byte("RS256")) + "." + parts[1] + "." + parts[2], Malformed},
		{"claims null", parts[0] + "." + enc.EncodeToString([]byte("null")) + "." + parts[2], Malformed},
		{"claims array", parts[0] + "." + enc.EncodeToString([]byte("[1]")) + "." + parts[2], Malformed},
		{"padded base64", parts[0] + "=." + parts[1] + "." + parts[2], Malformed},
		{"crit header", signRaw(t, []byte(`{"alg":"RS256","crit":["exp"],"exp":1}`), claimsAt("p-rsa", nil), "RS256", k.rsa), Malformed},
		{"b64 false", signRaw(t, []byte(`{"alg":"RS256","b64":false}`), claimsAt("p-rsa", nil), "RS256", k.rsa), Malformed},
		{"embedded jwk is ignored", signRaw(t, map[string]any{"alg": "RS256", "jwk": map[string]any{"kty": "oct", "k": "c2VjcmV0"}}, claimsAt("p-rsa", nil), "RS256", k.rsa2), Signature},
		{"duplicate sub: last wins", signRaw(t, hdr("HS256", ""), []byte(`{"sub":"p-rsa","sub":"p-hmac","exp":`+itoa(testNow.Unix()+60)+`}`), "HS256", k.hmac), 0},
		{"deeply nested claims", signRaw(t, hdr("HS256", ""), []byte(`{"sub":"p-hmac","exp":`+itoa(testNow.Unix()+60)+`,"x":`+strings.Repeat("[", 3000)+strings.Repeat("]", 3000)+`}`), "HS256", k.hmac), 0},
		{"unbalanced nested claims", signRaw(t, hdr("HS256", ""), []byte(`{"sub":"p-hmac","x":`+strings.Repeat("[", 5000)+`}`), "HS256", k.hmac), Malformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tt.token, testNow)
			if got := CodeOf(err); got != tt.want {
				t.Fatalf("Verify code = %v, want %v (err %v)", got, tt.want, err)
			}
			if err == nil {
				return
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.want)
			}
			for _, seg := range strings.Split(tt.token, ".") {
				if len(seg) >= 8 && strings.Contains(err.Error(), seg) {
					t.Errorf("error %q contains part of the token", err)
				}
			}
		})
	}
}

const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// flipAt changes the base64url character at i to another one.
func flipAt(s string, i int) string {
	b := []byte(s)
	b[i] = b64Alphabet[(strings.IndexByte(b64Alphabet, b[i])+1)%64]
	return string(b)
}

// setPadBit sets the lowest unused bit of the last character of an RSA-2048
// signature's encoding (256 bytes leave 4 such bits): the same bytes, a
// different string.
func setPadBit(s string) string {
	b := []byte(s)
	b[len(b)-1] = b64Alphabet[strings.IndexByte(b64Alphabet, b[len(b)-1])|1]
	return string(b)
}

func itoa(n int64) string { return string(mustJSONNum(n)) }

func mustJSONNum(n int64) []byte {
	b, _ := json.Marshal(n)
	return b
}
