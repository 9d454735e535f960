package check

import (
	"strconv"
	"unicode/utf8"

	"gatehouse/authz/apitoken"
	"gatehouse/authz/limit"
)

// Upstream header names the authz owns. On OK it sets those that apply and removes any other
// x-gatehouse-* header the caller sent, so that none can be spoofed.
const (
	HeaderClientID     = "x-gatehouse-client-id"
	HeaderProfileID    = "x-gatehouse-profile-id"
	HeaderAuthMethod   = "x-gatehouse-auth-method"
	HeaderTokenID      = "x-gatehouse-token-id"
	HeaderEndpointID   = "x-gatehouse-endpoint-id"
	HeaderCollectionID = "x-gatehouse-collection-id"
	HeaderRecipeID     = "x-gatehouse-recipe-id"
	HeaderJWTClaims    = "x-gatehouse-jwt-claims"
	// OwnedHeaderPrefix starts every header the authz owns.
	OwnedHeaderPrefix = "x-gatehouse-"
)

// FixedHeaders lists the owned upstream headers that do not depend on the endpoint, for
// proxies (nginx, Caddy) that copy a fixed list of headers from the check response.
var FixedHeaders = [...]string{
	HeaderClientID, HeaderProfileID, HeaderAuthMethod, HeaderTokenID,
	HeaderEndpointID, HeaderCollectionID, HeaderRecipeID, HeaderJWTClaims,
}

// Response header names of denials.
const (
	HeaderContentType     = "content-type"
	HeaderWWWAuthenticate = "www-authenticate"
	HeaderRequestID       = "x-request-id"
	ProblemContentType    = "application/problem+json"
)

// Header is one header name and value.
type Header struct {
	Name  string
	Value string
}

// Decision is the outcome of one request and what the response needs.
type Decision struct {
	// Code is OK or why the request was refused.
	Code Code
	// Detail explains a refusal to the caller; it never contains a credential.
	Detail string
	// RequestID is the proxy's request id, or a generated one on refusal.
	RequestID string
	// ConfigVersion is the version of the config that decided.
	ConfigVersion string
	// Endpoint is the matched endpoint, once known.
	Endpoint *Endpoint
	// Profile is the authenticated access profile, once known.
	Profile *Profile
	// Auth is the kind of credential the request carried.
	Auth AuthKind
	// TokenID is the id of the API token that authenticated; Token is that token.
	TokenID string
	Token   *Token
	// Params are the endpoint's path parameters.
	Params []Param
	// Claims is the base64url (unpadded) verified JWT claims JSON.
	Claims string
	// Limited is set when the limiter decided; Limit is its answer.
	Limited bool
	Limit   limit.Decision
	// Challenge is the WWW-Authenticate value of a 401.
	Challenge string

	paramBuf [8]Param
}

// Reset clears d for reuse.
func (d *Decision) Reset() {
	*d = Decision{}
}

// Allowed reports whether the request may proceed.
func (d *Decision) Allowed() bool { return d.Code == OK }

// Status is the HTTP status of the response.
func (d *Decision) Status() int { return d.Code.Status() }

// AppendUpstream appends the headers an allowed request carries upstream.
func (d *Decision) AppendUpstream(dst []Header) []Header {
	if d.Code != OK {
		return dst
	}
	dst = append(dst,
		Header{HeaderClientID, d.Profile.ClientID},
		Header{HeaderProfileID, d.Profile.ID},
		Header{HeaderAuthMethod, d.Auth.String()},
		Header{HeaderEndpointID, d.Endpoint.ID},
		Header{HeaderCollectionID, d.Endpoint.CollectionID},
		Header{HeaderRecipeID, d.Endpoint.RecipeID},
	)
	if d.TokenID != "" {
		dst = append(dst, Header{HeaderTokenID, d.TokenID})
	}
	if d.Claims != "" {
		dst = append(dst, Header{HeaderJWTClaims, d.Claims})
	}
	for _, p := range d.Params {
		dst = append(dst, Header{p.Header, p.Value})
	}
	return dst
}

// Sets reports whether an allowed d sets the upstream header name (lower-case).
func (d *Decision) Sets(name string) bool {
	switch name {
	case HeaderClientID, HeaderProfileID, HeaderAuthMethod, HeaderEndpointID, HeaderCollectionID, HeaderRecipeID:
		return true
	case HeaderTokenID:
		return d.TokenID != ""
	case HeaderJWTClaims:
		return d.Claims != ""
	}
	for _, p := range d.Params {
		if p.Header == name {
			return true
		}
	}
	return false
}

// AppendLimitHeaders appends RateLimit, RateLimit-Policy and, on refusal, Retry-After, when
// the limiter decided.
func (d *Decision) AppendLimitHeaders(dst []Header) []Header {
	if !d.Limited {
		return dst
	}
	var buf [160]byte
	if v := d.Limit.AppendRateLimit(buf[:0]); len(v) > 0 {
		dst = append(dst, Header{limit.HeaderRateLimit, string(v)})
	}
	if v := d.Limit.AppendPolicy(buf[:0]); len(v) > 0 {
		dst = append(dst, Header{limit.HeaderRateLimitPolicy, string(v)})
	}
	if s := d.Limit.RetryAfterSeconds(); s > 0 {
		dst = append(dst, Header{limit.HeaderRetryAfter, strconv.FormatInt(s, 10)})
	}
	return dst
}

// AppendDenyHeaders appends the response headers of a refusal: content type, request id,
// WWW-Authenticate on 401 and the limit headers on 429.
func (d *Decision) AppendDenyHeaders(dst []Header) []Header {
	dst = append(dst, Header{HeaderContentType, ProblemContentType}, Header{HeaderRequestID, d.RequestID})
	if d.Challenge != "" && d.Code.Status() == 401 {
		dst = append(dst, Header{HeaderWWWAuthenticate, d.Challenge})
	}
	return d.AppendLimitHeaders(dst)
}

// AppendProblem appends the RFC 9457 problem+json body of a refusal.
func (d *Decision) AppendProblem(dst []byte) []byte {
	code := d.Code.String()
	dst = append(dst, `{"type":"`...)
	dst = append(dst, ProblemTypePrefix...)
	dst = append(dst, code...)
	dst = append(dst, `","title":`...)
	dst = appendJSONString(dst, d.Code.Title())
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(d.Code.Status()), 10)
	dst = append(dst, `,"detail":`...)
	dst = appendJSONString(dst, d.Detail)
	dst = append(dst, `,"code":"`...)
	dst = append(dst, code...)
	dst = append(dst, `","request_id":`...)
	dst = appendJSONString(dst, d.RequestID)
	return append(dst, '}')
}

// appendJSONString appends s as a JSON string, escaping quotes, backslashes and control
// characters and replacing invalid UTF-8.
func appendJSONString(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// Redacted is what a secret header value is logged as.
const Redacted = "[redacted]"

// RedactHeader returns the value of header name (lower-case) as it may be logged: credential
// headers become Redacted, or for a well-formed API token its recognisable prefix, which is
// too short to use. Every other header is returned unchanged.
func RedactHeader(name, value string) string {
	switch name {
	case HeaderAPIToken:
		if apitoken.Check(apitoken.APIPrefix, value) == nil {
			return apitoken.Display(value) + "…"
		}
		return Redacted
	case HeaderAuthorization, "proxy-authorization", "cookie", "set-cookie", HeaderJWTClaims:
		return Redacted
	}
	return value
}
