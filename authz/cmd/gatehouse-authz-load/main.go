// Command gatehouse-authz-load measures the authz sidecar over gRPC on loopback.
//
//	gatehouse-authz-load fixture -out authz.yaml [-rate-limit N]   writes a test config, prints an API token
//	gatehouse-authz-load noop -addr 127.0.0.1:9391    serves a do-nothing ext_authz (the baseline)
//	gatehouse-authz-load run -addr 127.0.0.1:9191 -token T -duration 10s [-rate R] [-invalid]
//
// run drives concurrent Check calls shaped as Envoy sends them and prints one JSON line:
// requests, errors, allowed, req/s, p50/p99/max latency in microseconds. With -rate it paces
// the calls (open loop; each worker keeps its schedule, latency runs from the actual send); -invalid sends random
// well-formed-looking tokens that no profile has; -requests stops after that many calls.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"sigs.k8s.io/yaml"

	"gatehouse/authz/check/checktest"
	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gatehouse-authz-load fixture|noop|run [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "fixture":
		err = fixture(os.Args[2:])
	case "noop":
		err = noop(ctx, os.Args[2:])
	case "run":
		err = run(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "gatehouse-authz-load:", err)
		os.Exit(1)
	}
}

// fixture writes the test config as YAML and prints the secret of the token run sends by
// default: unlimited, or with -rate-limit limited by a policy that never refuses.
func fixture(args []string) error {
	fs := flag.NewFlagSet("fixture", flag.ContinueOnError)
	out := fs.String("out", "authz.yaml", "config file to write")
	rateLimit := fs.Uint("rate-limit", 0, "give the token's profile a policy of this many calls per second "+
		"(burst as many, at most 1000000) and a quota that never runs out, so every decision goes "+
		"through the limiter; 0: no policy")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rateLimit > maxRateLimit {
		return fmt.Errorf("-rate-limit %d: the limiter holds at most %d per second exactly", *rateLimit, maxRateLimit)
	}
	fx := checktest.New(time.Now())
	if *rateLimit > 0 {
		limitSales(fx.Config, uint32(*rateLimit))
	}
	j, err := protojson.Marshal(fx.Config)
	if err != nil {
		return err
	}
	y, err := yaml.JSONToYAML(j)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, y, 0o600); err != nil {
		return err
	}
	fmt.Println(fx.Secret(checktest.TokenSales))
	return nil
}

// maxRateLimit is the highest rate the limiters keep exact: they count in microseconds.
const maxRateLimit = 1_000_000

// benchPolicy is the policy -rate-limit gives the sales profile.
const benchPolicy = "pol-bench"

// limitSales gives the profile of checktest.TokenSales a rate limit of perSecond calls per
// second with a burst of as many, and a monthly quota of 2^50 calls: far above any run, yet
// exact in the Redis script's Lua numbers. The limiter then decides every call, in full,
// without refusing one, which is what a measurement of the limiter backends needs.
func limitSales(cfg *authzv1.Config, perSecond uint32) {
	cfg.Policies = append(cfg.Policies, &authzv1.Policy{
		Name:      benchPolicy,
		RateLimit: &authzv1.RateLimit{Requests: perSecond, Period: durationpb.New(time.Second), Burst: perSecond},
		Quota:     &authzv1.Quota{Requests: 1 << 50, Window: authzv1.Window_WINDOW_MONTH},
	})
	for _, p := range cfg.GetProfiles() {
		for _, t := range p.GetApiToken().GetTokens() {
			if t.GetId() == checktest.TokenSales {
				p.PolicyId = benchPolicy
			}
		}
	}
}

// noopServer allows everything without looking: the ceiling any ext_authz server reaches
// with this client and gRPC stack.
type noopServer struct {
	authv3.UnimplementedAuthorizationServer
}

func (noopServer) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return &authv3.CheckResponse{
		Status:       &status.Status{},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}},
	}, nil
}

func noop(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("noop", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9391", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	s := grpc.NewServer()
	authv3.RegisterAuthorizationServer(s, noopServer{})
	go func() { <-ctx.Done(); s.GracefulStop() }()
	return s.Serve(lis)
}

type result struct {
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	Allowed   int64   `json:"allowed"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"req_per_s"`
	P50us     float64 `json:"p50_us"`
	P99us     float64 `json:"p99_us"`
	MaxUs     float64 `json:"max_us"`
	// FirstError is the first failed call's error, to tell a refused connection from a bug.
	FirstError string `json:"first_error,omitempty"`
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9191", "ext_authz gRPC address")
	token := fs.String("token", "", "API token to send")
	path := fs.String("path", "/sales/orders/o-17/items/3?expand=all", "request path")
	endpoint := fs.String("endpoint", checktest.EndpointItem, "context extension endpoint_id (empty: match by path)")
	workers := fs.Int("concurrency", 64, "calls in flight")
	conns := fs.Int("conns", 4, "gRPC connections")
	duration := fs.Duration("duration", 10*time.Second, "how long to send (bounded by -requests)")
	requests := fs.Int64("requests", 0, "stop after this many calls (0: only -duration)")
	rate := fs.Float64("rate", 0, "calls per second in total (0: as fast as possible)")
	invalid := fs.Bool("invalid", false, "send a random invalid token with every call")
	warmup := fs.Duration("warmup", time.Second, "unmeasured calls first")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *workers < 1 || *conns < 1 {
		return errors.New("-concurrency and -conns must be positive")
	}
	clients := make([]*grpc.ClientConn, *conns)
	for i := range clients {
		c, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
		if err != nil {
			return err
		}
		defer c.Close()
		clients[i] = c
	}
	if *warmup > 0 {
		drive(ctx, time.Now().Add(*warmup), clients, *workers, 0, 0, *token, *path, *endpoint, *invalid)
	}
	res := drive(ctx, time.Now().Add(*duration), clients, *workers, *requests, *rate, *token, *path, *endpoint, *invalid)
	return json.NewEncoder(os.Stdout).Encode(res)
}

// drive runs the workers until the time until, ctx ends or limit calls were made. Calls in
// flight at the end finish normally, so they never count as errors.
func drive(ctx context.Context, until time.Time, clients []*grpc.ClientConn, workers int, limit int64, rate float64,
	token, path, endpoint string, invalid bool) result {
	var sent, errs, allowed atomic.Int64
	var firstErr atomic.Pointer[string]
	lat := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := clients[w%len(clients)]
			rnd := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			tok := token
			if invalid {
				tok = randomToken(rnd)
			}
			req, tokAt, err := marshalRequest(path, endpoint, tok)
			if err != nil {
				panic(err) // a bug in this program: the request is built here
			}
			var resp []byte
			var interval time.Duration
			if rate > 0 {
				interval = time.Duration(float64(workers) / rate * float64(time.Second))
			}
			next := start.Add(time.Duration(rnd.Int64N(int64(max(interval, 1)))))
			local := make([]time.Duration, 0, 1<<16)
			for ctx.Err() == nil && time.Now().Before(until) {
				if limit > 0 && sent.Add(1) > limit {
					break
				}
				if invalid {
					fillRandomToken(rnd, req[tokAt:tokAt+len(tok)])
				}
				if interval > 0 {
					if d := time.Until(next); d > 0 {
						time.Sleep(d)
					}
					next = next.Add(interval)
				}
				// Latency is taken from the actual send: the generator's own timer slack on a
				// busy machine is not the server's.
				t0 := time.Now()
				err := client.Invoke(ctx, checkMethod, req, &resp)
				if err != nil {
					errs.Add(1)
					msg := err.Error()
					firstErr.CompareAndSwap(nil, &msg)
					continue
				}
				local = append(local, time.Since(t0))
				if isOK(resp) {
					allowed.Add(1)
				}
			}
			lat[w] = local
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	r := result{Requests: int64(len(all)), Errors: errs.Load(), Allowed: allowed.Load(), Seconds: elapsed.Seconds()}
	if e := firstErr.Load(); e != nil {
		r.FirstError = *e
	}
	r.PerSecond = float64(r.Requests) / elapsed.Seconds()
	if n := len(all); n > 0 {
		us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
		r.P50us, r.P99us, r.MaxUs = us(all[n*50/100]), us(all[n*99/100]), us(all[n-1])
	}
	return r
}

const tokenAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randomToken looks like an API token (prefix, length, alphabet) but fails the checksum or is
// unknown: what a scanner or a brute-force caller sends.
func randomToken(rnd *rand.Rand) string {
	b := make([]byte, 53)
	copy(b, "gth_")
	fillRandomToken(rnd, b)
	return string(b)
}

// fillRandomToken replaces everything after the prefix with random token characters.
func fillRandomToken(rnd *rand.Rand, b []byte) {
	for i := 4; i < len(b); i++ {
		b[i] = tokenAlphabet[rnd.IntN(len(tokenAlphabet))]
	}
}

const checkMethod = "/envoy.service.auth.v3.Authorization/Check"

// rawCodec sends and receives the messages as bytes: the client then costs the same against
// any server, whatever the size of its answers, and what is measured is the server. Requests
// are marshaled once per worker and random tokens patched in place.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }

func (rawCodec) Unmarshal(data []byte, v any) error {
	p := v.(*[]byte)
	*p = append((*p)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

// marshalRequest returns the wire form of the Envoy-shaped request and where the token's
// bytes are in it.
func marshalRequest(path, endpoint, token string) ([]byte, int, error) {
	b, err := proto.Marshal(envoyRequest(path, endpoint, token))
	if err != nil {
		return nil, 0, err
	}
	at := -1
	if token != "" {
		at = bytes.Index(b, []byte(token))
	}
	return b, at, nil
}

// isOK reports whether a wire-form CheckResponse carries an ok_response (field 3).
func isOK(b []byte) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if num == 3 && typ == protowire.BytesType {
			return true
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return false
		}
		b = b[n:]
	}
	return false
}

// envoyRequest is a CheckRequest as Envoy sends it for a caller request.
func envoyRequest(path, endpoint, token string) *authv3.CheckRequest {
	h := map[string]string{
		":authority": "api.example.com", ":method": "GET", ":path": path, ":scheme": "https",
		"accept": "application/json", "user-agent": "gatehouse-authz-load/1",
		"x-forwarded-proto": "https", "x-request-id": "3c1f2b9e-0d4a-4c57-9b7e-5f0e8a6d2c11",
	}
	if token != "" {
		h["api-token"] = token
	}
	var ext map[string]string
	if endpoint != "" {
		ext = map[string]string{"endpoint_id": endpoint, "collection_id": "col-sales", "recipe_id": "recipe-" + endpoint}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "198.51.100.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "3c1f2b9e-0d4a-4c57-9b7e-5f0e8a6d2c11", Method: "GET", Path: path, Host: "api.example.com",
			Scheme: "https", Protocol: "HTTP/2", Headers: h,
		}},
		ContextExtensions: ext,
	}}
}
