package jwtauth

import "errors"

// Code says why a token was refused. Its String is stable: it is a metric label
// and may be shown as the detail class of an invalid_credentials problem.
//
// Every code but KeyUnavailable means the credentials are invalid (HTTP 401
// invalid_credentials). KeyUnavailable means the profile's key set has not been
// fetched yet, so no decision about the token is possible (HTTP 503
// key_unavailable).
//
// A Code is itself an error, so callers test with errors.Is(err, jwtauth.Expired).
type Code uint8

// Refusal codes.
const (
	// Malformed: not a compact JWS with JSON header and claims, or a claim of the wrong type.
	Malformed Code = iota + 1
	// TooLarge: the token is longer than Config.MaxTokenBytes.
	TooLarge
	// UnknownProfile: no JWT profile is selected by the token's claims.
	UnknownProfile
	// Algorithm: alg is none, unknown, or not allowed for the profile's key.
	Algorithm
	// Signature: no key of the profile verifies the signature.
	Signature
	// Expired: exp is past (beyond the leeway).
	Expired
	// NotYetValid: nbf or iat lies in the future (beyond the leeway).
	NotYetValid
	// Issuer: iss is missing or not one of the profile's issuers.
	Issuer
	// Audience: aud names none of the profile's audiences.
	Audience
	// MissingClaim: exp or a required claim is absent.
	MissingClaim
	// UnknownKey: kid names no key of the profile's key set. A refresh of the
	// key set is requested in the background, within the fetch rate bound.
	UnknownKey
	// KeyUnavailable: the profile's key set has never been fetched.
	KeyUnavailable
	numCodes
)

var codeNames = [numCodes]string{
	0:              "ok",
	Malformed:      "malformed",
	TooLarge:       "too_large",
	UnknownProfile: "unknown_profile",
	Algorithm:      "algorithm",
	Signature:      "signature",
	Expired:        "expired",
	NotYetValid:    "not_yet_valid",
	Issuer:         "issuer",
	Audience:       "audience",
	MissingClaim:   "missing_claim",
	UnknownKey:     "unknown_key",
	KeyUnavailable: "key_unavailable",
}

// String returns the stable name of c.
func (c Code) String() string {
	if c < numCodes {
		return codeNames[c]
	}
	return "unknown"
}

// Error makes a Code usable as a sentinel for errors.Is.
func (c Code) Error() string { return "jwt " + c.String() }

// Error is a refused token: a Code and a detail that never contains the token
// or any value taken from it.
type Error struct {
	Code   Code
	Detail string
}

// Error returns the code and the detail.
func (e *Error) Error() string {
	if e.Detail == "" {
		return e.Code.Error()
	}
	return e.Code.Error() + ": " + e.Detail
}

// Is reports whether target is e's Code.
func (e *Error) Is(target error) bool {
	c, ok := target.(Code)
	return ok && c == e.Code
}

// CodeOf returns the Code of an error returned by Verify, or 0 when err is nil
// or not a refusal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	var c Code
	if errors.As(err, &c) {
		return c
	}
	return 0
}

func refuse(c Code, detail string) error { return &Error{Code: c, Detail: detail} }
