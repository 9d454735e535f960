package jwtauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"math/bits"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// alg is one of the signing algorithms DESIGN.md accepts. Everything else,
// "none" above all, has no alg value and is refused before any key is touched.
type alg uint8

const (
	hs256 alg = iota
	hs384
	hs512
	rs256
	rs384
	rs512
	ps256
	es256
	es384
	edDSA
	numAlgs
)

var algNames = [numAlgs]string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"}

var algJWA = [numAlgs]func() jwa.SignatureAlgorithm{
	jwa.HS256, jwa.HS384, jwa.HS512, jwa.RS256, jwa.RS384, jwa.RS512, jwa.PS256, jwa.ES256, jwa.ES384, jwa.EdDSA,
}

func (a alg) String() string { return algNames[a] }

// parseAlg maps a header alg to an alg. It is case-sensitive, as RFC 7515 is:
// "hs256" or "None" are unknown.
func parseAlg(s string) (alg, bool) {
	for a, n := range algNames {
		if n == s {
			return alg(a), true
		}
	}
	return 0, false
}

// algSet is a set of algs as a bit mask, so the per-request check is one AND.
type algSet uint16

func setOf(as ...alg) algSet {
	var s algSet
	for _, a := range as {
		s |= 1 << a
	}
	return s
}

func (s algSet) has(a alg) bool { return s&(1<<a) != 0 }

func (s algSet) String() string {
	names := make([]string, 0, bits.OnesCount16(uint16(s)))
	for a := range numAlgs {
		if s.has(a) {
			names = append(names, a.String())
		}
	}
	return "[" + strings.Join(names, " ") + "]"
}

// Algorithms that fit each key kind. The sets are disjoint between symmetric
// and asymmetric kinds, which is what refuses algorithm confusion: a profile
// with public keys never accepts HS*, whatever the token claims.
var (
	hmacAlgs       = setOf(hs256, hs384, hs512)
	rsaAlgs        = setOf(rs256, rs384, rs512, ps256)
	p256Algs       = setOf(es256)
	p384Algs       = setOf(es384)
	ed25519Algs    = setOf(edDSA)
	asymmetricAlgs = rsaAlgs | p256Algs | p384Algs | ed25519Algs
)

// verifiers holds jwx's signature verifier of each alg, looked up once.
type verifiers [numAlgs]jws.Verifier2

func newVerifiers() (verifiers, error) {
	var v verifiers
	for a := range numAlgs {
		vf, err := jws.VerifierFor(algJWA[a]())
		if err != nil {
			return v, fmt.Errorf("signature verifier for %s: %w", a, err)
		}
		v[a] = vf
	}
	return v, nil
}

// pubKey is one public key of a profile with the algorithms it may verify.
type pubKey struct {
	kid  string
	algs algSet
	key  any // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// classify returns the algorithms that fit a raw public key, or an error for
// key kinds DESIGN.md does not list.
func classify(raw any) (algSet, error) {
	switch k := raw.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return 0, fmt.Errorf("RSA key of %d bits: at least 2048 are required", k.N.BitLen())
		}
		return rsaAlgs, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return p256Algs, nil
		case elliptic.P384():
			return p384Algs, nil
		}
		return 0, fmt.Errorf("EC key on curve %s: only P-256 and P-384 are supported", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return ed25519Algs, nil
	}
	return 0, fmt.Errorf("unsupported key type %T", raw)
}

func sameKey(a, b any) bool {
	type equaler interface{ Equal(x crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}
