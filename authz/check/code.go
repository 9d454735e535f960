package check

// Code says why a request was refused, or OK. Its String is stable: it is the problem+json
// "code", the last segment of the problem "type" and the metric label.
type Code uint8

// Decision codes.
const (
	// OK allows the request.
	OK Code = iota
	// MissingCredentials means the request carries no credential (401).
	MissingCredentials
	// InvalidCredentials means the credential is malformed, unknown, expired, revoked, badly
	// signed, carries bad claims, or two credentials were sent at once (401).
	InvalidCredentials
	// CollectionNotAllowed means the profile does not grant the endpoint's collection (403).
	CollectionNotAllowed
	// ClientDisabled means the profile's client is disabled (403).
	ClientDisabled
	// ProfileDisabled means the access profile is disabled (403).
	ProfileDisabled
	// IPNotAllowed means the caller's address is denied or not in the allow list (403).
	IPNotAllowed
	// EndpointNotFound means no active endpoint matches the request (404).
	EndpointNotFound
	// RateLimited means the policy's rate limit refused the request (429).
	RateLimited
	// QuotaExceeded means the policy's quota of the current window is used up (429).
	QuotaExceeded
	// LimiterUnavailable means the limiter could not decide; the request fails closed (503).
	LimiterUnavailable
	// ConfigUnavailable means no config has been received yet (503).
	ConfigUnavailable
	// KeyUnavailable means the JWT verification keys have not been fetched yet (503).
	KeyUnavailable
	// NumCodes is the number of codes, for tables indexed by Code.
	NumCodes
)

type codeInfo struct {
	name   string
	status int
	title  string
}

var codeInfos = [NumCodes]codeInfo{
	OK:                   {"ok", 200, "OK"},
	MissingCredentials:   {"missing_credentials", 401, "Missing credentials"},
	InvalidCredentials:   {"invalid_credentials", 401, "Invalid credentials"},
	CollectionNotAllowed: {"collection_not_allowed", 403, "Collection not allowed"},
	ClientDisabled:       {"client_disabled", 403, "Client disabled"},
	ProfileDisabled:      {"profile_disabled", 403, "Access profile disabled"},
	IPNotAllowed:         {"ip_not_allowed", 403, "IP address not allowed"},
	EndpointNotFound:     {"endpoint_not_found", 404, "Endpoint not found"},
	RateLimited:          {"rate_limited", 429, "Rate limit exceeded"},
	QuotaExceeded:        {"quota_exceeded", 429, "Quota exceeded"},
	LimiterUnavailable:   {"limiter_unavailable", 503, "Rate limiter unavailable"},
	ConfigUnavailable:    {"config_unavailable", 503, "Configuration unavailable"},
	KeyUnavailable:       {"key_unavailable", 503, "Verification keys unavailable"},
}

// String returns the stable machine name of c, e.g. "invalid_credentials".
func (c Code) String() string {
	if c >= NumCodes {
		return "unknown"
	}
	return codeInfos[c].name
}

// Status returns the HTTP status the code answers with.
func (c Code) Status() int {
	if c >= NumCodes {
		return 500
	}
	return codeInfos[c].status
}

// Title returns the short human summary used as the problem "title".
func (c Code) Title() string {
	if c >= NumCodes {
		return "Internal error"
	}
	return codeInfos[c].title
}

// ProblemTypePrefix starts every problem "type" URI; the code follows it.
const ProblemTypePrefix = "https://gatehouse.dev/problems/"
