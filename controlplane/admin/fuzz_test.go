package admin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzRESTCreate sends arbitrary JSON bodies to every create route: each must answer 200 or a
// client error with a JSON status body, never panic or fail with a server error, and never
// return a secret other than a token create's own.
func FuzzRESTCreate(f *testing.F) {
	e := newEnv(f)
	fx := e.fixture("fuzz")
	routes := []string{
		"/v1/collections",
		"/v1/collections/" + fx.col.Id + "/endpoints",
		"/v1/clients",
		"/v1/clients/" + fx.cli.Id + "/access-profiles",
		"/v1/clients/" + fx.cli.Id + "/access-profiles/" + fx.prf.Id + "/tokens",
		"/v1/policies",
	}
	seeds := []string{
		`{"name":"c","version":"v1","path":"c"}`,
		`{"name":"e","method":"GET","path":"/a/{b}","recipe_id":"r","timeout":"5s","active":true}`,
		`{"name":"cl","email":"a@b.example","active":false}`,
		`{"name":"p","api_token":{},"ip_allow":["10.0.0.0/8"]}`,
		`{"name":"j","jwt":{"hmac_secret":"0123456789abcdef0123456789abcdef","claim":"sub","algorithms":["HS256"]}}`,
		`{"name":"t","expire_time":"2999-01-01T00:00:00Z"}`,
		`{"name":"pol","rate_limit":{"requests":5,"per":"second"},"quota":{"requests":9,"per":"day"}}`,
		`{"name":"x","unknown":1}`, `[]`, `null`, `{"name":` + strings.Repeat("[", 100),
	}
	for i := range routes {
		for _, s := range seeds {
			f.Add(uint8(i), s)
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		path := routes[int(route)%len(routes)]
		req := httptest.NewRequest("POST", path, bytes.NewBufferString(body))
		req.Header.Set("Authorization", "Bearer "+e.token)
		rec := httptest.NewRecorder()
		e.handler.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusNotFound, http.StatusConflict:
		default:
			t.Fatalf("POST %s %q: %d %s", path, body, rec.Code, rec.Body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("POST %s %q: body is not JSON: %s", path, body, rec.Body)
		}
		if rec.Code == http.StatusOK && (strings.Contains(rec.Body.String(), `"hmac_secret"`) || strings.Contains(rec.Body.String(), `"secret_sha256"`)) {
			t.Fatalf("POST %s %q: response shows a secret: %s", path, body, rec.Body)
		}
	})
}
