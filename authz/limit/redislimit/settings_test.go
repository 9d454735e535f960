package redislimit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/authz/limit"
	"gatehouse/authz/limit/redistest"
)

func TestSettingsNewClient(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "password")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GATEHOUSE_TEST_REDIS_PASSWORD", "s3cret")
	tests := []struct {
		name    string
		s       Settings
		wantErr string // empty: a client of type want
		want    string
	}{
		{"single", Settings{Addrs: []string{"127.0.0.1:6379"}}, "", "*redis.Client"},
		{"cluster seeds", Settings{Addrs: []string{"a:6379", "b:6379"}}, "", "*redis.ClusterClient"},
		{"cluster endpoint", Settings{Addrs: []string{"a:6379"}, Cluster: true}, "", "*redis.ClusterClient"},
		{"sentinel", Settings{Addrs: []string{"a:26379", "b:26379"}, MasterName: "mymaster"}, "", "*redis.Client"},
		{"tls", Settings{Addrs: []string{"a:6379"}, TLS: true}, "", "*redis.Client"},
		{"no address", Settings{}, "no address", ""},
		{"bad fail mode", Settings{Addrs: []string{"a:1"}, FailMode: "maybe"}, "unknown fail mode", ""},
		{"cluster with a database", Settings{Addrs: []string{"a:1", "b:1"}, DB: 2}, "only database 0", ""},
		{"missing password file", Settings{Addrs: []string{"a:1"}, PasswordFile: filepath.Join(dir, "nope")}, "read password file", ""},
		{"unset password variable", Settings{Addrs: []string{"a:1"}, PasswordEnv: "GATEHOUSE_TEST_UNSET"}, "GATEHOUSE_TEST_UNSET is not set", ""},
		{"CA without TLS", Settings{Addrs: []string{"a:1"}, CAFile: pwFile}, "TLS is off", ""},
		{"CA file without certificates", Settings{Addrs: []string{"a:1"}, TLS: true, CAFile: pwFile}, "no certificate", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.s.NewClient()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error reveals the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := typeName(c); got != tc.want {
				t.Errorf("client type %s, want %s", got, tc.want)
			}
		})
	}
}

func typeName(c redis.UniversalClient) string {
	switch c.(type) {
	case *redis.Client:
		return "*redis.Client"
	case *redis.ClusterClient:
		return "*redis.ClusterClient"
	}
	return "other"
}

// TestOpenAuthenticates opens the limiter from Settings against a real
// Redis that requires an ACL user's password, read from a file or the
// environment.
func TestOpenAuthenticates(t *testing.T) {
	srv := redistest.Start(t, "--user", "authz", "on", ">s3cret", "~*", "+@all", "--user", "default", "off")
	pwFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GATEHOUSE_TEST_REDIS_PASSWORD", "s3cret")
	p := limit.Policy{ID: "p", Quota: &limit.Quota{Requests: 1, Window: limit.Day}}
	tests := []struct {
		name      string
		s         Settings
		available bool
	}{
		{"password file", Settings{Username: "authz", PasswordFile: pwFile}, true},
		{"password env", Settings{Username: "authz", PasswordEnv: "GATEHOUSE_TEST_REDIS_PASSWORD"}, true},
		{"no password falls back", Settings{Username: "authz", FailMode: FailClosed}, false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.s.Addrs = []string{srv.Addr}
			tc.s.Deadline = time.Second
			l, err := Open(t.Context(), tc.s, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := l.Close(); err != nil {
					t.Error(err)
				}
			}()
			key := limit.Key{Profile: string(rune('a' + i)), Policy: "p"}
			d, err := l.Allow(t.Context(), key, p, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if l.Unavailable() == tc.available {
				t.Fatalf("unavailable = %v, want %v (decision %+v)", l.Unavailable(), !tc.available, d)
			}
			if tc.available && !d.Allowed {
				t.Errorf("first call refused: %+v", d)
			}
			if !tc.available && d.Code != limit.LimiterUnavailable {
				t.Errorf("decision %v, want limiter_unavailable", d.Code)
			}
		})
	}
}
