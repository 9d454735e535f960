package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// loadTLS returns the TLS configuration of the admin servers, or nil to serve plaintext.
func loadTLS(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("TLS needs both --tls-cert-file and --tls-key-file")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// loadXDSTLS returns the TLS configuration of the xDS and access-log server, or nil to serve
// plaintext. With clientCAFile, a client must present a certificate signed by one of its CAs
// before it can read a byte of config: xDS carries token hashes and JWT HMAC secrets.
func loadXDSTLS(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		if clientCAFile != "" {
			return nil, errors.New("--xds-client-ca-file needs --xds-tls-cert-file and --xds-tls-key-file: client certificates are only asked for over TLS")
		}
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("xDS TLS needs both --xds-tls-cert-file and --xds-tls-key-file")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load xDS TLS certificate: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCAFile != "" {
		pem, err := os.ReadFile(clientCAFile)
		if err != nil {
			return nil, fmt.Errorf("read xDS client CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("xDS client CA file %s holds no PEM certificate", clientCAFile)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// xdsSecurity names how the xDS port is protected, for the banner.
func xdsSecurity(cfg Config) string {
	switch {
	case cfg.XDSTLSCertFile == "":
		return "plaintext"
	case cfg.XDSClientCAFile == "":
		return "TLS"
	default:
		return "mutual TLS"
	}
}
