package ctl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

const defaultAddr = "localhost:9090"

// connConfig is how to reach the admin API.
type connConfig struct {
	// Addr is host:port of the admin gRPC server.
	Addr string
	// Token is the admin token sent as "authorization: Bearer".
	Token string
	// Insecure forces plaintext; TLS forces TLS. With neither, loopback addresses use
	// plaintext and others TLS, so a token never crosses a network unencrypted by default.
	Insecure, TLS bool
	// CAFile verifies the server with these CAs instead of the system's (implies TLS).
	CAFile string
	// Timeout bounds each call, so an unresponsive server fails the command instead of
	// hanging it; zero means no bound.
	Timeout time.Duration
}

func (c connConfig) useTLS() (bool, error) {
	want := c.TLS || c.CAFile != ""
	if want && c.Insecure {
		return false, usagef("--insecure cannot be combined with --tls or --ca-file")
	}
	if want || c.Insecure {
		return want, nil
	}
	return !isLoopback(c.Addr), nil
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c connConfig) dial() (*grpc.ClientConn, error) {
	secure, err := c.useTLS()
	if err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if secure {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return nil, fmt.Errorf("read CA file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("CA file %s holds no PEM certificate", c.CAFile)
			}
			cfg.RootCAs = pool
		}
		creds = credentials.NewTLS(cfg)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if d := c.Timeout; d > 0 {
		opts = append(opts, grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return invoker(ctx, method, req, reply, cc, opts...)
		}))
	}
	if c.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(c.Token)))
	}
	cc, err := grpc.NewClient(c.Addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", c.Addr, err)
	}
	return cc, nil
}

// bearer sends the admin token with every call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false because plaintext is allowed on loopback; connConfig
// decides when TLS is needed.
func (b bearer) RequireTransportSecurity() bool { return false }

// printError prints an error with the server's message and one line per field violation, so
// an operator sees which field of which resource to fix.
func printError(w io.Writer, err error, token string) {
	redact := func(s string) string {
		if token == "" {
			return s
		}
		return strings.ReplaceAll(s, token, "[redacted]")
	}
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) {
		fmt.Fprintf(w, "error: %s\n", redact(err.Error()))
		return
	}
	st := se.GRPCStatus()
	msg := err.Error()
	if e, ok := se.(error); ok && strings.Contains(msg, e.Error()) {
		msg = strings.Replace(msg, e.Error(), summary(st), 1)
	}
	fmt.Fprintf(w, "error: %s (%s)\n", redact(msg), st.Code())
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				fmt.Fprintf(w, "  %s: %s\n", v.GetField(), redact(v.GetDescription()))
			}
		case *errdetails.PreconditionFailure:
			for _, v := range d.GetViolations() {
				fmt.Fprintf(w, "  %s %s: %s\n", v.GetType(), v.GetSubject(), redact(v.GetDescription()))
			}
		case *errdetails.ResourceInfo:
			fmt.Fprintf(w, "  %s %s: %s\n", d.GetResourceType(), d.GetResourceName(), redact(d.GetDescription()))
		}
	}
}

// summary is the status message without the field violations it repeats, since those are
// printed one per line below it.
func summary(st *status.Status) string {
	msg := st.Message()
	for _, d := range st.Details() {
		br, ok := d.(*errdetails.BadRequest)
		if !ok || len(br.GetFieldViolations()) == 0 {
			continue
		}
		fv := br.GetFieldViolations()[0]
		if i := strings.Index(msg, fv.GetField()+": "+fv.GetDescription()); i > 0 {
			return strings.TrimRight(msg[:i], ":;, ")
		}
	}
	return msg
}
