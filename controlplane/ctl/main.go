package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

const usage = `gatehousectl manages a Gatehouse control plane through its admin API.

Usage:
  gatehousectl [global flags] <command> [flags] [args]

Commands:
  get <kind> [id|name]        list resources, or show one (-o table|yaml|json)
  create <kind> -f FILE|flags create one resource
  delete <kind> <id|name>     delete one resource (--force deletes its children too)
  apply -f FILE|-             make the control plane match a YAML file (--dry-run, --prune)
  export                      print the configuration as a YAML file apply accepts
  tokens create|rotate|revoke issue, rotate or revoke API tokens (the secret is printed once)
  status                      connected gateways and sidecars: acked versions, last NACK
                              (-o table|yaml|json)
  calls summary               counts, p50/p99 and top endpoints and clients of the
                              calls of the last --window (default 1h)

Kinds: collections, endpoints (--collection), clients, profiles (--client),
       tokens (--client, --profile), policies, audit-events,
       calls (--client, --profile, --collection, --endpoint, --since 1h, --limit N)

Global flags (also accepted after the command):
  --addr ADDR              admin gRPC address (env GATEHOUSE_ADDR, default localhost:9090)
  --token TOKEN            admin token (env GATEHOUSE_ADMIN_TOKEN)
  --insecure               plaintext; the default for loopback addresses
  --tls                    TLS; the default for other addresses
  --ca-file FILE           CA bundle to verify the server (implies --tls)
  --request-timeout 30s    bound on each call to the server (0 for none)
`

// usageError is a mistake in the command line: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// cli is one invocation: its streams, environment and connection settings.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	readFile       func(string) ([]byte, error)
	conn           connConfig
}

// Main runs gatehousectl with args (without the program name) and returns the exit code: 0 on
// success, 1 when a call or the input fails, 2 for a usage error.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv, readFile: os.ReadFile}
	err := c.run(ctx, args)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "gatehousectl: %s\nRun 'gatehousectl --help' for usage.\n", c.redact(ue.msg))
		return 2
	}
	printError(stderr, err, c.conn.Token)
	return 1
}

func (c *cli) run(ctx context.Context, args []string) error {
	c.conn = connConfig{Addr: c.getenv("GATEHOUSE_ADDR"), Token: c.getenv("GATEHOUSE_ADMIN_TOKEN"), Timeout: 30 * time.Second}
	if c.conn.Addr == "" {
		c.conn.Addr = defaultAddr
	}
	fs := c.flags("gatehousectl")
	if err := fs.Parse(args); err != nil {
		return c.flagErr(nil, err)
	}
	if fs.NArg() == 0 {
		fmt.Fprint(c.stderr, usage)
		return usageError{"no command given"}
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	switch cmd {
	case "get":
		return c.get(ctx, rest)
	case "create":
		return c.create(ctx, rest)
	case "delete":
		return c.delete(ctx, rest)
	case "apply":
		return c.apply(ctx, rest)
	case "export":
		return c.export(ctx, rest)
	case "tokens", "token":
		return c.tokensCmd(ctx, rest)
	case "status":
		return c.status(ctx, rest)
	case "calls":
		return c.callsCmd(ctx, rest)
	case "help":
		fmt.Fprint(c.stdout, usage)
		return nil
	}
	return usagef("unknown command %q", cmd)
}

// flags returns a flag set with the global flags, so they can follow the command too.
func (c *cli) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.conn.Addr, "addr", c.conn.Addr, "admin gRPC address")
	fs.Var(secretFlag{&c.conn.Token}, "token", "admin token (default $GATEHOUSE_ADMIN_TOKEN)")
	fs.BoolVar(&c.conn.Insecure, "insecure", c.conn.Insecure, "plaintext connection")
	fs.BoolVar(&c.conn.TLS, "tls", c.conn.TLS, "TLS connection")
	fs.StringVar(&c.conn.CAFile, "ca-file", c.conn.CAFile, "CA bundle (PEM)")
	fs.DurationVar(&c.conn.Timeout, "request-timeout", c.conn.Timeout, "bound on each call")
	return fs
}

// secretFlag is a string flag whose value never appears in help output.
type secretFlag struct{ p *string }

func (s secretFlag) String() string { return "" }

func (s secretFlag) Set(v string) error {
	*s.p = v
	return nil
}

// parse parses flags and positional arguments in any order and checks the count of positionals.
func (c *cli) parse(fs *flag.FlagSet, args []string, minArgs, maxArgs int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, c.flagErr(fs, err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) < minArgs || len(pos) > maxArgs {
		if minArgs == maxArgs {
			return nil, usagef("%s: want %d argument(s), got %d", fs.Name(), minArgs, len(pos))
		}
		return nil, usagef("%s: want %d to %d arguments, got %d", fs.Name(), minArgs, maxArgs, len(pos))
	}
	return pos, nil
}

// flagErr turns a flag error into a usage error; -h prints the usage of the command fs (the
// whole program's for nil) and is no error.
func (c *cli) flagErr(fs *flag.FlagSet, err error) error {
	if !errors.Is(err, flag.ErrHelp) {
		return usageError{err.Error()}
	}
	if fs == nil {
		fmt.Fprint(c.stdout, usage)
		return err
	}
	fmt.Fprintf(c.stdout, "Usage of gatehousectl %s:\n", fs.Name())
	fs.SetOutput(c.stdout)
	fs.PrintDefaults()
	return err
}

// redact removes the admin token from text that is about to be printed.
func (c *cli) redact(s string) string {
	if c.conn.Token == "" {
		return s
	}
	return strings.ReplaceAll(s, c.conn.Token, "[redacted]")
}

// dial connects to the admin API.
func (c *cli) dial() (*api, func(), error) {
	cc, err := c.conn.dial()
	if err != nil {
		return nil, nil, err
	}
	return newAPI(cc), func() { _ = cc.Close() }, nil
}

// readInput reads a file named by -f; "-" is standard input.
func (c *cli) readInput(name string) ([]byte, error) {
	if name == "-" {
		b, err := io.ReadAll(c.stdin)
		if err != nil {
			return nil, fmt.Errorf("read standard input: %w", err)
		}
		return b, nil
	}
	return c.readFile(name)
}

func (c *cli) decoder() decoder { return decoder{getenv: c.getenv, readFile: c.readFile} }
