package jwtauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

const (
	// maxDocumentBytes bounds a fetched JWKS or discovery document.
	maxDocumentBytes = 1 << 20
	// maxSetKeys bounds the keys taken from one JWKS.
	maxSetKeys = 100
	// fetchTimeout bounds one fetch (discovery and key set together).
	fetchTimeout = 10 * time.Second
)

// keySet is one fetched JWKS. It is immutable; a refresh swaps in a new one.
type keySet struct {
	// epoch counts the sets a source has fetched, starting at 1.
	epoch uint64
	keys  []pubKey
	// hasKids is false for a set whose keys carry no kid; a token's kid
	// then selects nothing and every fitting key is tried.
	hasKids bool
}

// keySource fetches a JWKS, directly or through OIDC discovery, in its own
// goroutine: at start, every refresh interval, and when a token names an
// unknown kid, never more often than the minimum interval. Requests only read
// the last set; they never wait for a fetch.
type keySource struct {
	oidc bool
	url  string // the JWKS URL, or the OIDC issuer

	set atomic.Pointer[keySet]
	// revoked is the epoch of the newest set that dropped or changed a key.
	// Tokens cached under an older epoch must be verified again.
	revoked atomic.Uint64

	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

func newKeySource(oidc bool, url string) *keySource {
	return &keySource{oidc: oidc, url: url, kick: make(chan struct{}, 1), done: make(chan struct{})}
}

func (s *keySource) name() string {
	if s.oidc {
		return "oidc issuer " + s.url
	}
	return "jwks " + s.url
}

// requestRefresh asks for a fetch without waiting; a pending request absorbs it.
func (s *keySource) requestRefresh() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// fetcher holds what every key source's goroutine shares.
type fetcher struct {
	client      *http.Client
	log         *slog.Logger
	metrics     *metrics
	refresh     time.Duration
	minInterval time.Duration
}

func (f *fetcher) start(ctx context.Context, s *keySource) {
	ctx, s.cancel = context.WithCancel(ctx)
	go f.run(ctx, s)
}

func (s *keySource) stop() {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
}

// run is the fetch loop of one source. The minimum interval is enforced here,
// in one place, so neither refresh requests nor retries can exceed it.
func (f *fetcher) run(ctx context.Context, s *keySource) {
	defer close(s.done)
	var last time.Time
	retry := f.minInterval
	for {
		if !last.IsZero() {
			if !sleep(ctx, time.Until(last.Add(f.minInterval))) {
				return
			}
		}
		last = time.Now()
		next := f.refresh
		keys, err := f.fetchOnce(ctx, s)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.log.LogAttrs(ctx, slog.LevelWarn, "jwt key fetch failed",
				slog.String("source", s.name()), slog.String("error", err.Error()))
			f.metrics.fetched(false)
			// Retry sooner than a refresh, backing off up to it; the last
			// good set keeps serving meanwhile.
			next, retry = min(retry, f.refresh), min(2*retry, f.refresh)
		} else {
			f.metrics.fetched(true)
			s.install(keys)
			retry = f.minInterval
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-s.kick:
			t.Stop()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// fetchOnce fetches and parses the source's key set.
func (f *fetcher) fetchOnce(ctx context.Context, s *keySource) ([]pubKey, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	jwksURL := s.url
	if s.oidc {
		u, err := f.discover(ctx, s.url)
		if err != nil {
			return nil, err
		}
		jwksURL = u
	}
	body, err := f.get(ctx, jwksURL)
	if err != nil {
		return nil, err
	}
	keys, skipped, err := parseKeySet(body)
	if err != nil {
		return nil, fmt.Errorf("parse jwks from %s: %w", jwksURL, err)
	}
	for _, msg := range skipped {
		f.log.LogAttrs(ctx, slog.LevelInfo, "jwt key skipped",
			slog.String("source", s.name()), slog.String("reason", msg))
	}
	return keys, nil
}

// install makes keys the source's current set. Only the fetch loop calls it.
func (s *keySource) install(keys []pubKey) {
	old := s.set.Load()
	next := &keySet{epoch: 1, keys: keys}
	for _, k := range keys {
		next.hasKids = next.hasKids || k.kid != ""
	}
	if old != nil {
		next.epoch = old.epoch + 1
		if dropsKey(old.keys, keys) {
			s.revoked.Store(next.epoch)
		}
	}
	s.set.Store(next)
}

// discover reads an OIDC discovery document and returns its jwks_uri. The
// document's issuer must be the configured one exactly (OpenID Connect
// Discovery 1.0 section 4.3), or a look-alike could hand out its keys.
func (f *fetcher) discover(ctx context.Context, issuer string) (string, error) {
	u := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	body, err := f.get(ctx, u)
	if err != nil {
		return "", err
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("parse discovery document %s: %w", u, err)
	}
	if doc.Issuer != issuer {
		return "", fmt.Errorf("discovery document %s names issuer %q, want %q", u, doc.Issuer, issuer)
	}
	if doc.JWKSURI == "" {
		return "", fmt.Errorf("discovery document %s has no jwks_uri", u)
	}
	return doc.JWKSURI, nil
}

func (f *fetcher) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: status %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", u, err)
	}
	if len(body) > maxDocumentBytes {
		return nil, fmt.Errorf("fetch %s: document larger than %d bytes", u, maxDocumentBytes)
	}
	return body, nil
}

// parseKeySet keeps the signing keys of a JWKS that fit DESIGN.md's
// algorithms. Symmetric keys are skipped: a secret published at a URL is no
// secret, and accepting one would let HS* tokens in through a public-key
// profile. Keys that do not fit are reported in skipped, not failed, so that
// one odd key does not take down the issuer's other keys.
func parseKeySet(body []byte) (keys []pubKey, skipped []string, err error) {
	set, err := jwk.Parse(body, jwk.WithIgnoreParseError(true), jwk.WithMaxKeys(maxSetKeys))
	if err != nil {
		return nil, nil, err
	}
	for i := range set.Len() {
		k, ok := set.Key(i)
		if !ok {
			continue
		}
		kid, _ := k.KeyID()
		pk, reason := signingKey(k)
		if reason != "" {
			skipped = append(skipped, fmt.Sprintf("key %d (kid %q): %s", i, kid, reason))
			continue
		}
		pk.kid = kid
		keys = append(keys, pk)
	}
	if len(keys) == 0 {
		return nil, skipped, errors.New("no usable signing key")
	}
	return keys, skipped, nil
}

func signingKey(k jwk.Key) (pubKey, string) {
	if use, ok := k.KeyUsage(); ok && use != "sig" {
		return pubKey{}, "use is not sig"
	}
	if k.KeyType() == jwa.OctetSeq() {
		return pubKey{}, "symmetric keys are not taken from a key set"
	}
	raw, err := jwk.PublicRawKeyOf(k)
	if err != nil {
		return pubKey{}, "not a public key"
	}
	algs, err := classify(raw)
	if err != nil {
		return pubKey{}, err.Error()
	}
	// A key that names its alg verifies that alg only (RFC 7517 section 4.4).
	if ka, ok := k.Algorithm(); ok {
		a, known := parseAlg(ka.String())
		if !known || !algs.has(a) {
			return pubKey{}, "alg does not fit the key"
		}
		algs = setOf(a)
	}
	return pubKey{algs: algs, key: raw}, ""
}

// dropsKey reports whether a key of old is missing from next: a key that was
// removed from the set must stop verifying cached tokens too.
func dropsKey(old, next []pubKey) bool {
	for _, o := range old {
		found := false
		for _, n := range next {
			if o.kid == n.kid && o.algs == n.algs && sameKey(o.key, n.key) {
				found = true
				break
			}
		}
		if !found {
			return true
		}
	}
	return false
}
