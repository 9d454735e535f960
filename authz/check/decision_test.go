package check

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"gatehouse/authz/check/checktest"
	"gatehouse/authz/limit"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

// TestProblems renders every refusal: status line, headers and body, as a caller sees them.
func TestProblems(t *testing.T) {
	var out strings.Builder
	for c := MissingCredentials; c < NumCodes; c++ {
		d := Decision{Code: c, Detail: "detail of " + c.String() + ` with "quotes" and \ and ` + "\x01", RequestID: "req-1"}
		if c.Status() == 401 {
			d.Challenge = ChallengeAPIToken
		}
		if c == RateLimited || c == QuotaExceeded {
			d.Limited = true
			d.Limit = limit.Decision{Code: limit.RateLimited, RetryAfter: 1500e6,
				Rate: limit.Status{Present: true, Limit: 10, Window: 60e9, Reset: 1500e6}}
		}
		body := d.AppendProblem(nil)
		var parsed map[string]any
		if err := json.Unmarshal(body, &parsed); err != nil {
			t.Fatalf("%s: body is not JSON: %v\n%s", c, err, body)
		}
		if parsed["code"] != c.String() || parsed["status"] != float64(c.Status()) || parsed["type"] != ProblemTypePrefix+c.String() || parsed["request_id"] != "req-1" {
			t.Errorf("%s: body fields wrong: %s", c, body)
		}
		out.WriteString(c.String())
		out.WriteString("\n")
		for _, h := range d.AppendDenyHeaders(nil) {
			out.WriteString(h.Name + ": " + h.Value + "\n")
		}
		out.Write(body)
		out.WriteString("\n\n")
	}
	golden(t, "problems.golden", []byte(out.String()))
}

func TestUpstreamHeaders(t *testing.T) {
	f := checktest.New(testNow)
	c := newTestChecker(t, f, 0)
	var d Decision
	c.Decide(context.Background(), &Request{Method: "GET", Path: "/sales/orders/o-9/items/2",
		Headers: MapHeaders{"api-token": f.Secret(checktest.TokenSales)}}, &d)
	want := []Header{
		{HeaderClientID, "cl-acme"},
		{HeaderProfileID, "prof-sales"},
		{HeaderAuthMethod, "api_token"},
		{HeaderEndpointID, checktest.EndpointItem},
		{HeaderCollectionID, "col-sales"},
		{HeaderRecipeID, "recipe-" + checktest.EndpointItem},
		{HeaderTokenID, checktest.TokenSales},
		{"x-gatehouse-param-id", "o-9"},
		{"x-gatehouse-param-item", "2"},
	}
	if diff := cmp.Diff(want, d.AppendUpstream(nil)); diff != "" {
		t.Errorf("upstream headers (-want +got):\n%s", diff)
	}
	for _, h := range want {
		if !d.Sets(h.Name) {
			t.Errorf("Sets(%q) = false", h.Name)
		}
	}
	for _, name := range []string{HeaderJWTClaims, "x-gatehouse-param-other", "x-gatehouse-admin"} {
		if d.Sets(name) {
			t.Errorf("Sets(%q) = true for a header the decision does not set", name)
		}
	}
}

func TestRedactHeader(t *testing.T) {
	f := checktest.New(testNow)
	tok := f.Secret(checktest.TokenSales)
	tests := []struct {
		name, header, value, want string
	}{
		{"api token shows only its prefix", "api-token", tok, tok[:10] + "…"},
		{"malformed api token", "api-token", "hunter2", Redacted},
		{"authorization", "authorization", "Bearer abc", Redacted},
		{"cookie", "cookie", "s=1", Redacted},
		{"claims", HeaderJWTClaims, "e30", Redacted},
		{"other header", "user-agent", "curl/8", "curl/8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RedactHeader(tt.header, tt.value); got != tt.want {
				t.Errorf("RedactHeader(%q) = %q, want %q", tt.header, got, tt.want)
			}
		})
	}
}
