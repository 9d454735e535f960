// Package jwtauth verifies JWT access tokens (Authorization: Bearer) for the
// authz sidecar's JWT profiles.
//
// A token selects its profile by a claim (default sub, whose value defaults to
// the profile id); only then is its signature verified, with that profile's
// keys and algorithms only: a shared secret (HS256/384/512), PEM public keys,
// or a JWKS fetched directly or through OIDC discovery (RS256/384/512, PS256,
// ES256/384, EdDSA). Then exp, nbf and iat are checked with a leeway, and the
// profile's issuers, audiences and required claims.
//
// Decisions a caller may notice:
//   - exp is required: a token that never expires could only be revoked by
//     changing the profile's key, and the verified-token cache needs a bound.
//   - The selecting claim is a top-level claim with a string value. When
//     profiles select by different claims and a token matches several, they
//     are tried in claim name order and the first whose key verifies wins.
//     Two profiles with the same claim and value are a config error.
//   - The algorithm family comes from the profile's key kind, never from the
//     token: a public-key profile refuses HS*, a secret refuses the rest.
//     Header keys (jwk, jku, x5u, x5c) are ignored; crit and b64 are refused.
//   - Key sets: symmetric keys and keys whose use is not sig are skipped; a
//     key with an alg verifies that alg only. A token's kid selects the key;
//     without a kid at most 8 fitting keys are tried. An OIDC profile without
//     issuers accepts only its issuer's iss.
//   - Cached tokens of a profile stop counting once a new config changes the
//     profile's JWT settings, and once a key set refresh removes a key.
//
// Key sets are fetched and refreshed in the background; requests never wait
// for a fetch. Tokens that verified are kept in a bounded cache until their
// exp, so a repeat token costs a hash and a map lookup.
package jwtauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Verifier. Zero fields take the defaults.
type Config struct {
	// Logger receives key fetch problems. Default: discard.
	Logger *slog.Logger
	// HTTPClient fetches JWKS and OIDC discovery documents. Default: a client
	// with a 10s timeout.
	HTTPClient *http.Client
	// Leeway is the clock skew allowed for exp, nbf and iat. Default 30s.
	Leeway time.Duration
	// MaxTokenBytes refuses longer tokens before any parsing. Default 10240.
	MaxTokenBytes int
	// CacheEntries bounds the verified-token cache. Default 100000; negative
	// disables the cache.
	CacheEntries int
	// CacheBytes bounds the memory of the verified-token cache (claims and
	// bookkeeping). Default 128 MiB; negative disables the cache.
	CacheBytes int
	// JWKSRefresh is how often key sets are fetched again. Default 5m.
	JWKSRefresh time.Duration
	// JWKSMinInterval is the least time between two fetches of one key set,
	// whatever asks for them (unknown kids, failures). Default 30s.
	JWKSMinInterval time.Duration
	// Registerer receives the verifier's metrics. Default: none.
	Registerer prometheus.Registerer
}

// Defaults.
const (
	DefaultLeeway          = 30 * time.Second
	DefaultMaxTokenBytes   = 10 << 10
	DefaultCacheEntries    = 100_000
	DefaultCacheBytes      = 128 << 20
	DefaultJWKSRefresh     = 5 * time.Minute
	DefaultJWKSMinInterval = 30 * time.Second
)

// Result is a verified token.
type Result struct {
	// ProfileID is the id of the profile the token selected and verified against.
	ProfileID string
	// ClaimsJSON is the verified claims as compact JSON with members sorted by
	// name. It is shared with the cache: read only.
	ClaimsJSON []byte
	// ClaimsBase64 is ClaimsJSON in base64url without padding, the form of
	// the x-gatehouse-jwt-claims header, made once per verified token.
	ClaimsBase64 string
	// Expiry is the token's exp.
	Expiry time.Time
}

// Verifier verifies JWTs against the current JWT profiles. It is safe for
// concurrent use; Verify never blocks on SetProfiles or on key fetches.
type Verifier struct {
	maxBytes  int
	leeway    time.Duration
	verifiers verifiers
	cache     *cache
	metrics   *metrics
	fetch     *fetcher
	idx       atomic.Pointer[index]

	ctx    context.Context // parent of the key fetchers
	cancel context.CancelFunc
	mu     sync.Mutex // serializes SetProfiles and Close
	closed bool
}

// New returns a Verifier with no profiles. ctx bounds the background key
// fetchers; Close stops them and waits for them.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: fetchTimeout}
	}
	cfg.Leeway = orDefault(cfg.Leeway, DefaultLeeway)
	cfg.JWKSRefresh = orDefault(cfg.JWKSRefresh, DefaultJWKSRefresh)
	cfg.JWKSMinInterval = orDefault(cfg.JWKSMinInterval, DefaultJWKSMinInterval)
	cfg.MaxTokenBytes = orDefault(cfg.MaxTokenBytes, DefaultMaxTokenBytes)
	cfg.CacheEntries = orDefault(cfg.CacheEntries, DefaultCacheEntries)
	cfg.CacheBytes = orDefault(cfg.CacheBytes, DefaultCacheBytes)
	if cfg.Leeway < 0 || cfg.JWKSRefresh < 0 || cfg.JWKSMinInterval < 0 || cfg.MaxTokenBytes < 0 {
		return nil, errors.New("jwt verifier: negative durations and sizes are not allowed")
	}
	vs, err := newVerifiers()
	if err != nil {
		return nil, fmt.Errorf("jwt verifier: %w", err)
	}
	c := newCache(cfg.CacheEntries, cfg.CacheBytes)
	m, err := newMetrics(cfg.Registerer, c)
	if err != nil {
		return nil, fmt.Errorf("jwt verifier: %w", err)
	}
	v := &Verifier{
		maxBytes:  cfg.MaxTokenBytes,
		leeway:    cfg.Leeway,
		verifiers: vs,
		cache:     c,
		metrics:   m,
		fetch: &fetcher{
			client: cfg.HTTPClient, log: cfg.Logger, metrics: m,
			refresh: cfg.JWKSRefresh, minInterval: cfg.JWKSMinInterval,
		},
	}
	v.ctx, v.cancel = context.WithCancel(ctx)
	v.idx.Store(emptyIndex())
	return v, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Close stops the key fetchers. Verify keeps answering from the keys it has.
func (v *Verifier) Close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return
	}
	v.closed = true
	v.cancel()
	for _, s := range v.idx.Load().sources {
		s.stop()
	}
}

// Ready reports whether every key set in use has been fetched at least once,
// so that no JWT profile answers KeyUnavailable.
func (v *Verifier) Ready() bool {
	for _, s := range v.idx.Load().sources {
		if s.set.Load() == nil {
			return false
		}
	}
	return true
}

// Verify verifies token at now and returns the profile it selects. Refusals
// are *Error values with a Code (see CodeOf); their text never includes the
// token or values taken from it. Verify does no I/O and does not block, so
// ctx is not consulted.
func (v *Verifier) Verify(ctx context.Context, token string, now time.Time) (Result, error) {
	if len(token) > v.maxBytes {
		v.metrics.verified(TooLarge)
		return Result{}, refuse(TooLarge, fmt.Sprintf("token is longer than %d bytes", v.maxBytes))
	}
	var key [32]byte
	if v.cache != nil {
		// The token is only read, so hashing it in place saves a copy of up
		// to MaxTokenBytes on every request.
		key = sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
		if res, ok := v.cache.get(&key, now.UnixNano()); ok {
			v.metrics.cacheLookup(true)
			v.metrics.verified(0)
			return res, nil
		}
		v.metrics.cacheLookup(false)
	}
	res, entry, err := v.verify(token, now)
	if err != nil {
		v.metrics.verified(CodeOf(err))
		return Result{}, err
	}
	v.metrics.verified(0)
	if v.cache != nil && entry.expires > now.UnixNano() {
		v.cache.put(&key, entry, now.UnixNano())
	}
	return res, nil
}

// verify is the uncached path: parse, select the profile, check the
// signature, check the claims.
func (v *Verifier) verify(token string, now time.Time) (Result, cacheEntry, error) {
	p, err := parse(token)
	if err != nil {
		return Result{}, cacheEntry{}, err
	}
	prof, epoch, err := v.selectProfile(v.idx.Load(), p)
	if err != nil {
		return Result{}, cacheEntry{}, err
	}
	exp, err := checkClaims(prof, p.claims, now, v.leeway)
	if err != nil {
		return Result{}, cacheEntry{}, err
	}
	claims, err := claimsJSON(p.claims)
	if err != nil {
		return Result{}, cacheEntry{}, refuse(Malformed, "claims cannot be rendered as JSON")
	}
	res := Result{ProfileID: prof.id, ClaimsJSON: claims, ClaimsBase64: b64.EncodeToString(claims), Expiry: exp}
	return res, cacheEntry{res: res, expires: exp.UnixNano(), prof: prof, epoch: epoch}, nil
}
