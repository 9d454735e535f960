package bootstrap

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// Main runs the "bootstrap" subcommand: it renders the bootstrap for the flags in args (the
// arguments after the subcommand name) to stdout or to -out, and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	d := Defaults()
	var cfg Config
	var out string
	fs := flag.NewFlagSet("bootstrap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.NodeID, "node-id", d.NodeID, "node id the gateway sends to the control plane")
	fs.StringVar(&cfg.Cluster, "cluster", d.Cluster, "node cluster")
	fs.StringVar(&cfg.ControlPlaneAddr, "xds-addr", d.ControlPlaneAddr, "control plane xDS host:port")
	fs.StringVar(&cfg.AuthzAddr, "authz-addr", d.AuthzAddr, "authz sidecar ext_authz gRPC host:port")
	fs.StringVar(&cfg.AdminAddr, "admin-addr", d.AdminAddr, "Envoy admin host:port (loopback only)")
	fs.StringVar(&cfg.XDSCAFile, "xds-ca-file", "", "PEM CAs (a path on the gateway) that sign the control plane's certificate; set, xDS and access logs use TLS (default: plaintext)")
	fs.StringVar(&cfg.XDSCertFile, "xds-cert-file", "", "gateway client certificate (path on the gateway) for a control plane that requires one (mutual TLS); with -xds-key-file")
	fs.StringVar(&cfg.XDSKeyFile, "xds-key-file", "", "private key (path on the gateway) of -xds-cert-file")
	fs.StringVar(&cfg.XDSServerName, "xds-server-name", "", "name sent as SNI and required in the control plane's certificate (default: the host of -xds-addr)")
	fs.StringVar(&out, "out", "", "file to write; stdout when empty")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: gatehouse-controlplane bootstrap [flags]\nRenders the Envoy bootstrap of a gateway.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bootstrap: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	y, err := Render(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "bootstrap: %v\n", err)
		return 1
	}
	if out == "" {
		if _, err := stdout.Write(y); err != nil {
			fmt.Fprintf(stderr, "bootstrap: %v\n", err)
			return 1
		}
		return 0
	}
	if err := os.WriteFile(out, y, 0o644); err != nil {
		fmt.Fprintf(stderr, "bootstrap: %v\n", err)
		return 1
	}
	return 0
}
