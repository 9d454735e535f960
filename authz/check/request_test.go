package check

import (
	"encoding/base64"
	"net/netip"
	"testing"
)

func basic(userpass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(userpass))
}

func TestExtractCredential(t *testing.T) {
	const tok = "gth_sometoken"
	tests := []struct {
		name     string
		headers  MapHeaders
		wantKind AuthKind
		wantVal  string
		wantCode Code
	}{
		{"none", MapHeaders{}, AuthNone, "", MissingCredentials},
		{"api token header", MapHeaders{"api-token": tok}, AuthAPIToken, tok, OK},
		{"basic with api-token user", MapHeaders{"authorization": basic("api-token:" + tok)}, AuthAPIToken, tok, OK},
		{"basic scheme any case", MapHeaders{"authorization": "bAsIc " + base64.StdEncoding.EncodeToString([]byte("api-token:"+tok))}, AuthAPIToken, tok, OK},
		{"basic with other user", MapHeaders{"authorization": basic("admin:" + tok)}, AuthNone, "", InvalidCredentials},
		{"basic without password", MapHeaders{"authorization": basic("api-token:")}, AuthNone, "", InvalidCredentials},
		{"basic not base64", MapHeaders{"authorization": "Basic !!!"}, AuthNone, "", InvalidCredentials},
		{"basic too long", MapHeaders{"authorization": basic("api-token:" + string(make([]byte, 200)))}, AuthNone, "", InvalidCredentials},
		{"bearer", MapHeaders{"authorization": "Bearer a.b.c"}, AuthJWT, "a.b.c", OK},
		{"bearer empty", MapHeaders{"authorization": "Bearer "}, AuthNone, "", InvalidCredentials},
		{"unknown scheme", MapHeaders{"authorization": "Digest x"}, AuthNone, "", InvalidCredentials},
		{"two credentials", MapHeaders{"api-token": tok, "authorization": "Bearer a.b.c"}, AuthNone, "", InvalidCredentials},
		{"token and basic", MapHeaders{"api-token": tok, "authorization": basic("api-token:" + tok)}, AuthNone, "", InvalidCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cred, code, detail := extractCredential(tt.headers)
			if code != tt.wantCode || cred.kind != tt.wantKind || cred.value != tt.wantVal {
				t.Fatalf("extractCredential() = (%v, %q, %v), want (%v, %q, %v)", cred.kind, cred.value, code, tt.wantKind, tt.wantVal, tt.wantCode)
			}
			if code != OK && detail == "" {
				t.Error("refusal without detail")
			}
		})
	}
}

func TestClientAddr(t *testing.T) {
	src := netip.MustParseAddr("10.0.0.9")
	tests := []struct {
		name string
		xff  string
		hops int
		want string
	}{
		{"no hops ignores xff", "198.51.100.7", 0, "10.0.0.9"},
		{"one hop takes the last entry", "1.1.1.1, 198.51.100.7", 1, "198.51.100.7"},
		{"two hops", "1.1.1.1, 198.51.100.7, 10.1.1.1", 2, "198.51.100.7"},
		{"spoofed left entries are ignored", "203.0.113.5, 198.51.100.7", 1, "198.51.100.7"},
		{"fewer entries than hops takes the first", "198.51.100.7", 3, "198.51.100.7"},
		{"no xff falls back to source", "", 1, "10.0.0.9"},
		{"addr and port", "198.51.100.7:4711", 1, "198.51.100.7"},
		{"ipv6", "2001:db8::1", 1, "2001:db8::1"},
		{"mapped ipv4 is unmapped", "::ffff:198.51.100.7", 1, "198.51.100.7"},
		{"garbage is invalid", "not-an-ip", 1, "invalid IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := MapHeaders{}
			if tt.xff != "" {
				h["x-forwarded-for"] = tt.xff
			}
			if got := clientAddr(src, h, tt.hops).String(); got != tt.want {
				t.Errorf("clientAddr() = %s, want %s", got, tt.want)
			}
		})
	}
}
