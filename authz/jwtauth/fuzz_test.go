package jwtauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzVerify feeds arbitrary tokens to a verifier with one profile of each
// key kind: Verify must never panic and must always decide, with a verified
// profile or a refusal code.
func FuzzVerify(f *testing.F) {
	k := keys(f)
	enc := base64.RawURLEncoding
	seeds := []string{
		"", ".", "..", "a.b.c", "a.b.c.d.e",
		signRaw(f, hdr("HS256", ""), claimsAt("p-hmac", nil), "HS256", k.hmac),
		signRaw(f, hdr("RS256", ""), claimsAt("p-rsa", nil), "RS256", k.rsa),
		signRaw(f, hdr("PS256", ""), claimsAt("p-rsa", nil), "PS256", k.rsa),
		signRaw(f, hdr("ES256", ""), claimsAt("p-p256", nil), "ES256", k.p256),
		signRaw(f, hdr("ES384", ""), claimsAt("p-p384", nil), "ES384", k.p384),
		signRaw(f, hdr("EdDSA", ""), claimsAt("p-ed", nil), "EdDSA", k.ed),
		signRaw(f, hdr("HS256", ""), claimsAt("p-rsa", nil), "HS256", []byte(pemOf(f, &k.rsa.PublicKey))),
		enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + enc.EncodeToString([]byte(`{"sub":"p-hmac","exp":9999999999}`)) + ".",
		enc.EncodeToString([]byte(`{"alg":"HS256","crit":["x"]}`)) + "." + enc.EncodeToString([]byte(`{"sub":"p-hmac"}`)) + ".c2ln",
		enc.EncodeToString([]byte(`{"alg":"HS256"}`)) + "." + enc.EncodeToString([]byte(`{"sub":"p-hmac","exp":1e999,"aud":[1,{}]}`)) + ".c2ln",
		enc.EncodeToString([]byte(`{"alg":"HS256"}`)) + "." + enc.EncodeToString([]byte(`{"sub":`+strings.Repeat("[", 2000))) + ".c2ln",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	v := newVerifier(f, Config{MaxTokenBytes: 4096}, testProfiles(f)...)
	f.Fuzz(func(t *testing.T, token string) {
		res, err := v.Verify(context.Background(), token, testNow)
		if err != nil {
			if CodeOf(err) == 0 {
				t.Fatalf("refusal without a code: %v", err)
			}
			if len(token) >= 16 && strings.Contains(err.Error(), token) {
				t.Fatalf("error %q contains the token", err)
			}
			return
		}
		if res.ProfileID == "" || len(res.ClaimsJSON) == 0 || res.Expiry.IsZero() {
			t.Fatalf("accepted without a verified result: %+v", res)
		}
	})
}

// FuzzVerifySigned signs arbitrary header and claims bytes with the HMAC
// profile's secret, so that the fuzzer reaches the claim checks and the
// claims rendering behind a valid signature.
func FuzzVerifySigned(f *testing.F) {
	k := keys(f)
	f.Add([]byte(`{"alg":"HS256"}`), []byte(`{"sub":"p-hmac","exp":1900000000}`))
	f.Add([]byte(`{"alg":"HS512","kid":"x"}`), []byte(`{"sub":"p-hmac","exp":1.5e9,"nbf":"x","aud":["a"]}`))
	f.Add([]byte(`{"alg":"HS256","alg":"none"}`), []byte(`{"sub":"p-strict","iss":7,"exp":1900000000,"scope":null}`))
	f.Add([]byte(`{"alg":"HS384"}`), []byte(`{"sub":"p-hmac","sub":"p-rsa","exp":-1,"\u0000":"\u003c"}`))
	v := newVerifier(f, Config{}, testProfiles(f)...)
	enc := base64.RawURLEncoding
	f.Fuzz(func(t *testing.T, header, claims []byte) {
		input := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
		algs := []string{"HS256", "HS384", "HS512"}
		tok := input + "." + enc.EncodeToString(signature(t, algs[len(header)%3], k.hmac, []byte(input)))
		res, err := v.Verify(context.Background(), tok, testNow)
		if err != nil {
			if CodeOf(err) == 0 {
				t.Fatalf("refusal without a code: %v", err)
			}
			return
		}
		if res.ProfileID != "p-hmac" || res.Expiry.IsZero() {
			t.Fatalf("accepted with an unexpected result: %+v", res)
		}
		var m map[string]any
		if err := json.Unmarshal(res.ClaimsJSON, &m); err != nil {
			t.Fatalf("claims JSON does not parse: %v", err)
		}
	})
}
