package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
)

// maxBody bounds how much of a request body is echoed back.
const maxBody = 1 << 20

// Call is what the runtime received for one recipe call, as it answers it.
type Call struct {
	RecipeID string            `json:"recipe_id"`
	Method   string            `json:"method"`
	Path     string            `json:"path"`
	Query    string            `json:"query,omitempty"`
	Gateway  map[string]string `json:"gatehouse"`
	Params   map[string]string `json:"path_params,omitempty"`
	Claims   json.RawMessage   `json:"jwt_claims,omitempty"`
	// Credentials lists credential headers that reached the runtime; Envoy and the authz
	// remove them, so it is empty on a correct deployment.
	Credentials []string `json:"credentials_seen,omitempty"`
	RequestID   string   `json:"request_id,omitempty"`
	Body        string   `json:"body,omitempty"`
}

func newHandler(log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/recipes/{recipe_id}", func(w http.ResponseWriter, r *http.Request) {
		call, err := describe(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		log.Info("recipe call", "recipe_id", call.RecipeID, "client_id", call.Gateway["client-id"], "request_id", call.RequestID)
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(call)
	})
	return mux
}

func describe(r *http.Request) (Call, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return Call{}, err
	}
	c := Call{
		RecipeID:  r.PathValue("recipe_id"),
		Method:    r.Method,
		Path:      r.URL.Path,
		Query:     r.URL.RawQuery,
		Gateway:   map[string]string{},
		RequestID: r.Header.Get("X-Request-Id"),
		Body:      string(body),
	}
	for name, values := range r.Header {
		lower := strings.ToLower(name)
		switch {
		case lower == "api-token" || lower == "authorization":
			c.Credentials = append(c.Credentials, lower)
		case lower == "x-gatehouse-jwt-claims":
			if raw, err := base64.RawURLEncoding.DecodeString(values[0]); err == nil && json.Valid(raw) {
				c.Claims = raw
			}
		case strings.HasPrefix(lower, "x-gatehouse-param-"):
			if c.Params == nil {
				c.Params = map[string]string{}
			}
			c.Params[strings.TrimPrefix(lower, "x-gatehouse-param-")] = values[0]
		case strings.HasPrefix(lower, "x-gatehouse-"):
			c.Gateway[strings.TrimPrefix(lower, "x-gatehouse-")] = values[0]
		}
	}
	sort.Strings(c.Credentials)
	return c, nil
}
