package jwtauth

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetrics(t *testing.T) {
	k := keys(t)
	reg := prometheus.NewRegistry()
	ks := newKeyServer(t, jwkOf("r1", &k.rsa.PublicKey, nil))
	v := newVerifier(t, Config{Registerer: reg}, jwtProfile("p-hmac", hmacAuth(k.hmac)), jwtProfile("p-jwks", jwksAuth(ks.URL+"/keys")))
	waitFor(t, "the first fetch", v.Ready)
	ctx := context.Background()
	good := signRaw(t, hdr("HS256", ""), claimsAt("p-hmac", nil), "HS256", k.hmac)
	for _, tok := range []string{good, good, good + "x", "x", signRaw(t, hdr("RS256", "nope"), claimsAt("p-jwks", nil), "HS256", k.hmac)} {
		v.Verify(ctx, tok, testNow)
	}
	want := `
# HELP gatehouse_jwt_cache_entries Entries in the verified-token cache.
# TYPE gatehouse_jwt_cache_entries gauge
gatehouse_jwt_cache_entries 1
# HELP gatehouse_jwt_cache_lookups_total Lookups in the verified-token cache by result (hit, miss).
# TYPE gatehouse_jwt_cache_lookups_total counter
gatehouse_jwt_cache_lookups_total{result="hit"} 1
gatehouse_jwt_cache_lookups_total{result="miss"} 4
# HELP gatehouse_jwt_key_fetches_total JWKS and OIDC discovery fetches by result (ok, error).
# TYPE gatehouse_jwt_key_fetches_total counter
gatehouse_jwt_key_fetches_total{result="error"} 0
gatehouse_jwt_key_fetches_total{result="ok"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"gatehouse_jwt_cache_entries", "gatehouse_jwt_cache_lookups_total", "gatehouse_jwt_key_fetches_total"); err != nil {
		t.Error(err)
	}
	for code, n := range map[string]float64{"ok": 2, "signature": 1, "malformed": 1, "unknown_key": 1, "expired": 0} {
		if got := counterValue(t, reg, "gatehouse_jwt_verifications_total", code); got != n {
			t.Errorf("verifications_total{result=%q} = %v, want %v", code, got, n)
		}
	}
}

func counterValue(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{result=%q}", name, result)
	return 0
}
