package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEchoesTheRuntimeContract(t *testing.T) {
	srv := httptest.NewServer(newHandler(slog.New(slog.DiscardHandler)))
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/recipes/rcp_1?limit=5", strings.NewReader(`{"a":1}`))
	req.Header.Set("X-Gatehouse-Client-Id", "cli_1")
	req.Header.Set("X-Gatehouse-Recipe-Id", "rcp_1")
	req.Header.Set("X-Gatehouse-Param-Id", "42")
	req.Header.Set("X-Gatehouse-Jwt-Claims", base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"p"}`)))
	req.Header.Set("Api-Token", "leaked")
	req.Header.Set("X-Request-Id", "req-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got Call
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, got.Claims); err != nil {
		t.Fatal(err)
	}
	got.Claims = compact.Bytes()
	want := Call{
		RecipeID: "rcp_1", Method: "POST", Path: "/recipes/rcp_1", Query: "limit=5",
		Gateway:     map[string]string{"client-id": "cli_1", "recipe-id": "rcp_1"},
		Params:      map[string]string{"id": "42"},
		Claims:      json.RawMessage(`{"sub":"p"}`),
		Credentials: []string{"api-token"},
		RequestID:   "req-1",
		Body:        `{"a":1}`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("echo (-want +got):\n%s", diff)
	}
}

func TestOnlyRecipePathsAreServed(t *testing.T) {
	srv := httptest.NewServer(newHandler(slog.New(slog.DiscardHandler)))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /other = %d, want 404", resp.StatusCode)
	}
}
