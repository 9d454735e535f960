package check

import (
	"encoding/base64"
	"net/netip"
	"strings"
)

// Headers reads request headers. Names are passed lower-cased; an implementation returns
// repeated headers joined with ", " (as Envoy does) so that a doubled credential is seen.
type Headers interface {
	Get(name string) string
}

// MapHeaders is a header map with lower-case keys, the form Envoy sends in a CheckRequest.
type MapHeaders map[string]string

// Get returns the value of the lower-case header name.
func (h MapHeaders) Get(name string) string { return h[name] }

// Request is the protocol-neutral input of a decision; the gRPC and HTTP adapters build it.
type Request struct {
	// Method is the HTTP method, e.g. "GET".
	Method string
	// Path is the request target as sent: path and optional query.
	Path string
	// Headers are the request headers.
	Headers Headers
	// Source is the address of the peer that sent the request to the proxy (Envoy's
	// downstream address), or of the proxy itself in HTTP check mode.
	Source netip.Addr
	// EndpointID comes from the route's context_extensions; empty when absent, and then the
	// endpoint is found by method and path.
	EndpointID string
	// RequestID is the proxy's request id; a denial without one gets a generated id.
	RequestID string
	// SourceAppended is set by an adapter whose proxy appends Source to X-Forwarded-For
	// itself: Envoy with use_remote_address sends ext_authz the downstream peer it just
	// appended. A rightmost entry equal to Source is then Envoy's own and is not counted as
	// a trusted hop, so the hops are the proxies in front of Envoy. The HTTP check leaves it
	// unset: there Source is the proxy, and an equal rightmost entry is a caller on the
	// proxy's host whose own entries further left must not be believed.
	SourceAppended bool
	// ForgedIdentity is set by an adapter when the request carries x-gatehouse-* headers
	// that its proxy cannot strip (nginx): the request is refused as invalid credentials,
	// since such headers claim an identity only the gateway may assert.
	ForgedIdentity bool
}

// Credential header names.
const (
	HeaderAPIToken      = "api-token"
	HeaderAuthorization = "authorization"
	headerXFF           = "x-forwarded-for"
	basicUser           = "api-token"
	// maxJWT bounds the JWTs the verifier is asked about.
	maxJWT = 10 << 10
)

// credential is what the request authenticates with.
type credential struct {
	kind  AuthKind
	value string
}

// extractCredential finds the single credential of h: the API-Token header, Basic auth with
// user "api-token", or a Bearer token. None is MissingCredentials; two, an unknown scheme or a
// malformed Basic value are InvalidCredentials.
func extractCredential(h Headers) (credential, Code, string) {
	tok := h.Get(HeaderAPIToken)
	az := h.Get(HeaderAuthorization)
	if az == "" {
		if tok == "" {
			return credential{}, MissingCredentials, "the request has no API-Token header and no Authorization header"
		}
		return credential{kind: AuthAPIToken, value: tok}, OK, ""
	}
	if tok != "" {
		return credential{}, InvalidCredentials, "the request carries more than one credential"
	}
	scheme, rest, _ := strings.Cut(az, " ")
	rest = strings.TrimLeft(rest, " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		if rest == "" {
			return credential{}, InvalidCredentials, "the bearer token is empty"
		}
		return credential{kind: AuthJWT, value: rest}, OK, ""
	case strings.EqualFold(scheme, "Basic"):
		v, ok := basicAPIToken(rest)
		if !ok {
			return credential{}, InvalidCredentials, `basic credentials must carry user "api-token" and the API token as password`
		}
		return credential{kind: AuthAPIToken, value: v}, OK, ""
	}
	return credential{}, InvalidCredentials, "the Authorization scheme is not Bearer or Basic"
}

// basicAPIToken decodes "api-token:<token>" from a Basic credential.
func basicAPIToken(b64 string) (string, bool) {
	var buf [96]byte
	if base64.StdEncoding.DecodedLen(len(b64)) > len(buf) {
		return "", false
	}
	n, err := base64.StdEncoding.Decode(buf[:], []byte(b64))
	if err != nil {
		return "", false
	}
	user, pass, ok := strings.Cut(string(buf[:n]), ":")
	if !ok || user != basicUser || pass == "" {
		return "", false
	}
	return pass, true
}

// clientAddr is the real caller address: the source address, or with trusted hops the entry
// of X-Forwarded-For that the farthest trusted proxy appended. Entries further left were
// written by the caller and are never believed. With srcAppended, a rightmost entry equal to
// the source is the gateway's own and is dropped before the hops are counted. An unparsable
// entry yields the zero Addr, which no allow list admits.
func clientAddr(src netip.Addr, h Headers, trustedHops int, srcAppended bool) netip.Addr {
	if trustedHops <= 0 {
		return src.Unmap()
	}
	xff := h.Get(headerXFF)
	if xff == "" {
		return src.Unmap()
	}
	if srcAppended {
		i := strings.LastIndexByte(xff, ',')
		if a, err := netip.ParseAddr(strings.TrimSpace(xff[i+1:])); err == nil && a.Unmap() == src.Unmap() {
			if i < 0 {
				// Only the gateway's own entry: the source is the caller.
				return src.Unmap()
			}
			xff = xff[:i]
		}
	}
	// Walk from the right: the last entry is what the nearest trusted proxy saw.
	entry := ""
	for hop := 0; hop < trustedHops; hop++ {
		i := strings.LastIndexByte(xff, ',')
		entry = xff[i+1:]
		if i < 0 {
			break
		}
		xff = xff[:i]
	}
	entry = strings.TrimSpace(entry)
	a, err := netip.ParseAddr(entry)
	if err != nil {
		// Some proxies append "addr:port".
		ap, err := netip.ParseAddrPort(entry)
		if err != nil {
			return netip.Addr{}
		}
		a = ap.Addr()
	}
	return a.Unmap()
}

// stripQuery returns the path without its query or fragment.
func stripQuery(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		return p[:i]
	}
	return p
}
