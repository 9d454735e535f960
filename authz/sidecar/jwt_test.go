package sidecar

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"gatehouse/authz/check/checktest"
	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

// hs256 signs claims with the fixture JWT profile's shared secret.
func hs256(t *testing.T, secret string, claims map[string]any) string {
	t.Helper()
	enc := base64.RawURLEncoding
	h, err := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signing := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

func (s *sidecar) checkBearer(t *testing.T, path, jwt string) *authv3.CheckResponse {
	t.Helper()
	resp, err := s.client.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "198.51.100.7"}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: path,
			Headers: map[string]string{"authorization": "Bearer " + jwt}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// The sidecar verifies JWTs with the real verifier: the claims reach the upstream, a bad
// signature is invalid_credentials, and a profile whose key set was never fetched answers
// 503 key_unavailable.
func TestRunVerifiesJWTs(t *testing.T) {
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer jwks.Close()
	fx := checktest.New(time.Now())
	secret := fx.Config.Profiles[len(fx.Config.Profiles)-1].GetJwt().GetHmacSecret()
	fx.Config.Profiles = append(fx.Config.Profiles, &authzv1.Profile{
		Name: "prof-jwks", ClientId: "cl-jwks", ClientActive: true, Active: true, CollectionIds: []string{"col-sales"},
		Auth: &authzv1.Profile_Jwt{Jwt: &authzv1.JwtAuth{Key: &authzv1.JwtAuth_JwksUrl{JwksUrl: jwks.URL}, ClaimValue: "jwks-user"}},
	})
	s := start(t, Config{DataDir: t.TempDir(), ConfigFile: writeConfig(t, fx.Config)})
	exp := time.Now().Add(time.Hour).Unix()

	good := hs256(t, secret, map[string]any{"sub": "jwt-user", "exp": exp, "role": "reader"})
	resp := s.checkBearer(t, "/sales/orders/o-1", good)
	got := map[string]string{}
	for _, h := range resp.GetOkResponse().GetHeaders() {
		got[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	claims, err := base64.RawURLEncoding.DecodeString(got["x-gatehouse-jwt-claims"])
	if err != nil || got["x-gatehouse-auth-method"] != "jwt" || got["x-gatehouse-profile-id"] != checktest.ProfileJWT {
		t.Fatalf("JWT call: %v (claims %v)", resp, err)
	}
	var c map[string]any
	if err := json.Unmarshal(claims, &c); err != nil || c["role"] != "reader" {
		t.Errorf("claims header = %s, want the verified claims", claims)
	}

	forged := hs256(t, "not-the-secret-0123456789abcdef0123", map[string]any{"sub": "jwt-user", "exp": exp})
	if code := problemCode(t, s.checkBearer(t, "/sales/orders/o-1", forged)); code != "invalid_credentials" {
		t.Errorf("forged JWT: %s", code)
	}
	// An RS256 token for the JWKS profile: its keys were never fetched, so its signature
	// cannot be judged yet.
	enc := base64.RawURLEncoding
	pending := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." +
		enc.EncodeToString([]byte(`{"sub":"jwks-user","exp":`+strconv.FormatInt(exp, 10)+`}`)) + "." + enc.EncodeToString(make([]byte, 256))
	r := s.checkBearer(t, "/sales/orders/o-1", pending)
	if code := problemCode(t, r); code != "key_unavailable" || r.GetDeniedResponse().GetStatus().GetCode() != 503 {
		t.Errorf("JWKS never fetched: %v, want 503 key_unavailable", r)
	}
}
