package admin

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"gatehouse/authz/apitoken"
	"gatehouse/controlplane/store"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

func TestClientsAndPolicies(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	cli := must[*adminv1.Client](t)(e.clis.CreateClient(ctx, &adminv1.CreateClientRequest{Client: &adminv1.Client{Name: "Acme", Email: "ops@acme.example"}}))
	if !cli.GetActive() {
		t.Error("a new client is not active by default")
	}
	_, err := e.clis.CreateClient(ctx, &adminv1.CreateClientRequest{Client: &adminv1.Client{Name: "Acme"}})
	wantCode(t, err, codes.AlreadyExists)
	upd := must[*adminv1.Client](t)(e.clis.UpdateClient(ctx, &adminv1.UpdateClientRequest{
		Client: &adminv1.Client{Id: cli.Id, Active: proto.Bool(false)}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"active"}},
	}))
	if upd.GetActive() || upd.Email != cli.Email {
		t.Errorf("update = %v", upd)
	}

	pol := must[*adminv1.AccessPolicy](t)(e.pols.CreatePolicy(ctx, &adminv1.CreatePolicyRequest{Policy: &adminv1.AccessPolicy{
		Name: "gold", RateLimit: &adminv1.RateLimit{Requests: 100, Per: "minute"}, Quota: &adminv1.Quota{Requests: 10000, Per: "month"},
	}}))
	if pol.RateLimit.Burst != 100 {
		t.Errorf("burst = %d, want the request count 100", pol.RateLimit.Burst)
	}
	// REST PATCH of the request count alone: the defaulted burst follows it.
	r := e.rest("PATCH", "/v1/policies/"+pol.Id, `{"rate_limit":{"requests":50}}`)
	if r.code != 200 {
		t.Fatalf("patch: %d %s", r.code, r.body)
	}
	got := &adminv1.AccessPolicy{}
	if err := protojson.Unmarshal(r.body, got); err != nil {
		t.Fatal(err)
	}
	want := &adminv1.RateLimit{Requests: 50, Per: "minute", Burst: 50}
	diff(t, want, got.RateLimit, protocmp.Transform())
	// Dropping the quota is allowed: either limit may be absent.
	upd2 := must[*adminv1.AccessPolicy](t)(e.pols.UpdatePolicy(ctx, &adminv1.UpdatePolicyRequest{
		Policy: &adminv1.AccessPolicy{Id: pol.Id}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"quota"}},
	}))
	if upd2.Quota != nil {
		t.Errorf("quota = %v after clearing it", upd2.Quota)
	}
	_, err = e.pols.CreatePolicy(ctx, &adminv1.CreatePolicyRequest{Policy: &adminv1.AccessPolicy{Name: "gold"}})
	wantCode(t, err, codes.AlreadyExists)

	// A policy in use cannot be deleted; a client with profiles only with force.
	prf := must[*adminv1.AccessProfile](t)(e.prfs.CreateAccessProfile(ctx, &adminv1.CreateAccessProfileRequest{ClientId: cli.Id,
		AccessProfile: &adminv1.AccessProfile{Name: "p", PolicyId: pol.Id, Auth: &adminv1.AccessProfile_ApiToken{ApiToken: &adminv1.ApiTokenAuth{}}}}))
	tok := must[*adminv1.TokenSecret](t)(e.toks.CreateToken(ctx, &adminv1.CreateTokenRequest{ClientId: cli.Id, ProfileId: prf.Id}))
	_, err = e.pols.DeletePolicy(ctx, &adminv1.DeletePolicyRequest{Id: pol.Id})
	wantCode(t, err, codes.FailedPrecondition)
	diff(t, []string{"access_profile/" + prf.Id}, preconditionSubjects(err))
	_, err = e.clis.DeleteClient(ctx, &adminv1.DeleteClientRequest{Id: cli.Id})
	wantCode(t, err, codes.FailedPrecondition)
	if r := e.rest("DELETE", "/v1/clients/"+cli.Id, ""); r.code != 409 {
		t.Errorf("REST delete of a client with profiles: %d, want 409", r.code)
	}
	if _, err := e.clis.DeleteClient(ctx, &adminv1.DeleteClientRequest{Id: cli.Id, Force: true}); err != nil {
		t.Fatal(err)
	}
	err = e.store.View(func(tx *store.Tx) error {
		if _, err := store.Get(tx, store.Tokens, prf.Id, tok.Token.Id); !store.IsNotFound(err) {
			t.Errorf("token survived its client: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pols.DeletePolicy(ctx, &adminv1.DeletePolicyRequest{Id: pol.Id}); err != nil {
		t.Errorf("delete unused policy: %v", err)
	}
}

func TestProfiles(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	f := e.fixture("sales")
	secret := strings.Repeat("s3cr3t-", 6)

	jwtReq := func(name string, jwt *adminv1.JwtAuth) *adminv1.CreateAccessProfileRequest {
		return &adminv1.CreateAccessProfileRequest{ClientId: f.cli.Id, AccessProfile: &adminv1.AccessProfile{
			Name: name, CollectionIds: []string{f.col.Id}, Auth: &adminv1.AccessProfile_Jwt{Jwt: jwt},
			IpAllow: []string{"10.1.2.3/8", "192.0.2.7", "2001:db8::/32"},
		}}
	}
	p := must[*adminv1.AccessProfile](t)(e.prfs.CreateAccessProfile(ctx, jwtReq("hmac", &adminv1.JwtAuth{
		Key: &adminv1.JwtAuth_HmacSecret{HmacSecret: secret}, Issuers: []string{"https://issuer.example"},
	})))
	t.Run("defaults and secret", func(t *testing.T) {
		jwt := p.GetJwt()
		if jwt.GetHmacSecret() != "" || jwt.HmacSecretSha256 == "" {
			t.Errorf("response jwt = %v: secret must be hidden and its sha set", jwt)
		}
		if jwt.Claim != "sub" || jwt.ClaimValue != p.Id || !p.GetActive() {
			t.Errorf("defaults: claim %q value %q active %v", jwt.Claim, jwt.ClaimValue, p.GetActive())
		}
		diff(t, []string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"}, p.IpAllow)
		r := e.rest("GET", "/v1/clients/"+f.cli.Id+"/access-profiles/"+p.Id, "")
		if strings.Contains(string(r.body), secret) || !strings.Contains(string(r.body), "hmac_secret_sha256") {
			t.Errorf("REST get shows the secret or hides its sha: %s", r.body)
		}
		l := must[*adminv1.ListAccessProfilesResponse](t)(e.prfs.ListAccessProfiles(ctx, &adminv1.ListAccessProfilesRequest{ClientId: f.cli.Id}))
		for _, lp := range l.AccessProfiles {
			if lp.GetJwt().GetHmacSecret() != "" {
				t.Error("list shows the HMAC secret")
			}
		}
	})
	t.Run("read-modify-write keeps the secret", func(t *testing.T) {
		got := must[*adminv1.AccessProfile](t)(e.prfs.GetAccessProfile(ctx, &adminv1.GetAccessProfileRequest{ClientId: f.cli.Id, Id: p.Id}))
		got.GetJwt().Audiences = []string{"api"}
		upd := must[*adminv1.AccessProfile](t)(e.prfs.UpdateAccessProfile(ctx, &adminv1.UpdateAccessProfileRequest{
			AccessProfile: got, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"jwt"}},
		}))
		if upd.GetJwt().HmacSecretSha256 != p.GetJwt().HmacSecretSha256 {
			t.Error("the secret changed")
		}
		stored := storedProfile(t, e, f.cli.Id, p.Id)
		if stored.GetJwt().GetHmacSecret() != secret {
			t.Error("the stored secret was lost")
		}
		// A REST PATCH of one nested field keeps the rest of jwt.
		r := e.rest("PATCH", "/v1/clients/"+f.cli.Id+"/access-profiles/"+p.Id, `{"jwt":{"issuers":["https://other.example"]}}`)
		if r.code != 200 || storedProfile(t, e, f.cli.Id, p.Id).GetJwt().GetHmacSecret() != secret {
			t.Errorf("nested patch: %d %s", r.code, r.body)
		}
	})
	t.Run("public keys", func(t *testing.T) {
		rsaKey := must[*rsa.PrivateKey](t)(rsa.GenerateKey(rand.Reader, 2048))
		ecKey := must[*ecdsa.PrivateKey](t)(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
		edPub, _ := must[ed25519.PrivateKey](t)(func() (ed25519.PrivateKey, error) { _, k, err := ed25519.GenerateKey(rand.Reader); return k, err }()).Public().(ed25519.PublicKey)
		keys := []string{pemPublic(t, &rsaKey.PublicKey), pemPublic(t, &ecKey.PublicKey), pemPublic(t, edPub)}
		pk := must[*adminv1.AccessProfile](t)(e.prfs.CreateAccessProfile(ctx, jwtReq("keys", &adminv1.JwtAuth{
			Key: &adminv1.JwtAuth_PublicKeys{PublicKeys: &adminv1.PublicKeys{Pem: keys}}, Algorithms: []string{"RS256", "ES256", "EdDSA"},
		})))
		if len(pk.GetJwt().GetPublicKeys().GetPem()) != 3 {
			t.Errorf("public keys not returned: %v", pk.GetJwt())
		}
	})
	t.Run("jwt claim values select one profile", func(t *testing.T) {
		_, err := e.prfs.CreateAccessProfile(ctx, jwtReq("same claim", &adminv1.JwtAuth{
			Key: &adminv1.JwtAuth_JwksUrl{JwksUrl: "https://issuer.example/jwks"}, ClaimValue: p.Id,
		}))
		wantCode(t, err, codes.AlreadyExists)
	})
	t.Run("tokens only for api_token profiles", func(t *testing.T) {
		_, err := e.toks.CreateToken(ctx, &adminv1.CreateTokenRequest{ClientId: f.cli.Id, ProfileId: p.Id})
		wantCode(t, err, codes.FailedPrecondition)
	})
	t.Run("switching to JWT with tokens is refused", func(t *testing.T) {
		must[*adminv1.TokenSecret](t)(e.toks.CreateToken(ctx, &adminv1.CreateTokenRequest{ClientId: f.cli.Id, ProfileId: f.prf.Id}))
		_, err := e.prfs.UpdateAccessProfile(ctx, &adminv1.UpdateAccessProfileRequest{
			AccessProfile: &adminv1.AccessProfile{Id: f.prf.Id, ClientId: f.cli.Id, Auth: &adminv1.AccessProfile_Jwt{Jwt: &adminv1.JwtAuth{Key: &adminv1.JwtAuth_JwksUrl{JwksUrl: "https://x.example/jwks"}}}},
			UpdateMask:    &fieldmaskpb.FieldMask{Paths: []string{"jwt"}},
		})
		wantCode(t, err, codes.FailedPrecondition)
	})
	t.Run("at most 20 per client", func(t *testing.T) {
		cli := must[*adminv1.Client](t)(e.clis.CreateClient(ctx, &adminv1.CreateClientRequest{Client: &adminv1.Client{Name: "many"}}))
		req := func(i int) *adminv1.CreateAccessProfileRequest {
			return &adminv1.CreateAccessProfileRequest{ClientId: cli.Id, AccessProfile: &adminv1.AccessProfile{
				Name: fmt.Sprint("p", i), Auth: &adminv1.AccessProfile_ApiToken{ApiToken: &adminv1.ApiTokenAuth{}}}}
		}
		for i := range 20 {
			must[*adminv1.AccessProfile](t)(e.prfs.CreateAccessProfile(ctx, req(i)))
		}
		_, err := e.prfs.CreateAccessProfile(ctx, req(20))
		wantCode(t, err, codes.FailedPrecondition)
		if errorReason(err) != reasonLimit {
			t.Errorf("reason = %q", errorReason(err))
		}
	})
	t.Run("deleting a profile deletes its tokens", func(t *testing.T) {
		if _, err := e.prfs.DeleteAccessProfile(ctx, &adminv1.DeleteAccessProfileRequest{ClientId: f.cli.Id, Id: f.prf.Id}); err != nil {
			t.Fatal(err)
		}
		_, err := e.toks.ListTokens(ctx, &adminv1.ListTokensRequest{ClientId: f.cli.Id, ProfileId: f.prf.Id})
		wantCode(t, err, codes.NotFound)
	})
}

func storedProfile(t *testing.T, e *env, client, id string) *adminv1.AccessProfile {
	t.Helper()
	var p *adminv1.AccessProfile
	err := e.store.View(func(tx *store.Tx) error {
		var err error
		p, err = store.Get(tx, store.Profiles, client, id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func pemPublic(t testing.TB, key any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestTokens(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	f := e.fixture("sales")
	base := "/v1/clients/" + f.cli.Id + "/access-profiles/" + f.prf.Id + "/tokens"

	created := must[*adminv1.TokenSecret](t)(e.toks.CreateToken(ctx, &adminv1.CreateTokenRequest{ClientId: f.cli.Id, ProfileId: f.prf.Id, Name: "ci"}))
	if err := apitoken.Check(apitoken.APIPrefix, created.Secret); err != nil {
		t.Fatalf("secret is not a well-formed API token: %v", err)
	}
	tok := created.Token
	if tok.SecretSha256 != nil || !strings.HasPrefix(created.Secret, tok.DisplayPrefix) || tok.ClientId != f.cli.Id {
		t.Errorf("token record = %v", tok)
	}
	stored := storedToken(t, e, f.prf.Id, tok.Id)
	if sum := apitoken.Hash(created.Secret); string(stored.SecretSha256) != string(sum[:]) {
		t.Error("the store does not hold the secret's SHA-256")
	}

	// REST create shows the secret once; get and list never show it or its hash.
	r := e.rest("POST", base, `{"name":"rest"}`)
	restSecret, _ := r.json(t)["secret"].(string)
	if r.code != 200 || apitoken.Check(apitoken.APIPrefix, restSecret) != nil {
		t.Fatalf("REST create: %d %s", r.code, r.body)
	}
	for _, path := range []string{base, base + "/" + tok.Id} {
		r := e.rest("GET", path, "")
		if r.code != 200 || strings.Contains(string(r.body), "secret") {
			t.Errorf("GET %s: %d %s shows a secret field", path, r.code, r.body)
		}
	}

	// Rotation issues a new secret and ends the old one after the grace period.
	r = e.rest("POST", base+"/"+tok.Id+":rotate", `{"grace_period":"3600s"}`)
	if r.code != 200 {
		t.Fatalf("rotate: %d %s", r.code, r.body)
	}
	rotated := &adminv1.TokenSecret{}
	if err := protojson.Unmarshal(r.body, rotated); err != nil {
		t.Fatal(err)
	}
	if rotated.Secret == created.Secret || apitoken.Check(apitoken.APIPrefix, rotated.Secret) != nil {
		t.Fatal("rotation did not issue a new well-formed secret")
	}
	old := must[*adminv1.ApiToken](t)(e.toks.GetToken(ctx, &adminv1.GetTokenRequest{ClientId: f.cli.Id, ProfileId: f.prf.Id, Id: tok.Id}))
	wantOld := proto.Clone(tok).(*adminv1.ApiToken)
	wantOld.ExpireTime = timestamppb.New(e.clock.now().Add(time.Hour))
	wantOld.RotatedToId = rotated.Token.Id
	diff(t, wantOld, old, protocmp.Transform())
	// The audit log shows the old token rotated, then the new one created, under the profile.
	rotation := must[*adminv1.ListAuditEventsResponse](t)(e.auditLog.ListAuditEvents(ctx, &adminv1.ListAuditEventsRequest{ResourceId: f.prf.Id, PageSize: 2}))
	var audited []string
	for _, ev := range rotation.AuditEvents {
		audited = append(audited, ev.Action+" "+ev.ResourceId+" in "+ev.ParentId)
	}
	diff(t, []string{"create " + rotated.Token.Id + " in " + f.prf.Id, "rotate " + tok.Id + " in " + f.prf.Id}, audited)
	_, err := e.toks.RotateToken(ctx, &adminv1.RotateTokenRequest{ClientId: f.cli.Id, ProfileId: f.prf.Id, Id: tok.Id})
	wantCode(t, err, codes.FailedPrecondition)

	// The default grace period is 24 hours.
	again := must[*adminv1.TokenSecret](t)(e.toks.RotateToken(ctx, &adminv1.RotateTokenRequest{ClientId: f.cli.Id, ProfileId: f.prf.Id, Id: rotated.Token.Id}))
	prev := must[*adminv1.ApiToken](t)(e.toks.GetToken(ctx, &adminv1.GetTokenRequest{ClientId: f.cli.Id, ProfileId: f.prf.Id, Id: rotated.Token.Id}))
	if got := prev.ExpireTime.AsTime().Sub(e.clock.now()); got != 24*time.Hour {
		t.Errorf("default grace = %v, want 24h", got)
	}

	// Revoke ends a token at once and is idempotent.
	rev := must[*adminv1.ApiToken](t)(e.toks.RevokeToken(ctx, &adminv1.RevokeTokenRequest{ClientId: f.cli.Id, ProfileId: f.prf.Id, Id: again.Token.Id}))
	if !rev.RevokeTime.AsTime().Equal(e.clock.now()) {
		t.Errorf("revoke_time = %v", rev.RevokeTime)
	}
	storeRev := e.store.Revision()
	if r := e.rest("POST", base+"/"+again.Token.Id+":revoke", `{}`); r.code != 200 {
		t.Errorf("second revoke: %d %s", r.code, r.body)
	}
	if e.store.Revision() != storeRev {
		t.Error("revoking a revoked token wrote")
	}
	_, err = e.toks.RotateToken(ctx, &adminv1.RotateTokenRequest{ClientId: f.cli.Id, ProfileId: f.prf.Id, Id: again.Token.Id})
	wantCode(t, err, codes.FailedPrecondition)

	// Token errors: unknown ids, a profile of another client, a past expiry.
	_, err = e.toks.GetToken(ctx, &adminv1.GetTokenRequest{ClientId: f.cli.Id, ProfileId: f.prf.Id, Id: "tok_missing"})
	wantCode(t, err, codes.NotFound)
	other := must[*adminv1.Client](t)(e.clis.CreateClient(ctx, &adminv1.CreateClientRequest{Client: &adminv1.Client{Name: "other"}}))
	_, err = e.toks.ListTokens(ctx, &adminv1.ListTokensRequest{ClientId: other.Id, ProfileId: f.prf.Id})
	wantCode(t, err, codes.NotFound)
	_, err = e.toks.CreateToken(ctx, &adminv1.CreateTokenRequest{ClientId: f.cli.Id, ProfileId: f.prf.Id, ExpireTime: timestamppb.New(e.clock.now().Add(-time.Second))})
	wantCode(t, err, codes.InvalidArgument)
	diff(t, []string{"expire_time"}, violationFields(err))
	_, err = e.toks.RotateToken(ctx, &adminv1.RotateTokenRequest{ClientId: f.cli.Id, ProfileId: f.prf.Id, Id: tok.Id, GracePeriod: durationpb.New(-time.Second)})
	wantCode(t, err, codes.InvalidArgument)

	// No secret reaches the audit log.
	evs := must[*adminv1.ListAuditEventsResponse](t)(e.auditLog.ListAuditEvents(ctx, &adminv1.ListAuditEventsRequest{PageSize: 1000}))
	dump := protojson.Format(evs)
	for _, s := range []string{created.Secret, restSecret, rotated.Secret, again.Secret} {
		if strings.Contains(dump, s) {
			t.Fatal("a token secret is in the audit log")
		}
	}
}

func storedToken(t *testing.T, e *env, profile, id string) *adminv1.ApiToken {
	t.Helper()
	var tok *adminv1.ApiToken
	err := e.store.View(func(tx *store.Tx) error {
		var err error
		tok, err = store.Get(tx, store.Tokens, profile, id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
