package check

import (
	"context"
	"net/netip"
	"testing"

	"gatehouse/authz/check/checktest"
)

// FuzzCredential sends arbitrary credential headers, paths and forwarded addresses through
// the whole pipeline: it must never panic, always decide, and never let a request through
// without a token of the config.
func FuzzCredential(f *testing.F) {
	fx := checktest.New(testNow)
	c := newTestChecker(f, fx, 1)
	tok := fx.Secret(checktest.TokenSales)
	f.Add(tok, "", "/sales/orders", "1.2.3.4")
	f.Add("", "Basic YXBpLXRva2VuOmd0aF8=", "/sales/orders/1", "")
	f.Add("", "Bearer a.b.c", "/sales/orders/x/items/y?q", "::1")
	f.Add(tok[:len(tok)-1]+"x", "", "/sales/old", "garbage, 10.0.0.1")
	f.Fuzz(func(t *testing.T, apiToken, authorization, path, xff string) {
		h := MapHeaders{}
		if apiToken != "" {
			h["api-token"] = apiToken
		}
		if authorization != "" {
			h["authorization"] = authorization
		}
		if xff != "" {
			h["x-forwarded-for"] = xff
		}
		var d Decision
		c.Decide(context.Background(), &Request{Method: "GET", Path: path, Headers: h, Source: netip.MustParseAddr("10.0.0.1")}, &d)
		if d.Code >= NumCodes {
			t.Fatalf("code %d out of range", d.Code)
		}
		if d.Code == OK {
			known := false
			for _, s := range fx.Secrets {
				known = known || s == apiToken || authorization != "" && d.TokenID != ""
			}
			if !known || d.Profile == nil || d.Endpoint == nil {
				t.Fatalf("allowed without a known token: %+v", d)
			}
			return
		}
		if d.RequestID == "" || len(d.AppendProblem(nil)) == 0 {
			t.Fatal("refusal without request id or body")
		}
	})
}
