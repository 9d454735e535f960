package jwtauth

import (
	"context"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// TestVerifyTokensFromJWX verifies tokens issued by another implementation,
// jwx's own jwt.Sign, next to the standard-library tokens of the other tests.
func TestVerifyTokensFromJWX(t *testing.T) {
	k := keys(t)
	v := newVerifier(t, Config{}, testProfiles(t)...)
	tests := []struct {
		alg     jwa.SignatureAlgorithm
		key     any
		profile string
	}{
		{jwa.HS512(), k.hmac, "p-hmac"},
		{jwa.RS256(), k.rsa, "p-rsa"},
		{jwa.PS256(), k.rsa, "p-rsa"},
		{jwa.ES256(), k.p256, "p-p256"},
		{jwa.ES384(), k.p384, "p-p384"},
		{jwa.EdDSA(), k.ed, "p-ed"},
	}
	for _, tt := range tests {
		t.Run(tt.alg.String(), func(t *testing.T) {
			tok, err := jwt.NewBuilder().Subject(tt.profile).Expiration(testNow.Add(time.Minute)).IssuedAt(testNow).Build()
			if err != nil {
				t.Fatal(err)
			}
			signed, err := jwt.Sign(tok, jwt.WithKey(tt.alg, tt.key))
			if err != nil {
				t.Fatal(err)
			}
			res, err := v.Verify(context.Background(), string(signed), testNow)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if res.ProfileID != tt.profile {
				t.Errorf("profile %q, want %q", res.ProfileID, tt.profile)
			}
		})
	}
}
