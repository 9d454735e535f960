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
			if got := clientAddr(src, h, tt.hops, false).String(); got != tt.want {
				t.Errorf("clientAddr() = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestClientAddrBehindEnvoy covers the ext_authz path, where Envoy (use_remote_address)
// appends its downstream peer, the CheckRequest source, to X-Forwarded-For: that entry is
// dropped, so --trusted-hops counts the proxies in front of Envoy.
func TestClientAddrBehindEnvoy(t *testing.T) {
	lb := "10.0.0.9"
	tests := []struct {
		name     string
		src      string
		xff      string
		hops     int
		appended bool
		want     string
	}{
		{"one load balancer", lb, "198.51.100.7, 10.0.0.9", 1, true, "198.51.100.7"},
		{"spoofed entry left of the load balancer's", lb, "203.0.113.5, 198.51.100.7, 10.0.0.9", 1, true, "198.51.100.7"},
		{"two proxies", lb, "198.51.100.7, 10.1.1.1, 10.0.0.9", 2, true, "198.51.100.7"},
		{"caller straight to envoy", "198.51.100.7", "198.51.100.7", 1, true, "198.51.100.7"},
		{"mapped source matches", "::ffff:10.0.0.9", "198.51.100.7, 10.0.0.9", 1, true, "198.51.100.7"},
		{"envoy without use_remote_address appends nothing", lb, "198.51.100.7", 1, true, "198.51.100.7"},
		{"no hops ignores xff", lb, "198.51.100.7, 10.0.0.9", 0, true, "10.0.0.9"},
		// nginx in front of the HTTP check: the source is nginx and its entry is the
		// caller's, even when the caller shares nginx's address.
		{"http check keeps the proxy's entry", "127.0.0.1", "203.0.113.5, 127.0.0.1", 1, false, "127.0.0.1"},
		{"http check through nginx", "127.0.0.1", "198.51.100.7", 1, false, "198.51.100.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := MapHeaders{"x-forwarded-for": tt.xff}
			if got := clientAddr(netip.MustParseAddr(tt.src), h, tt.hops, tt.appended).String(); got != tt.want {
				t.Errorf("clientAddr() = %s, want %s", got, tt.want)
			}
		})
	}
}
