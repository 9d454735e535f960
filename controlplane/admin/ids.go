package admin

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"strings"
)

// ID prefixes say what kind of resource an id names, which helps operators reading logs.
const (
	prefixCollection = "col_"
	prefixEndpoint   = "ep_"
	prefixClient     = "cli_"
	prefixProfile    = "prf_"
	prefixToken      = "tok_"
	prefixPolicy     = "pol_"
	prefixAdminToken = "adm_"
)

// idEncoding is lower-case base32: ids are case-insensitive safe and need no URL escaping.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns prefix followed by 80 random bits, enough that ids never collide in practice.
func newID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it panics when the OS source does)
	return prefix + idEncoding.EncodeToString(b[:])
}

// Page sizes.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

func pageSize(n int32) int {
	switch {
	case n <= 0:
		return defaultPageSize
	case n > maxPageSize:
		return maxPageSize
	}
	return int(n)
}

// pageToken is opaque to clients: it carries the list it belongs to and the last id returned,
// so a token from one list cannot be replayed against another.
func pageToken(list, last string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(list + "\x00" + last))
}

// parsePageToken returns the last id a token carries for list; "" for an empty token.
func parsePageToken(list, token string) (string, error) {
	if token == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	var v violations
	v.add("page_token", "is not a next_page_token of this list; list again without it")
	bad := v.err()
	if err != nil {
		return "", bad
	}
	l, last, ok := strings.Cut(string(raw), "\x00")
	if !ok || l != list || last == "" || strings.ContainsAny(last, "/\x00") {
		return "", bad
	}
	return last, nil
}

// listKey names a list for page tokens: the resource kind and its parent.
func listKey(kind, parent string) string {
	return fmt.Sprintf("%s:%s", kind, parent)
}
