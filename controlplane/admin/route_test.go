package admin

import (
	"fmt"
	"strings"
	"testing"
)

// Metrics label REST calls by route family; ids and verbs must never become label values.
func TestRouteHintKeepsMetricLabelsBounded(t *testing.T) {
	for path, want := range map[string]string{
		"/v1/collections":                      "/v1/collections",
		"/v1/collections/col_1/endpoints/ep_2": "/v1/collections",
		"/v1/clients/cli_1/access-profiles":    "/v1/clients",
		"/v1/policies/pol_1":                   "/v1/policies",
		"/v1/audit-events":                     "/v1/audit-events",
		"/v1/status/nodes":                     "/v1/status",
		"/v1/calls":                            "/v1/calls",
		"/v1/calls:summary":                    "/v1/calls",
		"/v1/anything-else/with/an/id":         "/v1/other",
		"/v1/gth_secret-looking-value":         "/v1/other",
	} {
		if got := routeHint(path); got != want {
			t.Errorf("routeHint(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestMethodLabel(t *testing.T) {
	tests := []struct{ name, method, want string }{
		{"get", "GET", "GET"},
		{"post", "POST", "POST"},
		{"patch", "PATCH", "PATCH"},
		{"delete", "DELETE", "DELETE"},
		{"put", "PUT", "PUT"},
		{"head", "HEAD", "HEAD"},
		{"options", "OPTIONS", "OPTIONS"},
		{"lower case is another token", "get", "OTHER"},
		{"trace", "TRACE", "OTHER"},
		{"made up", "X-SECRET-123", "OTHER"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := methodLabel(tc.method); got != tc.want {
				t.Errorf("methodLabel(%q) = %q, want %q", tc.method, got, tc.want)
			}
		})
	}
}

// Unauthenticated callers choose the method; however many they invent, the metrics hold one
// OTHER series.
func TestRESTMetricsBoundUnknownMethods(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.restAs(fmt.Sprintf("M%d", i), "/v1/clients", "", "")
	}
	body := string(e.restAs("GET", "/metrics", "", "").body)
	if want := `gatehouse_admin_requests_total{code="401",method="OTHER /v1/clients",transport="rest"} 5`; !strings.Contains(body, want) {
		t.Errorf("metrics lack %s", want)
	}
	if strings.Contains(body, `method="M0`) {
		t.Error("a made-up method became a label value")
	}
}
