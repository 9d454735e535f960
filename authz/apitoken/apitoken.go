// Package apitoken defines the format of Gatehouse API tokens and admin tokens.
//
// A token is a prefix naming its kind, 43 base62 characters holding 256 random bits, and 6
// base62 characters holding a CRC-32 of what precedes them:
//
//	gth_3kTMd9AqkV1pW5CzQ0aN7bYfG2hLr8uJxEo4sDi6vRw0Zc1xY9
//
// The prefix lets leaked tokens be found by secret scanners; the checksum lets a malformed or
// mistyped token be refused without a lookup. Only the SHA-256 of a token is ever stored.
package apitoken

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/big"
)

// Prefixes of the token kinds.
const (
	// APIPrefix starts API tokens, sent by callers in the API-Token header.
	APIPrefix = "gth_"
	// AdminPrefix starts admin tokens of the control plane's admin API.
	AdminPrefix = "gta_"
)

const (
	alphabet    = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	bodyLen     = 43 // ceil(256 / log2(62))
	checksumLen = 6  // ceil(32 / log2(62))
	prefixLen   = 4
	// Len is the length of every token.
	Len = prefixLen + bodyLen + checksumLen
	// displayLen is how much of a token is shown to recognise it: the prefix and 6 characters,
	// 36 bits, far too few to guess the rest from.
	displayLen = prefixLen + 6
)

// ErrMalformed is returned for a string that is not a well-formed token.
var ErrMalformed = errors.New("malformed token")

// Token is a newly made token. Secret is shown to its owner once and then forgotten.
type Token struct {
	// Secret is the whole token.
	Secret string
	// Hash is the SHA-256 of Secret, the only form that is stored.
	Hash [32]byte
	// Display is the token's first characters, for lists and logs.
	Display string
}

// New makes a token with the given prefix (APIPrefix or AdminPrefix) from the random source r,
// or from crypto/rand when r is nil.
func New(prefix string, r io.Reader) (Token, error) {
	if len(prefix) != prefixLen {
		return Token{}, fmt.Errorf("token prefix %q: must be %d characters", prefix, prefixLen)
	}
	if r == nil {
		r = rand.Reader
	}
	var raw [32]byte
	if _, err := io.ReadFull(r, raw[:]); err != nil {
		return Token{}, fmt.Errorf("read random bytes: %w", err)
	}
	buf := make([]byte, 0, Len)
	buf = append(buf, prefix...)
	buf = appendBase62(buf, new(big.Int).SetBytes(raw[:]), bodyLen)
	sum := crc32.ChecksumIEEE(buf)
	buf = appendBase62(buf, new(big.Int).SetUint64(uint64(sum)), checksumLen)
	s := string(buf)
	return Token{Secret: s, Hash: sha256.Sum256(buf), Display: s[:displayLen]}, nil
}

// Check reports whether s is a well-formed token with the given prefix: length, alphabet and
// checksum. It does not allocate, so it is cheap to run before any lookup.
func Check(prefix, s string) error {
	if len(s) != Len || s[:prefixLen] != prefix {
		return ErrMalformed
	}
	for i := prefixLen; i < Len; i++ {
		if decodeDigit(s[i]) < 0 {
			return ErrMalformed
		}
	}
	var sum uint64
	for i := Len - checksumLen; i < Len; i++ {
		sum = sum*62 + uint64(decodeDigit(s[i]))
	}
	if sum != uint64(checksum(s[:Len-checksumLen])) {
		return ErrMalformed
	}
	return nil
}

// Hash returns the SHA-256 of a token, the form in which tokens are stored and looked up.
func Hash(s string) [32]byte {
	return sha256.Sum256([]byte(s))
}

// Display returns the recognisable start of a token, safe to show and log.
func Display(s string) string {
	if len(s) < displayLen {
		return s
	}
	return s[:displayLen]
}

// checksum is CRC-32 (IEEE) of s, computed on the string so that Check does not allocate.
func checksum(s string) uint32 {
	crc := ^uint32(0)
	for i := 0; i < len(s); i++ {
		crc = crc32.IEEETable[byte(crc)^s[i]] ^ (crc >> 8)
	}
	return ^crc
}

// appendBase62 appends n in base62, left-padded with zeros to width digits.
func appendBase62(dst []byte, n *big.Int, width int) []byte {
	digits := make([]byte, width)
	base := big.NewInt(62)
	mod := new(big.Int)
	for i := width - 1; i >= 0; i-- {
		n.QuoRem(n, base, mod)
		digits[i] = alphabet[mod.Int64()]
	}
	return append(dst, digits...)
}

func decodeDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 36
	}
	return -1
}
