package jwtauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// b64 is strict so that each token has exactly one encoding: a token with
// altered padding bits is refused instead of verifying under a new cache key.
var b64 = base64.RawURLEncoding.Strict()

// parsed is a compact JWS split and decoded but not yet verified. Nothing in
// it is trusted until the signature over signingInput checks out.
type parsed struct {
	alg          alg
	kid          string
	signingInput string
	sig          []byte
	claims       map[string]json.RawMessage
}

// parse splits and decodes a compact JWS. Headers and claims are decoded into
// maps of raw members: member names match exactly (encoding/json would match
// struct fields case-insensitively, so "ALG" could stand in for "alg"), a
// duplicate member resolves to the last one as RFC 7515 allows, and nested
// values stay unparsed, so deep JSON costs one linear scan and no recursion.
func parse(token string) (*parsed, error) {
	h, rest, ok := strings.Cut(token, ".")
	if !ok {
		return nil, refuse(Malformed, "not a compact JWS")
	}
	pl, s, ok := strings.Cut(rest, ".")
	if !ok || strings.IndexByte(s, '.') >= 0 {
		// Five parts is a JWE; encrypted tokens are not accepted.
		return nil, refuse(Malformed, "not a compact JWS")
	}
	hdr, err := decodeObject(h)
	if err != nil {
		return nil, refuse(Malformed, "header is not a base64url JSON object")
	}
	p := &parsed{signingInput: token[:len(h)+1+len(pl)]}
	rawAlg, ok := hdr["alg"]
	if !ok {
		return nil, refuse(Algorithm, "header has no alg")
	}
	var algName string
	if json.Unmarshal(rawAlg, &algName) != nil {
		return nil, refuse(Malformed, "alg is not a string")
	}
	if algName == "none" {
		return nil, refuse(Algorithm, "alg none is refused")
	}
	if p.alg, ok = parseAlg(algName); !ok {
		return nil, refuse(Algorithm, "unsupported alg")
	}
	if raw, ok := hdr["kid"]; ok && json.Unmarshal(raw, &p.kid) != nil {
		return nil, refuse(Malformed, "kid is not a string")
	}
	// No header extension is understood, so a token that marks one critical
	// must be refused (RFC 7515 section 4.1.11); b64=false (RFC 7797) would
	// change what is signed.
	if _, ok := hdr["crit"]; ok {
		return nil, refuse(Malformed, "crit header extensions are not supported")
	}
	if _, ok := hdr["b64"]; ok {
		return nil, refuse(Malformed, "b64 header is not supported")
	}
	if p.claims, err = decodeObject(pl); err != nil {
		return nil, refuse(Malformed, "claims are not a base64url JSON object")
	}
	if p.sig, err = b64.DecodeString(s); err != nil || len(p.sig) == 0 {
		return nil, refuse(Malformed, "signature is not base64url")
	}
	return p, nil
}

func decodeObject(seg string) (map[string]json.RawMessage, error) {
	raw, err := b64.DecodeString(seg)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	if m == nil { // the JSON was null
		return nil, errNotObject
	}
	return m, nil
}

var errNotObject = refuse(Malformed, "not a JSON object")

// stringClaim returns a string claim. present is false when the claim is
// absent or null.
func stringClaim(c map[string]json.RawMessage, name string) (v string, present bool, err error) {
	raw, ok := c[name]
	if !ok || isNull(raw) {
		return "", false, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", true, err
	}
	return v, true, nil
}

// maxNumericDate is 9999-12-31T23:59:59Z: later dates are clamped to it so
// that no float converts to an out-of-range time.
const maxNumericDate = 253402300799

// dateClaim returns a NumericDate claim (seconds since the epoch, fractions allowed).
func dateClaim(c map[string]json.RawMessage, name string) (t time.Time, present bool, ok bool) {
	raw, found := c[name]
	if !found || isNull(raw) {
		return time.Time{}, false, true
	}
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return time.Time{}, true, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) {
		return time.Time{}, true, false
	}
	f = math.Max(0, math.Min(f, maxNumericDate))
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true, true
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// checkClaims validates the registered and required claims of a token whose
// signature p has verified. It returns the token's expiry.
//
// exp is required: a token that never expires cannot be revoked other than
// by changing the profile's key, and the verified-token cache needs a bound.
func checkClaims(p *profile, c map[string]json.RawMessage, now time.Time, leeway time.Duration) (time.Time, error) {
	exp, present, ok := dateClaim(c, "exp")
	switch {
	case !ok:
		return time.Time{}, refuse(Malformed, "exp is not a NumericDate")
	case !present:
		return time.Time{}, refuse(MissingClaim, "exp is required")
	case now.After(exp.Add(leeway)):
		return time.Time{}, refuse(Expired, "token has expired")
	}
	if nbf, present, ok := dateClaim(c, "nbf"); !ok {
		return time.Time{}, refuse(Malformed, "nbf is not a NumericDate")
	} else if present && now.Add(leeway).Before(nbf) {
		return time.Time{}, refuse(NotYetValid, "nbf is in the future")
	}
	if iat, present, ok := dateClaim(c, "iat"); !ok {
		return time.Time{}, refuse(Malformed, "iat is not a NumericDate")
	} else if present && now.Add(leeway).Before(iat) {
		return time.Time{}, refuse(NotYetValid, "iat is in the future")
	}
	if len(p.issuers) > 0 {
		iss, present, err := stringClaim(c, "iss")
		switch {
		case err != nil:
			return time.Time{}, refuse(Malformed, "iss is not a string")
		case !present:
			return time.Time{}, refuse(Issuer, "iss is required")
		case !slices.Contains(p.issuers, iss):
			return time.Time{}, refuse(Issuer, "iss is not accepted")
		}
	}
	if len(p.audiences) > 0 {
		if err := checkAudience(c["aud"], p.audiences); err != nil {
			return time.Time{}, err
		}
	}
	for _, name := range p.required {
		if raw, ok := c[name]; !ok || isNull(raw) {
			return time.Time{}, refuse(MissingClaim, "required claim "+strconv.Quote(name)+" is missing")
		}
	}
	return exp, nil
}

// checkAudience accepts aud as one string or an array of strings (RFC 7519
// section 4.1.3) when one of them is an accepted audience.
func checkAudience(raw json.RawMessage, accepted []string) error {
	if len(raw) == 0 || isNull(raw) {
		return refuse(Audience, "aud is required")
	}
	var auds []string
	if raw[0] == '[' {
		if json.Unmarshal(raw, &auds) != nil {
			return refuse(Malformed, "aud is not a string or an array of strings")
		}
	} else {
		var one string
		if json.Unmarshal(raw, &one) != nil {
			return refuse(Malformed, "aud is not a string or an array of strings")
		}
		auds = []string{one}
	}
	for _, a := range auds {
		if slices.Contains(accepted, a) {
			return nil
		}
	}
	return refuse(Audience, "aud names no accepted audience")
}

// claimsJSON renders verified claims as compact JSON for the recipe, members
// sorted by name. It is rendered from the same decoded members the checks
// saw, so a duplicate claim cannot mean one thing here and another to the
// recipe's JSON parser.
func claimsJSON(c map[string]json.RawMessage) ([]byte, error) {
	names := slices.Sorted(maps.Keys(c))
	size := 2
	for name, raw := range c {
		size += len(name) + len(raw) + 4
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	buf.WriteByte('{')
	for i, name := range names {
		if i > 0 {
			buf.WriteByte(',')
		}
		if plainKey(name) {
			buf.WriteByte('"')
			buf.WriteString(name)
			buf.WriteByte('"')
		} else {
			q, err := json.Marshal(name)
			if err != nil {
				return nil, err
			}
			buf.Write(q)
		}
		buf.WriteByte(':')
		if err := json.Compact(buf, c[name]); err != nil {
			return nil, err
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// plainKey reports whether name needs no escaping in JSON.
func plainKey(name string) bool {
	for i := range len(name) {
		if b := name[i]; b < 0x20 || b >= 0x7f || b == '"' || b == '\\' || b == '<' || b == '>' || b == '&' {
			return false
		}
	}
	return true
}
