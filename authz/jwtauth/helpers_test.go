package jwtauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"hash"
	"sync"
	"testing"
	"time"

	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

// testKeys are generated once per test binary: RSA generation is slow.
type testKeys struct {
	rsa, rsa2 *rsa.PrivateKey
	p256      *ecdsa.PrivateKey
	p384      *ecdsa.PrivateKey
	p521      *ecdsa.PrivateKey
	ed        ed25519.PrivateKey
	hmac      []byte
}

var keysOnce = sync.OnceValue(func() *testKeys {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	k := &testKeys{hmac: []byte("0123456789abcdef0123456789abcdef-hmac")}
	var err error
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.p256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.p384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	k.p521, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	must(err)
	_, k.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	return k
})

func keys(tb testing.TB) *testKeys {
	tb.Helper()
	return keysOnce()
}

// pemOf encodes a public key as a PKIX PEM block.
func pemOf(tb testing.TB, pub crypto.PublicKey) string {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// signRaw builds a compact JWS from a header and claims, signed with the
// standard library directly so that the verifier is tested against an
// independent implementation. key is the private key or HMAC secret.
func signRaw(tb testing.TB, header, claims any, alg string, key any) string {
	tb.Helper()
	enc := base64.RawURLEncoding
	h := mustJSON(tb, header)
	c := mustJSON(tb, claims)
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	return input + "." + enc.EncodeToString(signature(tb, alg, key, []byte(input)))
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	if b, ok := v.([]byte); ok {
		return b
	}
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func signature(tb testing.TB, alg string, key any, input []byte) []byte {
	tb.Helper()
	hashOf := map[byte]crypto.Hash{'2': crypto.SHA256, '3': crypto.SHA384, '5': crypto.SHA512}
	var h crypto.Hash
	if len(alg) == 5 {
		h = hashOf[alg[2]]
	}
	digest := func() []byte {
		d := h.New()
		d.Write(input)
		return d.Sum(nil)
	}
	var sig []byte
	var err error
	switch alg[:2] {
	case "HS":
		newHash := map[crypto.Hash]func() hash.Hash{crypto.SHA256: sha256.New, crypto.SHA384: sha512.New384, crypto.SHA512: sha512.New}[h]
		m := hmac.New(newHash, key.([]byte))
		m.Write(input)
		sig = m.Sum(nil)
	case "RS":
		sig, err = rsa.SignPKCS1v15(rand.Reader, key.(*rsa.PrivateKey), h, digest())
	case "PS":
		sig, err = rsa.SignPSS(rand.Reader, key.(*rsa.PrivateKey), h, digest(), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case "ES":
		k := key.(*ecdsa.PrivateKey)
		r, s, e := ecdsa.Sign(rand.Reader, k, digest())
		size := (k.Curve.Params().BitSize + 7) / 8
		sig = make([]byte, 2*size)
		r.FillBytes(sig[:size])
		s.FillBytes(sig[size:])
		err = e
	case "Ed":
		sig = ed25519.Sign(key.(ed25519.PrivateKey), input)
	default:
		tb.Fatalf("no signer for %s", alg)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return sig
}

// testNow is the fixed clock of the tests.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// claimsAt returns valid claims for subject sub at testNow, with extra merged in.
func claimsAt(sub string, extra map[string]any) map[string]any {
	c := map[string]any{
		"sub": sub,
		"iat": testNow.Unix() - 10,
		"nbf": testNow.Unix() - 10,
		"exp": testNow.Unix() + 600,
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func hdr(alg, kid string) map[string]any {
	h := map[string]any{"alg": alg, "typ": "JWT"}
	if kid != "" {
		h["kid"] = kid
	}
	return h
}

func jwtProfile(name string, j *authzv1.JwtAuth) *authzv1.Profile {
	return &authzv1.Profile{Name: name, ClientId: "client-" + name, Active: true, ClientActive: true, Auth: &authzv1.Profile_Jwt{Jwt: j}}
}

func hmacAuth(secret []byte) *authzv1.JwtAuth {
	return &authzv1.JwtAuth{Key: &authzv1.JwtAuth_HmacSecret{HmacSecret: string(secret)}}
}

func pemAuth(pems ...string) *authzv1.JwtAuth {
	return &authzv1.JwtAuth{Key: &authzv1.JwtAuth_PublicKeys{PublicKeys: &authzv1.PublicKeys{Pem: pems}}}
}

func newVerifier(tb testing.TB, cfg Config, profiles ...*authzv1.Profile) *Verifier {
	tb.Helper()
	v, err := New(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(v.Close)
	if err := v.SetProfiles(profiles); err != nil {
		tb.Fatal(err)
	}
	return v
}
