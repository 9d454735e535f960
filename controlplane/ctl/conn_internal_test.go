package ctl

import "testing"

func TestUseTLS(t *testing.T) {
	tests := []struct {
		name    string
		conn    connConfig
		want    bool
		wantErr bool
	}{
		{name: "localhost is plaintext", conn: connConfig{Addr: "localhost:9090"}},
		{name: "IPv4 loopback is plaintext", conn: connConfig{Addr: "127.0.0.1:9090"}},
		{name: "IPv6 loopback is plaintext", conn: connConfig{Addr: "[::1]:9090"}},
		{name: "a remote host is TLS, so the token is never sent in clear", conn: connConfig{Addr: "cp.example.com:9090"}, want: true},
		{name: "a remote address is TLS", conn: connConfig{Addr: "10.0.0.7:9090"}, want: true},
		{name: "insecure forces plaintext", conn: connConfig{Addr: "cp.example.com:9090", Insecure: true}},
		{name: "tls forces TLS on loopback", conn: connConfig{Addr: "localhost:9090", TLS: true}, want: true},
		{name: "a CA file implies TLS", conn: connConfig{Addr: "localhost:9090", CAFile: "ca.pem"}, want: true},
		{name: "insecure and tls conflict", conn: connConfig{Addr: "localhost:9090", TLS: true, Insecure: true}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.conn.useTLS()
			if (err != nil) != tt.wantErr {
				t.Fatalf("useTLS() error = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("useTLS() = %v, want %v", got, tt.want)
			}
		})
	}
}
