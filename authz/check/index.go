package check

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"

	"gatehouse/authz/limit"
	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

// Index is a compiled, immutable view of one authz config, built once per config version so
// that a decision is only map lookups and comparisons. It is safe for concurrent use.
type Index struct {
	version   string
	endpoints map[string]*Endpoint
	routes    *node
	tokens    map[[32]byte]*Token
	profiles  map[string]*Profile
	jwt       []*authzv1.Profile
	// challenge is the WWW-Authenticate value for a request without credentials: the schemes
	// some profile of this config accepts.
	challenge string
}

// Endpoint is one endpoint of the index with its upstream header values precomputed.
type Endpoint struct {
	ID           string
	CollectionID string
	RecipeID     string
	Method       string
	Template     string
	Active       bool
	segs         []segment
	memo         atomic.Value
}

// segment is one path segment of a template: a literal, or a parameter whose header name is
// precomputed.
type segment struct {
	lit    string
	header string // "x-gatehouse-param-<name>" when a parameter
}

// AuthKind is how a profile authenticates.
type AuthKind uint8

// Credential kinds.
const (
	// AuthNone is no credential.
	AuthNone AuthKind = iota
	// AuthAPIToken is an API token.
	AuthAPIToken
	// AuthJWT is a JWT bearer token.
	AuthJWT
)

// String returns the value of the x-gatehouse-auth-method header.
func (k AuthKind) String() string {
	switch k {
	case AuthAPIToken:
		return "api_token"
	case AuthJWT:
		return "jwt"
	}
	return "none"
}

// Profile is one access profile of the index.
type Profile struct {
	ID           string
	ClientID     string
	ClientActive bool
	Active       bool
	Auth         AuthKind
	collections  []string
	ipAllow      []netip.Prefix
	ipDeny       []netip.Prefix
	// policy is nil when the profile has no policy or its policy limits nothing.
	policy *limit.Policy
	key    limit.Key
	memo   atomic.Value
}

// Token is one accepted API token.
type Token struct {
	ID      string
	Profile *Profile
	// expire is the Unix time in nanoseconds at which the token stops working; 0 for never.
	expire int64
	memo   atomic.Value
}

// Memo is storage that lives as long as the object, for the one protocol adapter of the
// process (the gRPC server) to keep its rendering of the object's upstream headers, so that
// it is built once per config rather than once per request. It holds values of one type.
func (e *Endpoint) Memo() *atomic.Value { return &e.memo }

// Memo is the profile's adapter storage; see Endpoint.Memo.
func (p *Profile) Memo() *atomic.Value { return &p.memo }

// Memo is the token's adapter storage; see Endpoint.Memo.
func (t *Token) Memo() *atomic.Value { return &t.memo }

// Challenge values of WWW-Authenticate.
const (
	ChallengeAPIToken = `API-Token realm="gatehouse"`
	ChallengeBearer   = `Bearer realm="gatehouse"`
	challengeBoth     = ChallengeAPIToken + ", " + ChallengeBearer
)

// Version returns the config version the index was built from.
func (x *Index) Version() string { return x.version }

// Endpoint returns the endpoint with the given id, or nil.
func (x *Index) Endpoint(id string) *Endpoint { return x.endpoints[id] }

// Profile returns the access profile with the given id, or nil.
func (x *Index) Profile(id string) *Profile { return x.profiles[id] }

// JWTProfiles returns the profiles that authenticate with JWTs, for the JWT verifier.
func (x *Index) JWTProfiles() []*authzv1.Profile { return x.jwt }

// HasProfile reports whether the index has an access profile with the given id, so that
// limiter state of removed profiles can be dropped.
func (x *Index) HasProfile(id string) bool { return x.profiles[id] != nil }

// Build compiles cfg into an Index. It refuses a config it cannot enforce exactly (a
// reference to a missing policy, an unparsable CIDR or template, duplicate ids or routes),
// so that the config source rejects it and the last good config stays in force.
func Build(cfg *authzv1.Config) (*Index, error) {
	if cfg == nil {
		return nil, errors.New("build authz index: no config")
	}
	x := &Index{
		version:   cfg.GetVersion(),
		endpoints: make(map[string]*Endpoint, len(cfg.GetEndpoints())),
		routes:    &node{},
		tokens:    make(map[[32]byte]*Token),
		profiles:  make(map[string]*Profile, len(cfg.GetProfiles())),
	}
	policies := make(map[string]*limit.Policy, len(cfg.GetPolicies()))
	for _, p := range cfg.GetPolicies() {
		if p.GetName() == "" {
			return nil, errors.New("build authz index: policy without name")
		}
		if _, dup := policies[p.GetName()]; dup {
			return nil, fmt.Errorf("build authz index: duplicate policy %q", p.GetName())
		}
		lp, err := buildPolicy(p)
		if err != nil {
			return nil, fmt.Errorf("build authz index: policy %q: %w", p.GetName(), err)
		}
		policies[p.GetName()] = lp
	}
	for _, e := range cfg.GetEndpoints() {
		if err := x.addEndpoint(e); err != nil {
			return nil, fmt.Errorf("build authz index: endpoint %q: %w", e.GetName(), err)
		}
	}
	var apiTokens, jwts bool
	for _, p := range cfg.GetProfiles() {
		if err := x.addProfile(p, policies); err != nil {
			return nil, fmt.Errorf("build authz index: profile %q: %w", p.GetName(), err)
		}
		switch p.GetAuth().(type) {
		case *authzv1.Profile_ApiToken:
			apiTokens = true
		case *authzv1.Profile_Jwt:
			jwts = true
			x.jwt = append(x.jwt, p)
		}
	}
	switch {
	case jwts && apiTokens:
		x.challenge = challengeBoth
	case jwts:
		x.challenge = ChallengeBearer
	default:
		x.challenge = ChallengeAPIToken
	}
	return x, nil
}

func buildPolicy(p *authzv1.Policy) (*limit.Policy, error) {
	lp := &limit.Policy{ID: p.GetName()}
	if r := p.GetRateLimit(); r != nil {
		period := r.GetPeriod().AsDuration()
		if r.GetRequests() == 0 || period <= 0 {
			return nil, fmt.Errorf("rate limit needs requests > 0 and a period > 0, got %d per %s", r.GetRequests(), period)
		}
		lp.Rate = &limit.Rate{Requests: r.GetRequests(), Period: period, Burst: r.GetBurst()}
		if _, _, ok := lp.Rate.Emission(); !ok {
			return nil, fmt.Errorf("rate limit of %d per %s admits nothing", r.GetRequests(), period)
		}
	}
	if q := p.GetQuota(); q != nil {
		w := limit.Window(q.GetWindow())
		if q.GetRequests() == 0 || !w.Valid() {
			return nil, fmt.Errorf("quota needs requests > 0 and a window, got %d per %s", q.GetRequests(), q.GetWindow())
		}
		lp.Quota = &limit.Quota{Requests: q.GetRequests(), Window: w}
	}
	if lp.Rate == nil && lp.Quota == nil {
		return nil, nil
	}
	return lp, nil
}

func (x *Index) addEndpoint(e *authzv1.Endpoint) error {
	if e.GetName() == "" {
		return errors.New("no name")
	}
	if _, dup := x.endpoints[e.GetName()]; dup {
		return errors.New("duplicate id")
	}
	if e.GetMethod() == "" || strings.ToUpper(e.GetMethod()) != e.GetMethod() {
		return fmt.Errorf("method %q must be upper-case and set", e.GetMethod())
	}
	segs, err := parseTemplate(e.GetPathTemplate())
	if err != nil {
		return err
	}
	ep := &Endpoint{
		ID:           e.GetName(),
		CollectionID: e.GetCollectionId(),
		RecipeID:     e.GetRecipeId(),
		Method:       e.GetMethod(),
		Template:     e.GetPathTemplate(),
		Active:       e.GetActive(),
		segs:         segs,
	}
	if err := x.routes.insert(ep); err != nil {
		return err
	}
	x.endpoints[ep.ID] = ep
	return nil
}

func (x *Index) addProfile(p *authzv1.Profile, policies map[string]*limit.Policy) error {
	if p.GetName() == "" {
		return errors.New("no name")
	}
	if _, dup := x.profiles[p.GetName()]; dup {
		return errors.New("duplicate id")
	}
	pr := &Profile{
		ID:           p.GetName(),
		ClientID:     p.GetClientId(),
		ClientActive: p.GetClientActive(),
		Active:       p.GetActive(),
		collections:  p.GetCollectionIds(),
		key:          limit.Key{Profile: p.GetName(), Policy: p.GetPolicyId()},
	}
	if id := p.GetPolicyId(); id != "" {
		lp, ok := policies[id]
		if !ok {
			return fmt.Errorf("policy %q does not exist", id)
		}
		pr.policy = lp
	}
	var err error
	if pr.ipAllow, err = parsePrefixes(p.GetIpAllow()); err != nil {
		return fmt.Errorf("ip_allow: %w", err)
	}
	if pr.ipDeny, err = parsePrefixes(p.GetIpDeny()); err != nil {
		return fmt.Errorf("ip_deny: %w", err)
	}
	switch a := p.GetAuth().(type) {
	case *authzv1.Profile_ApiToken:
		pr.Auth = AuthAPIToken
		for _, t := range a.ApiToken.GetTokens() {
			if err := x.addToken(pr, t); err != nil {
				return fmt.Errorf("token %q: %w", t.GetId(), err)
			}
		}
	case *authzv1.Profile_Jwt:
		pr.Auth = AuthJWT
	default:
		return errors.New("no credential kind")
	}
	x.profiles[pr.ID] = pr
	return nil
}

func (x *Index) addToken(p *Profile, t *authzv1.Token) error {
	if t.GetId() == "" {
		return errors.New("no id")
	}
	if len(t.GetSecretSha256()) != 32 {
		return fmt.Errorf("secret_sha256 has %d bytes, want 32", len(t.GetSecretSha256()))
	}
	h := [32]byte(t.GetSecretSha256())
	if _, dup := x.tokens[h]; dup {
		return errors.New("the same secret belongs to another token")
	}
	tok := &Token{ID: t.GetId(), Profile: p}
	if et := t.GetExpireTime(); et != nil {
		if err := et.CheckValid(); err != nil {
			return fmt.Errorf("expire_time: %w", err)
		}
		tok.expire = et.AsTime().UnixNano()
		if tok.expire == 0 {
			tok.expire = 1 // the epoch itself is expired, not "never"
		}
	}
	x.tokens[h] = tok
	return nil
}

// parsePrefixes accepts CIDRs and bare addresses (a single host).
func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	if len(ss) == 0 {
		return nil, nil
	}
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("parse CIDR %q: %w", s, err)
			}
			// The caller's address is unmapped to IPv4 before it is
			// matched, so an IPv4-mapped prefix must be unmapped too or it
			// would never match.
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("parse address %q: %w", s, err)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// KeepsLimitKey reports whether limiter state under k still belongs to a profile of this
// index with that policy, so that a limiter can drop the state of removed profiles.
func (x *Index) KeepsLimitKey(k limit.Key) bool {
	p := x.profiles[k.Profile]
	return p != nil && p.policy != nil && p.key == k
}
