// Package check decides whether a request may reach the recipe runtime. It turns a compiled
// authz config into an immutable Index and runs the decision pipeline in a fixed order, each
// step a small function: endpoint → credential extraction → authentication → access → policy
// (IP, then limiter). Protocol adapters turn Envoy's CheckRequest or an HTTP check request
// into a Request and the resulting Decision into their response.
package check

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"gatehouse/authz/apitoken"
	"gatehouse/authz/limit"
	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

// JWTVerifier verifies a bearer JWT and names the access profile it belongs to.
type JWTVerifier interface {
	Verify(ctx context.Context, token string, now time.Time) (JWTResult, error)
}

// JWTResult is a verified JWT.
type JWTResult struct {
	// ProfileID is the access profile the token selected.
	ProfileID string
	// ClaimsJSON is the verified claims set as JSON.
	ClaimsJSON []byte
}

// ErrKeyUnavailable is wrapped by a JWTVerifier error when the profile's keys have not been
// fetched yet: the request is answered 503 key_unavailable instead of 401.
var ErrKeyUnavailable = errors.New("verification keys unavailable")

// classed is implemented by verifier errors that name their class ("expired", "bad
// signature"), which becomes the problem detail. The class never contains the token.
type classed interface{ Class() string }

// Config configures a Checker.
type Config struct {
	// Limiter enforces rate limits and quotas. Default: a new in-memory limiter.
	Limiter limit.Limiter
	// JWT verifies bearer tokens; nil refuses every JWT as invalid credentials.
	JWT JWTVerifier
	// TrustedHops is how many proxies in front of the gateway append to X-Forwarded-For
	// and are trusted to; 0 uses the source address alone. An entry the gateway appended
	// itself (see Request.SourceAppended) is not one of them.
	TrustedHops int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Checker runs the decision pipeline against the current Index. It is safe for concurrent
// use; Swap replaces the Index atomically, so a decision sees exactly one config.
type Checker struct {
	cfg   Config
	idx   atomic.Pointer[Index]
	reqID atomic.Uint64
	// reqPrefix makes generated request ids unique across restarts and replicas.
	reqPrefix string
}

// New returns a Checker without config: every decision is ConfigUnavailable until Swap.
func New(cfg Config) *Checker {
	if cfg.Limiter == nil {
		cfg.Limiter = limit.NewMemory(limit.MemoryConfig{})
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return &Checker{cfg: cfg, reqPrefix: hex.EncodeToString(b[:]) + "-"}
}

// Swap builds an Index from cfg and makes it current. A config that does not build is
// refused with the reason, and the previous Index stays; its signature fits the config
// source's callback, where an error NACKs.
func (c *Checker) Swap(_ context.Context, cfg *authzv1.Config) error {
	x, err := Build(cfg)
	if err != nil {
		return err
	}
	c.Store(x)
	return nil
}

// Store makes an already built Index current, for callers that prepare other parts (the JWT
// verifier's profiles) from the same Index before it takes effect.
func (c *Checker) Store(x *Index) { c.idx.Store(x) }

// Index returns the current Index, or nil before the first config.
func (c *Checker) Index() *Index { return c.idx.Load() }

// Ready reports whether the Checker holds a config.
func (c *Checker) Ready() bool { return c.idx.Load() != nil }

// Decide runs the pipeline for r and writes the outcome into d, which is reset first so that
// callers can reuse it. It always reaches a decision.
func (c *Checker) Decide(ctx context.Context, r *Request, d *Decision) {
	d.Reset()
	d.RequestID = r.RequestID
	x := c.idx.Load()
	if x == nil {
		c.deny(d, ConfigUnavailable, "the authorization service has not received its configuration yet")
		return
	}
	d.ConfigVersion = x.version
	if code, detail := findEndpoint(x, r, d); code != OK {
		c.deny(d, code, detail)
		return
	}
	cred, code, detail := extractCredential(r.Headers)
	if code == OK && r.ForgedIdentity {
		code, detail = InvalidCredentials, "the request carries x-gatehouse-* headers, which only the gateway may set"
	}
	if code != OK {
		d.Challenge = x.challenge
		c.deny(d, code, detail)
		return
	}
	now := c.cfg.Now()
	if code, detail := c.authenticate(ctx, x, cred, now, d); code != OK {
		if code == InvalidCredentials {
			d.Challenge = challengeFor(cred.kind)
		}
		c.deny(d, code, detail)
		return
	}
	if code, detail := checkAccess(d.Endpoint, d.Profile); code != OK {
		c.deny(d, code, detail)
		return
	}
	if code, detail := checkIP(d.Profile, clientAddr(r.Source, r.Headers, c.cfg.TrustedHops, r.SourceAppended)); code != OK {
		c.deny(d, code, detail)
		return
	}
	if code, detail := c.checkLimit(ctx, d.Profile, now, d); code != OK {
		c.deny(d, code, detail)
		return
	}
	d.Code = OK
}

// deny records a refusal and gives it a request id when the proxy sent none.
func (c *Checker) deny(d *Decision, code Code, detail string) {
	d.Code, d.Detail = code, detail
	if !validRequestID(d.RequestID) {
		var buf [32]byte
		b := append(buf[:0], c.reqPrefix...)
		b = strconv.AppendUint(b, c.reqID.Add(1), 16)
		d.RequestID = string(b)
	}
}

// validRequestID admits ids that are safe to echo in JSON and headers without escaping.
func validRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// findEndpoint resolves the endpoint from the context extensions or by method and path, and
// its path parameters.
func findEndpoint(x *Index, r *Request, d *Decision) (Code, string) {
	path := stripQuery(r.Path)
	var ep *Endpoint
	if r.EndpointID != "" {
		ep = x.endpoints[r.EndpointID]
	} else {
		ep = x.routes.find(r.Method, path)
	}
	if ep == nil || !ep.Active {
		return EndpointNotFound, "no active endpoint serves this method and path"
	}
	d.Endpoint = ep
	// A route chosen by Envoy always fits its template; if it somehow does not, the request
	// still goes ahead, only without parameters, which the recipe then reports missing.
	params, err := ep.params(path, d.paramBuf[:0])
	if err == nil {
		d.Params = params
	}
	return OK, ""
}

func challengeFor(k AuthKind) string {
	if k == AuthJWT {
		return ChallengeBearer
	}
	return ChallengeAPIToken
}

// authenticate turns the credential into a profile.
func (c *Checker) authenticate(ctx context.Context, x *Index, cred credential, now time.Time, d *Decision) (Code, string) {
	d.Auth = cred.kind
	switch cred.kind {
	case AuthAPIToken:
		if apitoken.Check(apitoken.APIPrefix, cred.value) != nil {
			return InvalidCredentials, "the API token is malformed"
		}
		// Same as apitoken.Hash, with the bytes on the stack.
		var buf [apitoken.Len]byte
		t := x.tokens[sha256.Sum256(append(buf[:0], cred.value...))]
		if t == nil {
			return InvalidCredentials, "the API token is unknown or revoked"
		}
		if t.expire != 0 && now.UnixNano() >= t.expire {
			return InvalidCredentials, "the API token has expired"
		}
		d.Profile, d.TokenID, d.Token = t.Profile, t.ID, t
		return OK, ""
	case AuthJWT:
		if c.cfg.JWT == nil {
			return InvalidCredentials, "bearer tokens are not accepted"
		}
		if len(cred.value) > maxJWT {
			return InvalidCredentials, "the bearer token is larger than 10 KiB"
		}
		res, err := c.cfg.JWT.Verify(ctx, cred.value, now)
		if errors.Is(err, ErrKeyUnavailable) {
			return KeyUnavailable, "the keys to verify this token have not been fetched yet"
		}
		if err != nil {
			var cl classed
			if errors.As(err, &cl) && cl.Class() != "" {
				return InvalidCredentials, "the bearer token is invalid: " + cl.Class()
			}
			return InvalidCredentials, "the bearer token is invalid"
		}
		p := x.profiles[res.ProfileID]
		if p == nil || p.Auth != AuthJWT {
			return InvalidCredentials, "the bearer token selects no access profile"
		}
		d.Profile = p
		d.Claims = base64.RawURLEncoding.EncodeToString(res.ClaimsJSON)
		return OK, ""
	}
	return MissingCredentials, "the request has no credential"
}

// checkAccess: the client and profile are enabled and the profile grants the collection.
func checkAccess(ep *Endpoint, p *Profile) (Code, string) {
	if !p.ClientActive {
		return ClientDisabled, "the client of this access profile is disabled"
	}
	if !p.Active {
		return ProfileDisabled, "the access profile is disabled"
	}
	for _, id := range p.collections {
		if id == ep.CollectionID {
			return OK, ""
		}
	}
	return CollectionNotAllowed, "the access profile does not grant this API collection"
}

// checkIP applies the deny list, then the allow list (when it has entries).
// An address that could not be determined passes only a profile without IP rules.
func checkIP(p *Profile, addr netip.Addr) (Code, string) {
	if len(p.ipDeny) == 0 && len(p.ipAllow) == 0 {
		return OK, ""
	}
	if !addr.IsValid() {
		return IPNotAllowed, "the caller's address could not be determined"
	}
	for _, pf := range p.ipDeny {
		if pf.Contains(addr) {
			return IPNotAllowed, "the caller's address is denied by the access profile"
		}
	}
	if len(p.ipAllow) == 0 {
		return OK, ""
	}
	for _, pf := range p.ipAllow {
		if pf.Contains(addr) {
			return OK, ""
		}
	}
	return IPNotAllowed, "the caller's address is not in the access profile's allow list"
}

// checkLimit asks the limiter when the profile has a policy that limits.
func (c *Checker) checkLimit(ctx context.Context, p *Profile, now time.Time, d *Decision) (Code, string) {
	if p.policy == nil {
		return OK, ""
	}
	ld, err := c.cfg.Limiter.Allow(ctx, p.key, *p.policy, now)
	if err != nil {
		return LimiterUnavailable, "the rate limiter could not decide"
	}
	d.Limit, d.Limited = ld, true
	if ld.Allowed {
		return OK, ""
	}
	switch ld.Code {
	case limit.RateLimited:
		return RateLimited, "the rate limit of the access policy is exhausted"
	case limit.QuotaExceeded:
		return QuotaExceeded, "the quota of the access policy for the current window is used up"
	}
	return LimiterUnavailable, "the rate limiter is unavailable"
}
