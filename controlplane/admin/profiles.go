package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"gatehouse/controlplane/store"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

const kindProfile = "access_profile"

// maxProfilesPerClient bounds the profiles of one client.
const maxProfilesPerClient = 20

// defaultClaim is the JWT claim that names a profile when the profile does not choose one.
const defaultClaim = "sub"

var profileMask = maskRules{
	prefix: "access_profile",
	// hmac_secret_sha256 is derived from the secret; a REST body echoed back may name it, and it
	// lets an update keep the stored secret (see keepSecret).
	keys:       []string{"id", "client_id", "etag", "jwt.hmac_secret_sha256"},
	outputOnly: []string{"create_time", "update_time"},
}

// profiles implements AccessProfileService.
type profiles struct {
	adminv1.UnimplementedAccessProfileServiceServer
	s *Server
}

// profileDefaults fills what a profile leaves unset and derives the secret's fingerprint.
func profileDefaults(p *adminv1.AccessProfile) {
	if p.Active == nil {
		p.Active = proto.Bool(true)
	}
	jwt := p.GetJwt()
	if jwt == nil {
		return
	}
	if jwt.Claim == "" {
		jwt.Claim = defaultClaim
	}
	if jwt.ClaimValue == "" {
		jwt.ClaimValue = p.Id
	}
	if s := jwt.GetHmacSecret(); s != "" {
		sum := sha256.Sum256([]byte(s))
		jwt.HmacSecretSha256 = hex.EncodeToString(sum[:])
	} else {
		jwt.HmacSecretSha256 = ""
	}
}

// keepSecret puts the stored HMAC secret back when an update replaced the jwt without a key but
// named the stored secret by its fingerprint, as a read-modify-write of the profile does: the
// secret is never returned, so a client cannot send it back.
func keepSecret(next, cur *adminv1.AccessProfile) {
	nj, cj := next.GetJwt(), cur.GetJwt()
	if nj == nil || nj.Key != nil || cj.GetHmacSecret() == "" {
		return
	}
	if nj.GetHmacSecretSha256() == cj.GetHmacSecretSha256() {
		nj.Key = &adminv1.JwtAuth_HmacSecret{HmacSecret: cj.GetHmacSecret()}
	}
}

// publicProfile returns p as the API shows it: without the HMAC secret.
func publicProfile(p *adminv1.AccessProfile) *adminv1.AccessProfile {
	if p.GetJwt().GetHmacSecret() == "" {
		return p
	}
	out := proto.Clone(p).(*adminv1.AccessProfile)
	out.GetJwt().Key = nil
	return out
}

// checkProfile applies the rules across resources: the name is unique in the client, the
// collections and the policy exist, no other JWT profile is selected by the same claim value,
// and a client has at most maxProfilesPerClient profiles.
func checkProfile(tx *store.Tx, p *adminv1.AccessProfile, creating bool) error {
	var v violations
	for i, id := range p.GetCollectionIds() {
		if _, err := store.Get(tx, store.Collections, "", id); store.IsNotFound(err) {
			v.add(fmt.Sprintf("access_profile.collection_ids[%d]", i), "collection %q does not exist", id)
		} else if err != nil {
			return err
		}
	}
	if id := p.GetPolicyId(); id != "" {
		if _, err := store.Get(tx, store.Policies, "", id); store.IsNotFound(err) {
			v.add("access_profile.policy_id", "access policy %q does not exist", id)
		} else if err != nil {
			return err
		}
	}
	if err := v.err(); err != nil {
		return err
	}
	if err := uniqueName(tx, store.Profiles, kindProfile, p.GetClientId(), p.GetId(), p.GetName(), "access_profile.name"); err != nil {
		return err
	}
	if creating {
		n := 0
		if err := store.Each(tx, store.Profiles, p.GetClientId(), func(*adminv1.AccessProfile) error { n++; return nil }); err != nil {
			return err
		}
		if n >= maxProfilesPerClient {
			return precondition(reasonLimit, fmt.Sprintf("client %s already has %d access profiles, the most it may have; delete one first", p.GetClientId(), n))
		}
	}
	jwt := p.GetJwt()
	if jwt == nil {
		return nil
	}
	return store.Each(tx, store.Profiles, "", func(o *adminv1.AccessProfile) error {
		oj := o.GetJwt()
		if o.GetId() == p.GetId() || oj == nil {
			return nil
		}
		if oj.GetClaim() == jwt.GetClaim() && oj.GetClaimValue() == jwt.GetClaimValue() {
			return conflict(reasonDuplicateName, "access_profile.jwt.claim_value",
				"access profile "+o.GetId()+" is already selected by "+jwt.GetClaim()+"="+strconv.Quote(jwt.GetClaimValue())+"; choose another claim value")
		}
		return nil
	})
}

func (ps profiles) CreateAccessProfile(ctx context.Context, req *adminv1.CreateAccessProfileRequest) (*adminv1.AccessProfile, error) {
	var v violations
	v.addPGV("", req.ValidateAll())
	if req.GetAccessProfile() != nil {
		validateProfile(&v, req.GetAccessProfile())
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	p := proto.Clone(req.GetAccessProfile()).(*adminv1.AccessProfile)
	p.Id, p.ClientId = newID(prefixProfile), req.GetClientId()
	normalizeProfile(p)
	profileDefaults(p)
	_, err := ps.s.write(ctx, "create access profile", func(w *wtx) error {
		if _, err := getIn(w.Tx, store.Clients, kindClient, "", p.ClientId); err != nil {
			return err
		}
		p.CreateTime, p.UpdateTime, p.Etag = w.now, w.now, w.etag
		if err := checkProfile(w.Tx, p, true); err != nil {
			return err
		}
		w.record("create", kindProfile, p.Id, p.Name, p.ClientId)
		return store.Put(w.Tx, store.Profiles, p)
	})
	if err != nil {
		return nil, err
	}
	return publicProfile(p), nil
}

func (ps profiles) GetAccessProfile(ctx context.Context, req *adminv1.GetAccessProfileRequest) (*adminv1.AccessProfile, error) {
	if err := checkRequest(req); err != nil {
		return nil, err
	}
	var out *adminv1.AccessProfile
	err := ps.s.read("get access profile", func(tx *store.Tx) error {
		var err error
		out, err = getIn(tx, store.Profiles, kindProfile, req.GetClientId(), req.GetId())
		return err
	})
	if err != nil {
		return nil, err
	}
	return publicProfile(out), nil
}

func (ps profiles) ListAccessProfiles(ctx context.Context, req *adminv1.ListAccessProfilesRequest) (*adminv1.ListAccessProfilesResponse, error) {
	if err := checkRequest(req); err != nil {
		return nil, err
	}
	out := &adminv1.ListAccessProfilesResponse{}
	err := ps.s.read("list access profiles", func(tx *store.Tx) error {
		if _, err := getIn(tx, store.Clients, kindClient, "", req.GetClientId()); err != nil {
			return err
		}
		var err error
		out.AccessProfiles, out.NextPageToken, err = page(tx, store.Profiles, req.GetClientId(), req.GetPageSize(), req.GetPageToken(), (*adminv1.AccessProfile).GetId)
		return err
	})
	if err != nil {
		return nil, err
	}
	for i, p := range out.AccessProfiles {
		out.AccessProfiles[i] = publicProfile(p)
	}
	return out, nil
}

func (ps profiles) UpdateAccessProfile(ctx context.Context, req *adminv1.UpdateAccessProfileRequest) (*adminv1.AccessProfile, error) {
	in := req.GetAccessProfile()
	if err := requireUpdate("access_profile", in != nil, map[string]string{"id": in.GetId(), "client_id": in.GetClientId()}); err != nil {
		return nil, err
	}
	paths, err := updatePaths(in, req.GetUpdateMask(), profileMask)
	if err != nil {
		return nil, err
	}
	var out *adminv1.AccessProfile
	_, err = ps.s.write(ctx, "update access profile", func(w *wtx) error {
		cur, err := getIn(w.Tx, store.Profiles, kindProfile, in.GetClientId(), in.GetId())
		if err != nil {
			return err
		}
		if err := checkEtag(kindProfile, cur.Id, in.GetEtag(), cur.Etag); err != nil {
			return err
		}
		next := proto.Clone(cur).(*adminv1.AccessProfile)
		applyPaths(next, in, paths)
		keepSecret(next, cur)
		var v violations
		v.addPGV("access_profile", next.ValidateAll())
		validateProfile(&v, next)
		if err := v.err(); err != nil {
			return err
		}
		normalizeProfile(next)
		profileDefaults(next)
		if proto.Equal(next, cur) {
			out = cur
			return nil
		}
		if err := checkProfile(w.Tx, next, false); err != nil {
			return err
		}
		if cur.GetApiToken() != nil && next.GetApiToken() == nil {
			if err := refuseIfTokens(w.Tx, cur); err != nil {
				return err
			}
		}
		next.UpdateTime, next.Etag = w.now, w.etag
		w.record("update", kindProfile, next.Id, next.Name, next.ClientId)
		out = next
		return store.Put(w.Tx, store.Profiles, next)
	})
	if err != nil {
		return nil, err
	}
	return publicProfile(out), nil
}

// refuseIfTokens keeps a profile with API tokens from switching to JWT, which would leave
// tokens that can never authenticate.
func refuseIfTokens(tx *store.Tx, p *adminv1.AccessProfile) error {
	n := 0
	if err := store.Each(tx, store.Tokens, p.GetId(), func(*adminv1.ApiToken) error { n++; return nil }); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	return precondition(reasonWrongAuth, fmt.Sprintf("access profile %s has %d API tokens; revoke and delete them (delete the profile) before switching it to JWT", p.GetId(), n))
}

func (ps profiles) DeleteAccessProfile(ctx context.Context, req *adminv1.DeleteAccessProfileRequest) (*emptypb.Empty, error) {
	if err := checkRequest(req); err != nil {
		return nil, err
	}
	_, err := ps.s.write(ctx, "delete access profile", func(w *wtx) error {
		cur, err := getIn(w.Tx, store.Profiles, kindProfile, req.GetClientId(), req.GetId())
		if err != nil {
			return err
		}
		if err := checkEtag(kindProfile, cur.Id, req.GetEtag(), cur.Etag); err != nil {
			return err
		}
		return deleteProfile(w, cur)
	})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// deleteProfile deletes a profile and its tokens, which cannot outlive it.
func deleteProfile(w *wtx, p *adminv1.AccessProfile) error {
	toks, err := store.List(w.Tx, store.Tokens, p.GetId(), "", 0)
	if err != nil {
		return err
	}
	for _, t := range toks {
		if err := store.Delete(w.Tx, store.Tokens, p.GetId(), t.GetId()); err != nil {
			return err
		}
		w.record("delete", kindToken, t.GetId(), t.GetName(), p.GetId())
	}
	if err := store.Delete(w.Tx, store.Profiles, p.GetClientId(), p.GetId()); err != nil {
		return err
	}
	w.record("delete", kindProfile, p.GetId(), p.GetName(), p.GetClientId())
	return nil
}
