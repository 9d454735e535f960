package jwtauth

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Run: go test -run '^$' -bench . -benchmem ./authz/jwtauth/

// benchVerify measures Verify of one token as the sidecar runs it: with
// metrics registered.
func benchVerify(b *testing.B, cfg Config, alg string, key any, profile string) {
	cfg.Registerer = prometheus.NewRegistry()
	v := newVerifier(b, cfg, testProfiles(b)...)
	tok := signRaw(b, hdr(alg, ""), claimsAt(profile, map[string]any{"scope": "orders:read orders:write", "iss": "https://issuer.example"}), alg, key)
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok, testNow); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

// noCache makes every Verify take the full path: parse, signature, claims.
var noCache = Config{CacheEntries: -1}

func BenchmarkVerifyRS256Cold(b *testing.B) {
	benchVerify(b, noCache, "RS256", keys(b).rsa, "p-rsa")
}

func BenchmarkVerifyRS256Cached(b *testing.B) {
	benchVerify(b, Config{}, "RS256", keys(b).rsa, "p-rsa")
}

func BenchmarkVerifyHS256Cold(b *testing.B) {
	benchVerify(b, noCache, "HS256", keys(b).hmac, "p-hmac")
}

func BenchmarkVerifyHS256Cached(b *testing.B) {
	benchVerify(b, Config{}, "HS256", keys(b).hmac, "p-hmac")
}

func BenchmarkVerifyES256Cold(b *testing.B) {
	benchVerify(b, noCache, "ES256", keys(b).p256, "p-p256")
}

func BenchmarkVerifyEdDSACold(b *testing.B) {
	benchVerify(b, noCache, "EdDSA", keys(b).ed, "p-ed")
}

// BenchmarkVerifyRS256CachedParallel measures the cache under contention
// from all cores.
func BenchmarkVerifyRS256CachedParallel(b *testing.B) {
	v := newVerifier(b, Config{}, testProfiles(b)...)
	tok := signRaw(b, hdr("RS256", ""), claimsAt("p-rsa", nil), "RS256", keys(b).rsa)
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok, testNow); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(ctx, tok, testNow); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
