// Command gatehouse-controlplane runs the Gatehouse control plane: the admin API (REST/JSON and
// gRPC) over the configuration store, and the xDS server that ships the compiled config to the
// gateways and their authz sidecars.
//
//	gatehouse-controlplane [serve] [flags]   run the control plane (default)
//	gatehouse-controlplane admin-token       print a new admin token for GATEHOUSE_ADMIN_TOKEN
//	gatehouse-controlplane bootstrap [flags] render the Envoy bootstrap of a gateway
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"gatehouse/controlplane/admin"
	"gatehouse/controlplane/bootstrap"
	"gatehouse/controlplane/compile"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse-controlplane:", err)
		os.Exit(1)
	}
}

// run parses the command line and environment into a Config and runs the command.
func run(args []string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "admin-token":
		tok, err := admin.NewAdminToken()
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, tok)
		return nil
	case "bootstrap":
		if code := bootstrap.Main(args, stdout, stderr); code != 0 {
			return fmt.Errorf("bootstrap failed (exit code %d)", code)
		}
		return nil
	case "serve":
	default:
		return fmt.Errorf("unknown command %q: use serve (default), admin-token or bootstrap", cmd)
	}
	cfg, level, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg.Out = stdout
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return Run(ctx, cfg)
}

// parseFlags reads the serve flags and the environment.
func parseFlags(args []string, stderr io.Writer) (Config, slog.Level, error) {
	fs := flag.NewFlagSet("gatehouse-controlplane serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := Config{}
	fs.StringVar(&cfg.DataDir, "data-dir", ".data", "directory of the store file ("+storeFile+"); created if missing")
	fs.StringVar(&cfg.AdminHTTPAddr, "admin-http-addr", ":9080", "address of the admin REST API, /openapi.json, /healthz, /readyz, /metrics and the dashboard (/dashboard/)")
	fs.StringVar(&cfg.AdminGRPCAddr, "admin-grpc-addr", ":9090", "address of the admin gRPC API")
	fs.StringVar(&cfg.XDSAddr, "xds-addr", ":18000", "address of the xDS (ADS) server for gateways and authz sidecars, and of the access-log service")
	runtimeAddrs := fs.String("runtime-addr", compile.DefaultRuntimeAddress, "recipe runtime host:port addresses, comma-separated; IPs are sent over EDS, a host name makes a DNS cluster")
	fs.StringVar(&cfg.Compile.RuntimePathPrefix, "runtime-path-prefix", "", `path before "/recipes/{recipe id}" in what the runtime receives, e.g. "/api"`)
	listenerPort := fs.Uint("listener-port", compile.DefaultListenerPort, "port of the gateways' public listener")
	fs.DurationVar(&cfg.Compile.AuthzTimeout, "authz-timeout", compile.DefaultAuthzTimeout, "how long a gateway waits for its authz sidecar before failing closed (503)")
	fs.StringVar(&cfg.TLSCertFile, "tls-cert-file", "", "PEM certificate (chain) to serve both admin APIs over TLS; with --tls-key-file")
	fs.StringVar(&cfg.TLSKeyFile, "tls-key-file", "", "PEM private key of --tls-cert-file")
	fs.StringVar(&cfg.XDSTLSCertFile, "xds-tls-cert-file", "", "PEM certificate (chain) to serve xDS and the access-log service over TLS; with --xds-tls-key-file (default: plaintext)")
	fs.StringVar(&cfg.XDSTLSKeyFile, "xds-tls-key-file", "", "PEM private key of --xds-tls-cert-file")
	fs.StringVar(&cfg.XDSClientCAFile, "xds-client-ca-file", "", "PEM CAs that sign gateway and sidecar client certificates; set, xDS requires and verifies them (mutual TLS)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return Config{}, 0, err
	}
	if fs.NArg() > 0 {
		return Config{}, 0, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, a := range strings.Split(*runtimeAddrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			cfg.Compile.RuntimeAddresses = append(cfg.Compile.RuntimeAddresses, a)
		}
	}
	if *listenerPort == 0 || *listenerPort > 65535 {
		return Config{}, 0, fmt.Errorf("--listener-port %d: must be 1 to 65535", *listenerPort)
	}
	cfg.Compile.ListenerPort = uint32(*listenerPort)
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return Config{}, 0, errors.New("--log-level must be debug, info, warn or error")
	}
	cfg.AdminToken = os.Getenv(admin.EnvAdminToken)
	return cfg, level, nil
}
