package admin

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"gatehouse/controlplane/store"
)

// errorDomain names the admin API in ErrorInfo details.
const errorDomain = "admin.gatehouse.dev"

// Reasons in ErrorInfo details: stable machine codes for conflicts, so clients branch on them
// rather than on messages.
const (
	reasonDuplicateName = "DUPLICATE_NAME"
	reasonDuplicatePath = "DUPLICATE_PATH"
	reasonRouteClash    = "ROUTE_CLASH"
	reasonStaleEtag     = "STALE_ETAG"
	reasonReferenced    = "REFERENCED"
	reasonLimit         = "LIMIT_REACHED"
	reasonWrongAuth     = "WRONG_AUTH_KIND"
	reasonTokenState    = "TOKEN_STATE"
)

// violations collects field violations of one request; the zero value is ready to use.
type violations []*errdetails.BadRequest_FieldViolation

// add records that field is wrong and what to do about it.
func (v *violations) add(field, format string, args ...any) {
	*v = append(*v, &errdetails.BadRequest_FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
}

// has reports whether a violation of field was recorded.
func (v violations) has(field string) bool {
	for _, fv := range v {
		if fv.GetField() == field {
			return true
		}
	}
	return false
}

// err returns nil when nothing was recorded, else INVALID_ARGUMENT with a BadRequest detail
// listing every violation; the message names them too, for clients that only print messages.
func (v violations) err() error {
	if len(v) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("invalid request: ")
	for i, fv := range v {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(fv.GetField())
		b.WriteString(": ")
		b.WriteString(fv.GetDescription())
	}
	return withDetails(status.New(codes.InvalidArgument, b.String()), &errdetails.BadRequest{FieldViolations: v})
}

// validator is a request or resource with protoc-gen-validate rules.
type validator interface{ ValidateAll() error }

// checkRequest refuses a request that breaks its PGV rules, listing every violation.
func checkRequest(req validator) error {
	var v violations
	v.addPGV("", req.ValidateAll())
	return v.err()
}

// pgvError is what protoc-gen-validate's per-field errors implement.
type pgvError interface {
	Field() string
	Reason() string
	Cause() error
}

// multiError is what protoc-gen-validate's ValidateAll errors implement.
type multiError interface{ AllErrors() []error }

// addPGV flattens a ValidateAll error into field violations under prefix (e.g. "endpoint").
// Only PGV's reasons are used, never a cause's text, which could quote a rejected value.
func (v *violations) addPGV(prefix string, err error) {
	if err == nil {
		return
	}
	if m, ok := err.(multiError); ok {
		for _, e := range m.AllErrors() {
			v.addPGV(prefix, e)
		}
		return
	}
	var fe pgvError
	if !errors.As(err, &fe) {
		v.add(prefix, "is invalid")
		return
	}
	field := joinField(prefix, snakeField(fe.Field()))
	if c := fe.Cause(); c != nil {
		var inner pgvError
		if _, ok := c.(multiError); ok || errors.As(c, &inner) {
			v.addPGV(field, c)
			return
		}
	}
	if v.has(field) {
		return // one violation per field: several rules of one field fail together
	}
	v.add(field, "%s", describe(field, fe.Reason()))
}

func joinField(prefix, field string) string {
	switch {
	case prefix == "":
		return field
	case field == "":
		return prefix
	}
	return prefix + "." + field
}

// snakeField turns PGV's Go field names ("CollectionIds[2]") into proto names
// ("collection_ids[2]"), the names REST and gRPC callers use.
func snakeField(s string) string {
	var b strings.Builder
	inIndex := false
	for i, r := range s {
		switch {
		case r == '[':
			inIndex = true
		case r == ']':
			inIndex = false
		case !inIndex && unicode.IsUpper(r):
			if i > 0 && s[i-1] != '.' {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// describe returns what a user should do about a failed rule of field: a hint for the fields
// whose PGV reason is a regular expression or a list, else PGV's reason. Hints are keyed by
// the last two parts of the field path without indexes, e.g. "jwt.claim".
func describe(field, reason string) string {
	key := field
	if i := strings.IndexByte(key, '['); i >= 0 {
		key = key[:i]
	}
	if parts := strings.Split(key, "."); len(parts) > 2 {
		key = strings.Join(parts[len(parts)-2:], ".")
	}
	switch key {
	case "collection.path":
		return `must be lower-case letters, digits and inner dashes, at most 63, e.g. "sales-api-v1"; "oauth2" is reserved`
	case "collection.version":
		return `must be 1 to 10 letters, digits, ".", "_" or "-", e.g. "v1"`
	case "endpoint.path":
		return `must be "/" or "/segment" parts, each a literal or a {name} parameter, e.g. "/invoices/{id}"`
	case "endpoint.recipe_id":
		return `must be 1 to 128 letters, digits, ".", "_", ":" or "-"`
	case "endpoint.method":
		return "must be one of GET, POST, PUT, PATCH, DELETE"
	case "endpoint.timeout":
		return "must be more than 0s and at most 240s"
	case "rate_limit.per":
		return `must be "second", "minute" or "hour"`
	case "quota.per":
		return `must be "day", "week" or "month"`
	case "jwt.claim":
		return `must be a claim name of letters, digits, "_", ".", ":" or "-"`
	case "access_profile.auth":
		return `must set exactly one of "api_token" or "jwt"`
	case "jwt.key":
		return `must set exactly one of "hmac_secret", "public_keys", "jwks_url" or "oidc_issuer"`
	case "jwt.algorithms":
		return "must be distinct values of HS256, HS384, HS512, RS256, RS384, RS512, PS256, ES256, ES384, EdDSA"
	case "jwt.hmac_secret":
		return "must be 32 to 1024 characters"
	case "client.email":
		return "must be an e-mail address such as team@example.com"
	}
	return reason
}

// withDetails attaches details to st; a detail that cannot be attached is dropped rather than
// losing the status itself.
func withDetails(st *status.Status, details ...protoadapt.MessageV1) error {
	if d, err := st.WithDetails(details...); err == nil {
		return d.Err()
	}
	return st.Err()
}

func notFound(kind, id string) error {
	return status.Errorf(codes.NotFound, "%s %q not found", kind, id)
}

// conflict is ALREADY_EXISTS (HTTP 409) for a name, path or route another resource has.
func conflict(reason, field, msg string) error {
	return withDetails(status.New(codes.AlreadyExists, msg),
		&errdetails.ErrorInfo{Reason: reason, Domain: errorDomain, Metadata: map[string]string{"field": field}},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: msg}}},
	)
}

// precondition is FAILED_PRECONDITION (HTTP 409): the request is well formed but the current
// state refuses it.
func precondition(reason, msg string) error {
	return withDetails(status.New(codes.FailedPrecondition, msg), &errdetails.ErrorInfo{Reason: reason, Domain: errorDomain})
}

// checkEtag refuses a write made against an older version of the resource.
func checkEtag(kind, id, want, have string) error {
	if want == "" || want == have {
		return nil
	}
	st := status.New(codes.Aborted, fmt.Sprintf("%s %q changed since it was read (etag %s, now %s): get it again and retry", kind, id, want, have))
	return withDetails(st, &errdetails.ErrorInfo{Reason: reasonStaleEtag, Domain: errorDomain})
}

// referenced turns the store's refusal to delete a resource still in use into
// FAILED_PRECONDITION with a PreconditionFailure listing each referrer.
func referenced(re *store.ReferencedError, hint string) error {
	msg := re.Error()
	if hint != "" {
		msg += "; " + hint
	}
	pf := &errdetails.PreconditionFailure{}
	for _, r := range re.By {
		pf.Violations = append(pf.Violations, &errdetails.PreconditionFailure_Violation{
			Type:        reasonReferenced,
			Subject:     r.Kind + "/" + r.ID,
			Description: fmt.Sprintf("%s %s (%q) refers to %s %s", r.Kind, r.ID, r.Name, re.Kind, re.ID),
		})
	}
	return withDetails(status.New(codes.FailedPrecondition, msg), &errdetails.ErrorInfo{Reason: reasonReferenced, Domain: errorDomain}, pf)
}

// storeErr maps an error from the store or from a write function to a status. Status errors
// pass through; not-found and referenced errors get their codes; anything else is logged and
// returned as INTERNAL without its text, which could name storage details.
func storeErr(log *slog.Logger, op string, err error) error {
	if err == nil {
		return nil
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return se.GRPCStatus().Err()
	}
	var re *store.ReferencedError
	if errors.As(err, &re) {
		return referenced(re, "")
	}
	if store.IsNotFound(err) {
		return status.Error(codes.NotFound, err.Error())
	}
	log.Error("admin store operation failed", "op", op, "err", err)
	return status.Errorf(codes.Internal, "%s failed; see the control plane log", op)
}
