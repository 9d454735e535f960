package e2e

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"text/template"
	"time"
)

// nginxConfig is what the nginx in front of the test platform needs to know.
type nginxConfig struct {
	// Listen is the public address callers use.
	Listen string
	// Authz is the authz sidecar's HTTP check address.
	Authz string
	// Runtime is the recipe runtime's address.
	Runtime string
	// Dir holds nginx's pid, logs and temporary files.
	Dir string
	// Root is set when the test runs as root: nginx then needs a user for its workers, and
	// the test's private directories are only open to root.
	Root bool
}

// nginxTemplate puts nginx in front of the recipe runtime the way an operator without Envoy
// would: every request first asks the authz (auth_request) and then goes to
// /recipes/{recipe id} on the runtime with the x-gatehouse-* headers of the decision.
//
// auth_request passes only 2xx, 401 and 403 from the check; anything else becomes a 500. The
// /auth-request check therefore also returns the status and the problem+json body of a refusal
// in X-Gatehouse-Status and X-Gatehouse-Problem, which @gatehouse_refused replays. When the
// authz cannot be reached there is no status to replay: the request fails closed with 503.
const nginxTemplate = `
{{if .Root}}user root root;{{end}}
worker_processes 1;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
events { worker_connections 256; }

http {
  access_log {{.Dir}}/access.log;
  client_body_temp_path {{.Dir}}/tmp/client_body;
  proxy_temp_path {{.Dir}}/tmp/proxy;
  fastcgi_temp_path {{.Dir}}/tmp/fastcgi;
  uwsgi_temp_path {{.Dir}}/tmp/uwsgi;
  scgi_temp_path {{.Dir}}/tmp/scgi;

  upstream gatehouse_authz { server {{.Authz}}; keepalive 16; }
  upstream gatehouse_runtime { server {{.Runtime}}; keepalive 16; }

  server {
    listen {{.Listen}};

    location / {
      auth_request /_gatehouse/auth;

      # What the decision says about the call.
      auth_request_set $gh_client_id $upstream_http_x_gatehouse_client_id;
      auth_request_set $gh_profile_id $upstream_http_x_gatehouse_profile_id;
      auth_request_set $gh_auth_method $upstream_http_x_gatehouse_auth_method;
      auth_request_set $gh_token_id $upstream_http_x_gatehouse_token_id;
      auth_request_set $gh_endpoint_id $upstream_http_x_gatehouse_endpoint_id;
      auth_request_set $gh_collection_id $upstream_http_x_gatehouse_collection_id;
      auth_request_set $gh_recipe_id $upstream_http_x_gatehouse_recipe_id;
      auth_request_set $gh_jwt_claims $upstream_http_x_gatehouse_jwt_claims;
      # One line per path parameter name the endpoints use.
      auth_request_set $gh_param_id $upstream_http_x_gatehouse_param_id;
      # What a refusal needs.
      auth_request_set $gh_status $upstream_http_x_gatehouse_status;
      auth_request_set $gh_problem $upstream_http_x_gatehouse_problem;
      auth_request_set $gh_retry_after $upstream_http_retry_after;
      auth_request_set $gh_ratelimit $upstream_http_ratelimit;
      auth_request_set $gh_ratelimit_policy $upstream_http_ratelimit_policy;
      error_page 401 403 500 = @gatehouse_refused;

      # proxy_set_header replaces a header of the same name the caller sent, and an empty
      # value drops it: callers cannot spoof these, and credentials stay here.
      proxy_set_header X-Gatehouse-Client-Id $gh_client_id;
      proxy_set_header X-Gatehouse-Profile-Id $gh_profile_id;
      proxy_set_header X-Gatehouse-Auth-Method $gh_auth_method;
      proxy_set_header X-Gatehouse-Token-Id $gh_token_id;
      proxy_set_header X-Gatehouse-Endpoint-Id $gh_endpoint_id;
      proxy_set_header X-Gatehouse-Collection-Id $gh_collection_id;
      proxy_set_header X-Gatehouse-Recipe-Id $gh_recipe_id;
      proxy_set_header X-Gatehouse-Jwt-Claims $gh_jwt_claims;
      proxy_set_header X-Gatehouse-Param-Id $gh_param_id;
      proxy_set_header Api-Token "";
      proxy_set_header Authorization "";
      proxy_set_header X-Request-Id $request_id;
      proxy_set_header Connection "";
      proxy_http_version 1.1;
      proxy_pass http://gatehouse_runtime/recipes/$gh_recipe_id$is_args$args;
    }

    location = /_gatehouse/auth {
      internal;
      proxy_pass http://gatehouse_authz/auth-request;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Original-Uri $request_uri;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Request-Id $request_id;
      proxy_set_header Connection "";
      proxy_http_version 1.1;
    }

    location @gatehouse_refused {
      types { }
      default_type application/problem+json;
      add_header X-Request-Id $request_id always;
      add_header Retry-After $gh_retry_after always;
      add_header RateLimit $gh_ratelimit always;
      add_header RateLimit-Policy $gh_ratelimit_policy always;
      if ($gh_status = 401) { return 401 $gh_problem; }
      if ($gh_status = 403) { return 403 $gh_problem; }
      if ($gh_status = 404) { return 404 $gh_problem; }
      if ($gh_status = 429) { return 429 $gh_problem; }
      if ($gh_status = 503) { return 503 $gh_problem; }
      return 503 '{"type":"https://gatehouse.dev/problems/authz_unavailable","title":"Authorization unavailable","status":503,"code":"authz_unavailable","request_id":"$request_id"}';
    }
  }
}
`

// startNginx writes the configuration into dir and runs nginx in the foreground.
func startNginx(t *testing.T, bin, logDir, dir string, cfg nginxConfig) *proc {
	t.Helper()
	cfg.Dir, cfg.Root = dir, os.Geteuid() == 0
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	var conf bytes.Buffer
	if err := template.Must(template.New("nginx").Parse(nginxTemplate)).Execute(&conf, cfg); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(file, conf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, logDir, "nginx", bin, nil,
		"-p", dir, "-c", file, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("--- nginx error.log ---\n%s", tail(b, 40))
		}
	})
	waitListening(t, p, cfg.Listen)
	return p
}

// waitListening waits until addr accepts connections.
func waitListening(t *testing.T, p *proc, addr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if ended, err := p.exited(); ended {
			b, _ := os.ReadFile(p.log)
			t.Fatalf("%s exited before it listened (%v):\n%s", p.name, err, tail(b, 40))
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %s: %v", p.name, addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// request is one call a caller makes through nginx.
type request struct {
	method string
	path   string
	// apiToken is sent in the API-Token header; basic as the password of user api-token.
	apiToken, basic string
	header          http.Header
	// from is the local address the caller connects from; default 127.0.0.1.
	from string
}

// answer is what the caller got back.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// call sends r to nginx from r.from.
func (p *platform) call(t *testing.T, r request) answer {
	t.Helper()
	from := r.from
	if from == "" {
		from = "127.0.0.1"
	}
	method := r.method
	if method == "" {
		method = http.MethodGet
	}
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true},
	}
	req, err := http.NewRequest(method, "http://"+p.nginxAddr+r.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range r.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if r.apiToken != "" {
		req.Header.Set("API-Token", r.apiToken)
	}
	if r.basic != "" {
		req.SetBasicAuth("api-token", r.basic)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, r.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, r.path, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: body}
}

// pids names the process id of every server, to tell that none was restarted.
func (p *platform) pids() map[string]int {
	out := map[string]int{}
	for _, pr := range []*proc{p.cp, p.authz, p.runtime, p.nginx} {
		pr.mu.Lock()
		if pr.cmd != nil && pr.cmd.Process != nil {
			out[pr.name] = pr.cmd.Process.Pid
		}
		pr.mu.Unlock()
	}
	return out
}
