package configsource

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// TLSConfig secures the connection to the control plane.
type TLSConfig struct {
	// CAFile is a PEM bundle of the CAs that sign the control plane's
	// certificate. Empty uses the system roots.
	CAFile string
	// CertFile and KeyFile are this sidecar's client certificate and key for
	// mutual TLS; both or neither.
	CertFile, KeyFile string
	// ServerName overrides the name checked in the control plane's
	// certificate. Default: the host of Addr.
	ServerName string
}

// maxRecvMsgSize lets the first response of a type carry every resource of
// it: 100,000 endpoints are far more than gRPC's default 4 MiB.
const maxRecvMsgSize = 256 << 20

func dialOptions(cfg Config) ([]grpc.DialOption, error) {
	creds := insecure.NewCredentials()
	if cfg.TLS != nil {
		tc, err := cfg.TLS.load()
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(tc)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvMsgSize)),
		// Finds a control plane that vanished without closing the stream. Five
		// minutes is the shortest interval a gRPC server accepts by default.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 5 * time.Minute, Timeout: 20 * time.Second}),
	}
	return append(opts, cfg.DialOptions...), nil
}

func (t *TLSConfig) load() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New("TLS client certificate and key must be given together")
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
