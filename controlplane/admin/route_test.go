package admin

import "testing"

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
