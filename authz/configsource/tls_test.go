package configsource

import (
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"gatehouse/controlplane/xds/xdstest"
)

// logRecorder keeps the messages and errors logged at warn and above.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) Enabled(_ context.Context, lvl slog.Level) bool { return lvl >= slog.LevelWarn }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler             { return l }
func (l *logRecorder) WithGroup(string) slog.Handler                  { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += " " + a.Key + "=" + a.Value.String()
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	return nil
}

func (l *logRecorder) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

func TestMutualTLS(t *testing.T) {
	ca := xdstest.NewCA(t, "gatehouse test CA")
	server := ca.Issue(t, "controlplane", xdstest.Server("127.0.0.1"))
	client := ca.Issue(t, "authz-sidecar", xdstest.Client())
	cp := startControlPlane(t, grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{server.Cert},
		ClientCAs:    ca.Pool(),
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	})))
	cp.set(baseConfig())

	tests := []struct {
		name    string
		tls     *TLSConfig
		wantLog string // empty: the config arrives
	}{
		{name: "client certificate", tls: &TLSConfig{CAFile: ca.CertFile(), CertFile: client.CertFile, KeyFile: client.KeyFile}},
		{name: "no client certificate", tls: &TLSConfig{CAFile: ca.CertFile()}, wantLog: "certificate required"},
		{name: "unknown server CA", tls: &TLSConfig{CertFile: client.CertFile, KeyFile: client.KeyFile},
			wantLog: "certificate signed by unknown authority"},
		{name: "plaintext", wantLog: "config stream ended"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &logRecorder{}
			app := &applier{}
			c := startClientConfig(t, Config{Addr: cp.addr, TLS: tt.tls, Logger: slog.New(logs)}, app)
			if tt.wantLog == "" {
				eventually(t, "config over mutual TLS", func() bool { _, cur := app.snapshot(); return cur != nil })
				return
			}
			eventually(t, "a log naming "+tt.wantLog, func() bool { return logs.contains(tt.wantLog) })
			c.stop()
			if calls, _ := app.snapshot(); len(calls) != 0 {
				t.Errorf("Apply called %d times without a trusted connection", len(calls))
			}
		})
	}
}
