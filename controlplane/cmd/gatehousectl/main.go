// Command gatehousectl manages a Gatehouse control plane through its admin gRPC API: get,
// create and delete resources, apply and export declarative YAML, issue API tokens, and show
// which gateways are connected and what config they accepted (status).
// See package gatehouse/controlplane/ctl for the YAML format.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"gatehouse/controlplane/ctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := ctl.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
