package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gatehouse/authz/check/checktest"
)

func TestHTTPCheck(t *testing.T) {
	e := newEnv(t, true, 0)
	h := NewHTTPHandler(e.cfg, e.reg)
	tok := e.fx.Secret(checktest.TokenSales)
	tests := []struct {
		name        string
		method, url string
		headers     map[string][]string
		wantStatus  int
		wantHeaders map[string]string
		wantCode    string
	}{
		{"envoy http_service prefix form", "GET", "/check/sales/orders/o-5?x=1", map[string][]string{"Api-Token": {tok}}, 200,
			map[string]string{"X-Gatehouse-Profile-Id": "prof-sales", "X-Gatehouse-Param-Id": "o-5", "X-Gatehouse-Jwt-Claims": "",
				"X-Gatehouse-Token-Id": checktest.TokenSales, "X-Envoy-Auth-Headers-To-Remove": "api-token, authorization"}, ""},
		{"nginx original headers", "GET", "/auth-request", map[string][]string{"API-TOKEN": {tok}, "X-Original-Method": {"POST"}, "X-Original-Uri": {"/sales/orders"}}, 200,
			map[string]string{"X-Gatehouse-Endpoint-Id": checktest.EndpointCreate}, ""},
		{"caddy forwarded headers", "GET", "/forward-auth", map[string][]string{"Api-Token": {tok}, "X-Forwarded-Method": {"GET"}, "X-Forwarded-Uri": {"/sales/orders/o-6"}}, 200,
			map[string]string{"X-Gatehouse-Param-Id": "o-6", "X-Gatehouse-Auth-Method": "api_token"}, ""},
		{"envoy mode ignores forwarded headers", "GET", "/check/hr/people", map[string][]string{"Api-Token": {tok}, "X-Forwarded-Uri": {"/sales/orders"}, "X-Original-Uri": {"/sales/orders"}}, 403,
			nil, "collection_not_allowed"},
		{"caddy mode ignores original headers", "GET", "/forward-auth", map[string][]string{"Api-Token": {tok}, "X-Forwarded-Method": {"GET"}, "X-Forwarded-Uri": {"/hr/people"}, "X-Original-Uri": {"/sales/orders"}}, 403,
			nil, "collection_not_allowed"},
		{"nginx mode ignores forwarded headers", "GET", "/auth-request", map[string][]string{"Api-Token": {tok}, "X-Original-Method": {"GET"}, "X-Original-Uri": {"/hr/people"}, "X-Forwarded-Uri": {"/sales/orders"}}, 403,
			nil, "collection_not_allowed"},
		{"forward auth without the original request", "GET", "/forward-auth/sales/orders", map[string][]string{"Api-Token": {tok}}, 404,
			nil, "endpoint_not_found"},
		{"two api-token headers", "GET", "/check/sales/orders", map[string][]string{"Api-Token": {tok, tok}}, 401,
			map[string]string{"Www-Authenticate": `API-Token realm="gatehouse"`, "Content-Type": "application/problem+json"}, "invalid_credentials"},
		{"missing credentials", "GET", "/check/sales/orders", nil, 401, nil, "missing_credentials"},
		{"nginx replay headers on refusal", "GET", "/auth-request", map[string][]string{"Api-Token": {e.fx.Secret(checktest.TokenHR)}, "X-Original-Method": {"GET"}, "X-Original-Uri": {"/sales/orders"}}, 403,
			map[string]string{"X-Gatehouse-Status": "403"}, "collection_not_allowed"},
		{"not found", "GET", "/check/nothing", nil, 404, map[string]string{"X-Gatehouse-Status": ""}, "endpoint_not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.url, nil)
			for k, vs := range tt.headers {
				for _, v := range vs {
					req.Header.Add(k, v) // canonicalizes, as net/http does for a real request
				}
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			for k, v := range tt.wantHeaders {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if tt.wantCode == "" {
				return
			}
			var p map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p["code"] != tt.wantCode {
				t.Errorf("body %s, want code %s", rec.Body, tt.wantCode)
			}
			if replay := rec.Header().Get(HeaderReplayProblem); replay != "" && replay != rec.Body.String() {
				t.Errorf("replayed problem %q differs from body %q", replay, rec.Body)
			}
		})
	}
}

func TestHTTPHealthReadyMetrics(t *testing.T) {
	e := newEnv(t, false, 0)
	srv := httptest.NewServer(NewHTTPHandler(e.cfg, e.reg))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	if code, _ := get("/readyz"); code != 503 {
		t.Errorf("/readyz before config = %d, want 503", code)
	}
	e.swap(t, e.fx.Config)
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz after config = %d, want 200", code)
	}
	get("/check/sales/orders")
	code, body := get("/metrics")
	if code != 200 || !strings.Contains(body, `gatehouse_authz_decisions_total{code="missing_credentials",result="deny"} 1`) ||
		!strings.Contains(body, `gatehouse_authz_decision_duration_seconds_count{api="http"} 1`) {
		t.Errorf("/metrics = %d:\n%s", code, body)
	}
}
