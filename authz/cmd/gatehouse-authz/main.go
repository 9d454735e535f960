// Command gatehouse-authz is the ext_authz sidecar that Envoy asks about every request.
// Flags are listed by -help; each also reads GATEHOUSE_AUTHZ_<FLAG> from the environment.
// SIGTERM or SIGINT stops it gracefully; SIGHUP rereads --config-file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"gatehouse/authz/sidecar"
)

func main() {
	cfg, level, err := sidecar.ParseFlags(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse-authz:", err)
		os.Exit(2)
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGHUP rereads --config-file.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{})
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()
	cfg.Reload = reload
	if err := sidecar.Run(ctx, cfg); err != nil {
		cfg.Logger.Error("gatehouse-authz failed", "err", err)
		os.Exit(1)
	}
}
