package admin

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// minRSABits refuses RSA keys too short to be safe.
const minRSABits = 2048

// validateProfile adds what PGV cannot check to v: CIDRs parse, PEM items are public keys of
// a supported kind, key URLs are http(s), and the allowed algorithms fit the key kind (an HMAC
// algorithm with a public key is the classic algorithm-confusion attack).
func validateProfile(v *violations, p *adminv1.AccessProfile) {
	for i, s := range p.GetIpAllow() {
		if _, err := parseCIDR(s); err != nil {
			v.add(fmt.Sprintf("access_profile.ip_allow[%d]", i), "%v", err)
		}
	}
	for i, s := range p.GetIpDeny() {
		if _, err := parseCIDR(s); err != nil {
			v.add(fmt.Sprintf("access_profile.ip_deny[%d]", i), "%v", err)
		}
	}
	jwt := p.GetJwt()
	if jwt == nil {
		return
	}
	var kinds []keyKind // of the valid PEM keys, each kind once
	for i, s := range jwt.GetPublicKeys().GetPem() {
		kind, err := checkPublicKey(s)
		if err != nil {
			v.add(fmt.Sprintf("access_profile.jwt.public_keys.pem[%d]", i), "%v", err)
			continue
		}
		if !slices.Contains(kinds, kind) {
			kinds = append(kinds, kind)
		}
	}
	for _, f := range []struct{ field, url string }{{"jwks_url", jwt.GetJwksUrl()}, {"oidc_issuer", jwt.GetOidcIssuer()}} {
		if f.url == "" || v.has("access_profile.jwt."+f.field) {
			continue
		}
		if u, err := url.Parse(f.url); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			v.add("access_profile.jwt."+f.field, "must be an http or https URL with a host, e.g. https://login.example.com")
		}
	}
	hmac := jwt.GetHmacSecret() != ""
	for i, alg := range jwt.GetAlgorithms() {
		isHMAC := strings.HasPrefix(alg, "HS")
		switch {
		case jwt.Key == nil:
		case hmac && !isHMAC:
			v.add(fmt.Sprintf("access_profile.jwt.algorithms[%d]", i), "%s needs a public key; with hmac_secret use HS256, HS384 or HS512", alg)
		case !hmac && isHMAC:
			v.add(fmt.Sprintf("access_profile.jwt.algorithms[%d]", i), "%s needs hmac_secret; public keys, JWKS and OIDC keys verify RS*, PS256, ES* and EdDSA", alg)
		case len(kinds) > 0 && !fitsAny(kinds, alg):
			// Only PEM keys are known here; a JWKS or OIDC key set can change after the fact.
			// The sidecars refuse a profile with an algorithm none of its keys can verify.
			v.add(fmt.Sprintf("access_profile.jwt.algorithms[%d]", i), "%s fits none of the public keys, which are %s; %s", alg, kindNames(kinds), kindAlgsHelp)
		}
	}
}

// parseCIDR parses an IPv4 or IPv6 CIDR; a bare address means that one address (/32 or /128).
// IPv4-mapped IPv6 addresses and prefixes of /96 or longer become IPv4 (::ffff:198.51.100.0/120
// is 198.51.100.0/24), so that one range has one spelling and matches IPv4 callers.
func parseCIDR(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, errors.New(`must be a CIDR such as "10.0.0.0/8" or "2001:db8::/32", or one address`)
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, errors.New(`must be a CIDR such as "10.0.0.0/8" or "2001:db8::/32", or one address`)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// normalizeProfile rewrites the IP lists in canonical CIDR form, so that the sidecars and
// anyone reading the profile see exactly the ranges that apply ("10.1.2.3/8" is 10.0.0.0/8).
// It runs after validateProfile has accepted every entry.
func normalizeProfile(p *adminv1.AccessProfile) {
	for _, list := range []*[]string{&p.IpAllow, &p.IpDeny} {
		for i, s := range *list {
			if c, err := parseCIDR(s); err == nil {
				(*list)[i] = c.String()
			}
		}
	}
}

// keyKind is a kind of JWT public key; each verifies its own algorithms only.
type keyKind string

// The key kinds the sidecars accept, with the algorithms each verifies.
const (
	keyRSA     keyKind = "RSA"
	keyP256    keyKind = "EC P-256"
	keyP384    keyKind = "EC P-384"
	keyEd25519 keyKind = "Ed25519"
)

// algs returns the JWT algorithms a key of kind k verifies.
func (k keyKind) algs() []string {
	switch k {
	case keyRSA:
		return []string{"RS256", "RS384", "RS512", "PS256"}
	case keyP256:
		return []string{"ES256"}
	case keyP384:
		return []string{"ES384"}
	case keyEd25519:
		return []string{"EdDSA"}
	}
	return nil
}

// kindAlgsHelp tells an operator which algorithm fits which key.
const kindAlgsHelp = "RSA keys verify RS256, RS384, RS512 and PS256, EC P-256 ES256, EC P-384 ES384, Ed25519 EdDSA"

// fitsAny reports whether some key of kinds verifies alg.
func fitsAny(kinds []keyKind, alg string) bool {
	for _, k := range kinds {
		if slices.Contains(k.algs(), alg) {
			return true
		}
	}
	return false
}

// kindNames lists kinds for a message, e.g. "RSA and EC P-256".
func kindNames(kinds []keyKind) string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = string(k)
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// checkPublicKey accepts one PEM block holding a public key (PKIX, PKCS #1 or a certificate)
// that a JWT algorithm can use: RSA of at least 2048 bits, ECDSA P-256 or P-384, or Ed25519.
// It returns the key's kind.
func checkPublicKey(s string) (keyKind, error) {
	block, rest := pem.Decode([]byte(s))
	if block == nil {
		return "", errors.New(`is not PEM: give a key that starts with "-----BEGIN PUBLIC KEY-----"`)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return "", errors.New("holds more than one PEM block: give one key per item")
	}
	var key any
	var err error
	switch {
	case block.Type == "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case block.Type == "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case block.Type == "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			key = cert.PublicKey
		}
	case strings.Contains(block.Type, "PRIVATE KEY"):
		return "", errors.New("is a private key: give only the public key and keep the private key secret")
	default:
		return "", fmt.Errorf("is a PEM %q block: give a PUBLIC KEY", block.Type)
	}
	if err != nil {
		return "", errors.New("does not parse as a public key")
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return "", fmt.Errorf("is a %d-bit RSA key: use at least %d bits", k.N.BitLen(), minRSABits)
		}
		return keyRSA, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return keyP256, nil
		case elliptic.P384():
			return keyP384, nil
		}
		return "", errors.New("is an ECDSA key on an unsupported curve: use P-256 (ES256) or P-384 (ES384)")
	case ed25519.PublicKey:
		return keyEd25519, nil
	}
	return "", errors.New("is not an RSA, ECDSA or Ed25519 key")
}
