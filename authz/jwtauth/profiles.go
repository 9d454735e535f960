package jwtauth

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"google.golang.org/protobuf/proto"

	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

const (
	defaultClaim = "sub"
	// minHMACSecret matches the admin API's rule: a shorter secret is guessable.
	minHMACSecret = 32
)

// profile is one JWT profile compiled for verification. It is immutable but
// for dead, which SetProfiles sets once a newer config changes or drops it.
type profile struct {
	id        string
	spec      *authzv1.JwtAuth // for change detection
	claim     string
	value     string
	algs      algSet
	hmac      []byte
	keys      []pubKey   // from PEM
	src       *keySource // JWKS or OIDC; nil otherwise
	issuers   []string
	audiences []string
	required  []string
	dead      atomic.Bool
}

// index finds profiles from claims. It is immutable; SetProfiles swaps in a new one.
type index struct {
	// claims are the distinct selecting claim names, sorted, so that a token
	// matching several profiles tries them in a stable order.
	claims  []string
	byClaim map[string]map[string]*profile
	byID    map[string]*profile
	sources map[string]*keySource
}

func emptyIndex() *index {
	return &index{byClaim: map[string]map[string]*profile{}, byID: map[string]*profile{}, sources: map[string]*keySource{}}
}

// SetProfiles replaces the JWT profiles; profiles without JWT auth are
// ignored. It is all or nothing: on error the previous profiles stay in force
// and the error names each profile and what is wrong with it, so the config
// can be refused (NACKed). Key sets of new JWKS URLs and OIDC issuers start
// fetching in the background; those no longer used stop. Cached tokens of
// changed or removed profiles stop counting as verified.
func (v *Verifier) SetProfiles(profiles []*authzv1.Profile) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return errors.New("jwt verifier is closed")
	}
	old := v.idx.Load()
	next := emptyIndex()
	var errs []error
	for _, p := range profiles {
		j := p.GetJwt()
		if j == nil {
			continue
		}
		if _, dup := next.byID[p.GetName()]; dup {
			errs = append(errs, fmt.Errorf("profile %q: listed twice", p.GetName()))
			continue
		}
		cp := old.byID[p.GetName()]
		if cp == nil || !proto.Equal(cp.spec, j) {
			var err error
			if cp, err = compileProfile(p.GetName(), j, old.sources, next.sources); err != nil {
				errs = append(errs, fmt.Errorf("profile %q: %w", p.GetName(), err))
				continue
			}
		} else if cp.src != nil {
			next.sources[sourceKey(cp.src.oidc, cp.src.url)] = cp.src
		}
		if err := next.add(cp); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for k, s := range next.sources {
		if _, ok := old.sources[k]; !ok {
			v.fetch.start(v.ctx, s)
		}
	}
	v.idx.Store(next)
	for id, op := range old.byID {
		if next.byID[id] != op {
			op.dead.Store(true)
		}
	}
	for k, s := range old.sources {
		if _, ok := next.sources[k]; !ok {
			s.stop()
		}
	}
	return nil
}

func (x *index) add(p *profile) error {
	byValue := x.byClaim[p.claim]
	if byValue == nil {
		byValue = map[string]*profile{}
		x.byClaim[p.claim] = byValue
		i, _ := slices.BinarySearch(x.claims, p.claim)
		x.claims = slices.Insert(x.claims, i, p.claim)
	}
	if other := byValue[p.value]; other != nil {
		return fmt.Errorf("profile %q: claim %q value %q already selects profile %q", p.id, p.claim, p.value, other.id)
	}
	byValue[p.value] = p
	x.byID[p.id] = p
	return nil
}

func sourceKey(oidc bool, url string) string {
	if oidc {
		return "oidc " + url
	}
	return "jwks " + url
}

// compileProfile checks one profile's JWT settings and prepares its keys. A
// key source already running (in old) or already made for this config (in
// next) is shared rather than fetched twice.
func compileProfile(id string, j *authzv1.JwtAuth, old, next map[string]*keySource) (*profile, error) {
	// Work from a copy: the profile must not change if the caller reuses
	// its messages.
	j = proto.CloneOf(j)
	p := &profile{
		id:        id,
		spec:      j,
		claim:     j.GetClaim(),
		value:     j.GetClaimValue(),
		issuers:   j.GetIssuers(),
		audiences: j.GetAudiences(),
		required:  j.GetRequiredClaims(),
	}
	if p.claim == "" {
		p.claim = defaultClaim
	}
	if p.value == "" {
		p.value = id
	}
	var fits algSet
	switch k := j.GetKey().(type) {
	case *authzv1.JwtAuth_HmacSecret:
		if len(k.HmacSecret) < minHMACSecret {
			return nil, fmt.Errorf("hmac_secret has %d bytes, at least %d are required", len(k.HmacSecret), minHMACSecret)
		}
		p.hmac, fits = []byte(k.HmacSecret), hmacAlgs
	case *authzv1.JwtAuth_PublicKeys:
		keys, err := parsePEMKeys(k.PublicKeys.GetPem())
		if err != nil {
			return nil, err
		}
		p.keys = keys
		for _, key := range keys {
			fits |= key.algs
		}
	case *authzv1.JwtAuth_JwksUrl, *authzv1.JwtAuth_OidcIssuer:
		oidc := j.GetOidcIssuer() != ""
		url := j.GetJwksUrl()
		if oidc {
			url = j.GetOidcIssuer()
			// An OIDC issuer signs its own tokens: hold iss to it unless the
			// profile lists issuers itself.
			if len(p.issuers) == 0 {
				p.issuers = []string{url}
			}
		}
		if url == "" {
			return nil, errors.New("empty key set location")
		}
		key := sourceKey(oidc, url)
		if p.src = old[key]; p.src == nil {
			if p.src = next[key]; p.src == nil {
				p.src = newKeySource(oidc, url)
			}
		}
		next[key] = p.src
		fits = asymmetricAlgs
	default:
		return nil, errors.New("jwt has no key")
	}
	p.algs = fits
	if len(j.GetAlgorithms()) > 0 {
		p.algs = 0
		for _, name := range j.GetAlgorithms() {
			a, ok := parseAlg(name)
			if !ok {
				return nil, fmt.Errorf("algorithm %q is not supported", name)
			}
			if !fits.has(a) {
				return nil, fmt.Errorf("algorithm %s does not fit the profile's keys, which take %s", a, fits)
			}
			p.algs |= setOf(a)
		}
	}
	return p, nil
}

// parsePEMKeys reads the public keys of a profile. A private key is refused:
// it does not belong in a verifier's config.
func parsePEMKeys(pems []string) ([]pubKey, error) {
	var keys []pubKey
	for i, pem := range pems {
		set, err := jwk.Parse([]byte(pem), jwk.WithPEM(true))
		if err != nil {
			return nil, fmt.Errorf("public_keys.pem[%d]: %w", i, err)
		}
		if set.Len() == 0 {
			return nil, fmt.Errorf("public_keys.pem[%d]: no key", i)
		}
		for n := range set.Len() {
			k, _ := set.Key(n)
			if private, err := jwk.IsPrivateKey(k); err != nil || private {
				return nil, fmt.Errorf("public_keys.pem[%d]: not a public key", i)
			}
			raw, err := jwk.PublicRawKeyOf(k)
			if err != nil {
				return nil, fmt.Errorf("public_keys.pem[%d]: %w", i, err)
			}
			algs, err := classify(raw)
			if err != nil {
				return nil, fmt.Errorf("public_keys.pem[%d]: %w", i, err)
			}
			keys = append(keys, pubKey{algs: algs, key: raw})
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("public_keys has no key")
	}
	return keys, nil
}
