package admin

import (
	"context"
	"crypto/subtle"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"gatehouse/authz/apitoken"
	"gatehouse/controlplane/store"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// EnvAdminToken is the environment variable that may hold the admin token.
const EnvAdminToken = "GATEHOUSE_ADMIN_TOKEN"

// envTokenID is the id of the admin token taken from EnvAdminToken; a new value replaces it.
const envTokenID = "adm_env"

// systemActor names changes made by the control plane itself in the audit log.
const systemActor = "system"

// callerKey carries the authenticated admin token in a request context.
type callerKey struct{}

func withCaller(ctx context.Context, t *adminv1.AdminToken) context.Context {
	return context.WithValue(ctx, callerKey{}, t)
}

// actorFrom names the caller for the audit log: the admin token's id and name.
func actorFrom(ctx context.Context) string {
	t, ok := ctx.Value(callerKey{}).(*adminv1.AdminToken)
	if !ok {
		return systemActor
	}
	return t.GetId() + " (" + t.GetName() + ")"
}

// authenticator checks admin tokens against the hashes in the store. It caches the hashes for
// the store revision it read them at.
type authenticator struct {
	store  *store.Store
	mu     sync.Mutex
	rev    uint64
	loaded bool
	tokens []*adminv1.AdminToken
}

func newAuthenticator(st *store.Store) *authenticator {
	return &authenticator{store: st}
}

var errUnauthenticated = status.Error(codes.Unauthenticated,
	"missing or invalid admin token: send \"Authorization: Bearer gta_...\" with a token of this control plane")

// authenticate returns ctx carrying the admin token that authorization ("Bearer <token>")
// presents, or UNAUTHENTICATED. It never echoes the presented value.
func (a *authenticator) authenticate(ctx context.Context, authorization string) (context.Context, error) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, errUnauthenticated
	}
	tok = strings.TrimSpace(tok)
	if apitoken.Check(apitoken.AdminPrefix, tok) != nil {
		return nil, errUnauthenticated
	}
	tokens, err := a.cached()
	if err != nil {
		return nil, status.Error(codes.Unavailable, "admin tokens cannot be read; try again")
	}
	if t := match(tokens, apitoken.Hash(tok)); t != nil {
		return withCaller(ctx, t), nil
	}
	return nil, errUnauthenticated
}

// match compares sum with every stored hash in constant time, so timing tells nothing about
// how close a guess was.
func match(tokens []*adminv1.AdminToken, sum [32]byte) *adminv1.AdminToken {
	var found *adminv1.AdminToken
	for _, t := range tokens {
		if subtle.ConstantTimeCompare(t.GetSecretSha256(), sum[:]) == 1 {
			found = t
		}
	}
	return found
}

// cached returns the admin tokens, reading them again when the store has moved on since they
// were read, so a replaced token stops working at once.
func (a *authenticator) cached() ([]*adminv1.AdminToken, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.loaded && a.store.Revision() == a.rev {
		return a.tokens, nil
	}
	var tokens []*adminv1.AdminToken
	var rev uint64
	err := a.store.View(func(tx *store.Tx) error {
		rev = tx.Revision()
		var err error
		tokens, err = store.List(tx, store.AdminTokens, "", "", 0)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load admin tokens: %w", err)
	}
	a.tokens, a.rev, a.loaded = tokens, rev, true
	return tokens, nil
}

// publicMethods are served without an admin token: health checks.
func publicMethod(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/")
}

// authInterceptor authenticates every admin RPC from its "authorization" metadata.
func (a *authenticator) interceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if publicMethod(info.FullMethod) {
			return handler(ctx, req)
		}
		md, _ := metadata.FromIncomingContext(ctx)
		var authz string
		if v := md.Get("authorization"); len(v) > 0 {
			authz = v[0]
		}
		ctx, err := a.authenticate(ctx, authz)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// Bootstrap makes sure the admin API can be reached. When envToken (the value of
// GATEHOUSE_ADMIN_TOKEN) is set it must be a well-formed admin token, and its hash is stored as
// the "env" admin token. Otherwise, on the first start (no admin token stored) it creates one
// and returns its secret, which the caller prints once; only the hash is kept. It returns ""
// when nothing needs printing.
func Bootstrap(ctx context.Context, st *store.Store, envToken string, now time.Time) (string, error) {
	if envToken != "" {
		if err := apitoken.Check(apitoken.AdminPrefix, envToken); err != nil {
			return "", fmt.Errorf("%s is not a well-formed admin token: make one with `gatehouse-controlplane admin-token` and put its output in %s", EnvAdminToken, EnvAdminToken)
		}
		sum := apitoken.Hash(envToken)
		_, err := st.Update(func(tx *store.Tx) error {
			cur, err := store.Get(tx, store.AdminTokens, "", envTokenID)
			if err == nil && subtle.ConstantTimeCompare(cur.GetSecretSha256(), sum[:]) == 1 {
				return nil // already stored: no write, no new revision
			}
			if err != nil && !store.IsNotFound(err) {
				return err
			}
			action := "create"
			if err == nil {
				action = "update"
			}
			t := &adminv1.AdminToken{Id: envTokenID, Name: "env", SecretSha256: sum[:], CreateTime: timestamppb.New(now)}
			return putAdminToken(tx, t, action, now)
		})
		if err != nil {
			return "", fmt.Errorf("store the admin token from %s: %w", EnvAdminToken, err)
		}
		return "", nil
	}
	var secret string
	_, err := st.Update(func(tx *store.Tx) error {
		existing, err := store.List(tx, store.AdminTokens, "", "", 1)
		if err != nil || len(existing) > 0 {
			return err
		}
		tok, err := apitoken.New(apitoken.AdminPrefix, nil)
		if err != nil {
			return err
		}
		t := &adminv1.AdminToken{Id: newID(prefixAdminToken), Name: "bootstrap", SecretSha256: tok.Hash[:], CreateTime: timestamppb.New(now)}
		if err := putAdminToken(tx, t, "create", now); err != nil {
			return err
		}
		secret = tok.Secret
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("create the first admin token: %w", err)
	}
	return secret, nil
}

// putAdminToken stores an admin token and audits it, without its hash.
func putAdminToken(tx *store.Tx, t *adminv1.AdminToken, action string, now time.Time) error {
	if err := store.Put(tx, store.AdminTokens, t); err != nil {
		return err
	}
	return store.AppendAudit(tx, &adminv1.AuditEvent{
		Time: timestamppb.New(now), Actor: systemActor, Action: action,
		ResourceType: "admin_token", ResourceId: t.GetId(), ResourceName: t.GetName(),
		RevisionBefore: tx.Revision(), RevisionAfter: tx.NextRevision(),
	})
}

// NewAdminToken returns a new well-formed admin token for GATEHOUSE_ADMIN_TOKEN.
func NewAdminToken() (string, error) {
	tok, err := apitoken.New(apitoken.AdminPrefix, nil)
	if err != nil {
		return "", fmt.Errorf("make admin token: %w", err)
	}
	return tok.Secret, nil
}
