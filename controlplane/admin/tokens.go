package admin

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"gatehouse/authz/apitoken"
	"gatehouse/controlplane/store"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

const kindToken = "token"

// defaultGrace is how long a rotated token keeps working when the caller does not say.
const defaultGrace = 24 * time.Hour

// tokens implements TokenService.
type tokens struct {
	adminv1.UnimplementedTokenServiceServer
	s *Server
}

// publicToken returns t as the API shows it: without the secret's hash.
func publicToken(t *adminv1.ApiToken) *adminv1.ApiToken {
	out := proto.Clone(t).(*adminv1.ApiToken)
	out.SecretSha256 = nil
	return out
}

// tokenProfile loads the profile a token request names and checks that it belongs to the
// client and issues API tokens.
func tokenProfile(tx *store.Tx, clientID, profileID string) (*adminv1.AccessProfile, error) {
	if _, err := getIn(tx, store.Clients, kindClient, "", clientID); err != nil {
		return nil, err
	}
	p, err := getIn(tx, store.Profiles, kindProfile, clientID, profileID)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// newToken makes a token record and its secret for profile p.
func newToken(p *adminv1.AccessProfile, name string, now *timestamppb.Timestamp) (*adminv1.ApiToken, string, error) {
	tok, err := apitoken.New(apitoken.APIPrefix, nil)
	if err != nil {
		return nil, "", fmt.Errorf("make token: %w", err)
	}
	t := &adminv1.ApiToken{
		Id:            newID(prefixToken),
		ClientId:      p.GetClientId(),
		ProfileId:     p.GetId(),
		Name:          name,
		DisplayPrefix: tok.Display,
		CreateTime:    now,
		SecretSha256:  tok.Hash[:],
	}
	return t, tok.Secret, nil
}

// maxTokenLifetime bounds expire_time: far-future times are almost always a unit mistake, and
// the sidecars need a timestamp they can represent.
const maxTokenLifetime = 10 * 365 * 24 * time.Hour

// checkExpireTime adds a violation unless exp is empty or a valid timestamp in the future and
// within maxTokenLifetime. gRPC callers can send nanos out of range, which the sidecars refuse
// together with the whole profile.
func checkExpireTime(v *violations, exp *timestamppb.Timestamp, now time.Time) {
	switch {
	case exp == nil:
	case exp.CheckValid() != nil:
		v.add("expire_time", "is not a valid timestamp: seconds must fall in years 0001-9999 and nanos in [0, 999999999]")
	case !exp.AsTime().After(now):
		v.add("expire_time", "must be in the future, or empty for a token that does not expire")
	case !exp.AsTime().Before(now.Add(maxTokenLifetime)):
		v.add("expire_time", "must be less than 10 years from now")
	}
}

// tokenRef is a request that names one token of a client's profile.
type tokenRef interface {
	GetClientId() string
	GetProfileId() string
	GetId() string
}

// tokenIn loads the token ref names and its profile, which must belong to the client.
func tokenIn(tx *store.Tx, ref tokenRef) (*adminv1.AccessProfile, *adminv1.ApiToken, error) {
	p, err := tokenProfile(tx, ref.GetClientId(), ref.GetProfileId())
	if err != nil {
		return nil, nil, err
	}
	t, err := getIn(tx, store.Tokens, kindToken, p.GetId(), ref.GetId())
	if err != nil {
		return nil, nil, err
	}
	return p, t, nil
}

// putNew stores a token made by newToken and returns it with its secret, which the caller sees
// this once.
func putNew(w *wtx, t *adminv1.ApiToken, secret string) (*adminv1.TokenSecret, error) {
	if err := store.Put(w.Tx, store.Tokens, t); err != nil {
		return nil, err
	}
	w.record("create", kindToken, t.Id, t.Name, t.ProfileId)
	return &adminv1.TokenSecret{Token: publicToken(t), Secret: secret}, nil
}

func (ts tokens) CreateToken(ctx context.Context, req *adminv1.CreateTokenRequest) (*adminv1.TokenSecret, error) {
	var v violations
	v.addPGV("", req.ValidateAll())
	checkExpireTime(&v, req.GetExpireTime(), ts.s.now())
	if err := v.err(); err != nil {
		return nil, err
	}
	var out *adminv1.TokenSecret
	_, err := ts.s.write(ctx, "create token", func(w *wtx) error {
		p, err := tokenProfile(w.Tx, req.GetClientId(), req.GetProfileId())
		if err != nil {
			return err
		}
		if p.GetApiToken() == nil {
			return precondition(reasonWrongAuth, fmt.Sprintf("access profile %s authenticates with JWT, not API tokens; issue tokens under an api_token profile", p.GetId()))
		}
		t, secret, err := newToken(p, req.GetName(), w.now)
		if err != nil {
			return err
		}
		t.ExpireTime = req.GetExpireTime()
		out, err = putNew(w, t, secret)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (ts tokens) GetToken(ctx context.Context, req *adminv1.GetTokenRequest) (*adminv1.ApiToken, error) {
	if err := checkRequest(req); err != nil {
		return nil, err
	}
	var out *adminv1.ApiToken
	err := ts.s.read("get token", func(tx *store.Tx) error {
		var err error
		_, out, err = tokenIn(tx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	return publicToken(out), nil
}

func (ts tokens) ListTokens(ctx context.Context, req *adminv1.ListTokensRequest) (*adminv1.ListTokensResponse, error) {
	if err := checkRequest(req); err != nil {
		return nil, err
	}
	out := &adminv1.ListTokensResponse{}
	err := ts.s.read("list tokens", func(tx *store.Tx) error {
		if _, err := tokenProfile(tx, req.GetClientId(), req.GetProfileId()); err != nil {
			return err
		}
		var err error
		out.Tokens, out.NextPageToken, err = page(tx, store.Tokens, req.GetProfileId(), req.GetPageSize(), req.GetPageToken(), (*adminv1.ApiToken).GetId)
		return err
	})
	if err != nil {
		return nil, err
	}
	for i, t := range out.Tokens {
		out.Tokens[i] = publicToken(t)
	}
	return out, nil
}

// usable refuses to rotate a token that no longer authenticates.
func usable(t *adminv1.ApiToken, now time.Time) error {
	switch {
	case t.GetRevokeTime() != nil:
		return precondition(reasonTokenState, fmt.Sprintf("token %s is revoked; create a new token instead", t.GetId()))
	case t.GetRotatedToId() != "":
		return precondition(reasonTokenState, fmt.Sprintf("token %s was already rotated to %s; rotate that token instead", t.GetId(), t.GetRotatedToId()))
	case t.GetExpireTime() != nil && !t.GetExpireTime().AsTime().After(now):
		return precondition(reasonTokenState, fmt.Sprintf("token %s has expired; create a new token instead", t.GetId()))
	}
	return nil
}

func (ts tokens) RotateToken(ctx context.Context, req *adminv1.RotateTokenRequest) (*adminv1.TokenSecret, error) {
	if err := checkRequest(req); err != nil {
		return nil, err
	}
	grace := defaultGrace
	if g := req.GetGracePeriod(); g != nil {
		grace = g.AsDuration()
	}
	var out *adminv1.TokenSecret
	_, err := ts.s.write(ctx, "rotate token", func(w *wtx) error {
		p, old, err := tokenIn(w.Tx, req)
		if err != nil {
			return err
		}
		now := w.now.AsTime()
		if err := usable(old, now); err != nil {
			return err
		}
		t, secret, err := newToken(p, old.GetName(), w.now)
		if err != nil {
			return err
		}
		// The new token keeps the old one's end of life, so rotating never extends a token
		// that was issued to expire.
		t.ExpireTime = old.GetExpireTime()
		end := now.Add(grace)
		if old.GetExpireTime() == nil || end.Before(old.GetExpireTime().AsTime()) {
			old.ExpireTime = timestamppb.New(end)
		}
		old.RotatedToId = t.Id
		if err := store.Put(w.Tx, store.Tokens, old); err != nil {
			return err
		}
		w.record("rotate", kindToken, old.Id, old.Name, p.GetId())
		out, err = putNew(w, t, secret)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (ts tokens) RevokeToken(ctx context.Context, req *adminv1.RevokeTokenRequest) (*adminv1.ApiToken, error) {
	if err := checkRequest(req); err != nil {
		return nil, err
	}
	var out *adminv1.ApiToken
	_, err := ts.s.write(ctx, "revoke token", func(w *wtx) error {
		_, t, err := tokenIn(w.Tx, req)
		if err != nil {
			return err
		}
		out = t
		if t.GetRevokeTime() != nil {
			return nil // revoking twice changes nothing
		}
		t.RevokeTime = w.now
		w.record("revoke", kindToken, t.Id, t.Name, t.ProfileId)
		return store.Put(w.Tx, store.Tokens, t)
	})
	if err != nil {
		return nil, err
	}
	return publicToken(out), nil
}
