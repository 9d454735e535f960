package compile

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"gatehouse/controlplane/store"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

// DefaultJWTClaim is the claim that selects a JWT profile when the profile names none.
const DefaultJWTClaim = "sub"

// index finds the resources a snapshot refers to by id.
type index struct {
	collections map[string]*adminv1.Collection
	clients     map[string]*adminv1.Client
	profiles    map[string]*adminv1.AccessProfile
	policies    map[string]*adminv1.AccessPolicy
	// tokens are the unrevoked tokens of each profile, sorted by id.
	tokens map[string][]*adminv1.ApiToken
}

func newIndex(snap *store.Snapshot) (*index, error) {
	idx := &index{
		collections: make(map[string]*adminv1.Collection, len(snap.Collections)),
		clients:     make(map[string]*adminv1.Client, len(snap.Clients)),
		profiles:    make(map[string]*adminv1.AccessProfile, len(snap.Profiles)),
		policies:    make(map[string]*adminv1.AccessPolicy, len(snap.Policies)),
		tokens:      map[string][]*adminv1.ApiToken{},
	}
	for _, c := range snap.Collections {
		idx.collections[c.GetId()] = c
	}
	for _, c := range snap.Clients {
		idx.clients[c.GetId()] = c
	}
	for _, p := range snap.Profiles {
		idx.profiles[p.GetId()] = p
	}
	for _, p := range snap.Policies {
		idx.policies[p.GetId()] = p
	}
	for _, t := range snap.Tokens {
		if _, ok := idx.profiles[t.GetProfileId()]; !ok {
			return nil, fmt.Errorf("token %q: unknown access profile %q", t.GetId(), t.GetProfileId())
		}
		if t.GetRevokeTime() != nil {
			continue
		}
		idx.tokens[t.GetProfileId()] = append(idx.tokens[t.GetProfileId()], t)
	}
	for _, ts := range idx.tokens {
		slices.SortFunc(ts, func(a, b *adminv1.ApiToken) int { return strings.Compare(a.GetId(), b.GetId()) })
	}
	return idx, nil
}

// authzResources builds one authz resource per endpoint, access profile and access policy, so
// that one changed store object is one changed resource. Each list is sorted by name.
func authzResources(snap *store.Snapshot, idx *index, eps []epRoute) (map[string][]types.Resource, error) {
	endpoints := make([]*authzv1.Endpoint, len(eps))
	for i := range eps {
		e := &eps[i]
		if e.authz != nil {
			endpoints[i] = e.authz
			continue
		}
		e.authz = &authzv1.Endpoint{
			Name:           e.ep.GetId(),
			CollectionId:   e.ep.GetCollectionId(),
			CollectionPath: e.coll.GetPath(),
			Method:         e.ep.GetMethod(),
			PathTemplate:   e.path,
			RecipeId:       e.ep.GetRecipeId(),
			Active:         e.active,
			Timeout:        durationpb.New(e.timeout),
		}
		endpoints[i] = e.authz
	}
	slices.SortFunc(endpoints, func(a, b *authzv1.Endpoint) int { return strings.Compare(a.Name, b.Name) })

	profiles := make([]*authzv1.Profile, 0, len(snap.Profiles))
	for _, p := range snap.Profiles {
		ap, err := profile(p, idx)
		if err != nil {
			return nil, fmt.Errorf("access profile %q: %w", p.GetId(), err)
		}
		profiles = append(profiles, ap)
	}
	slices.SortFunc(profiles, func(a, b *authzv1.Profile) int { return strings.Compare(a.Name, b.Name) })

	policies := make([]*authzv1.Policy, 0, len(snap.Policies))
	for _, p := range snap.Policies {
		ap, err := policy(p)
		if err != nil {
			return nil, fmt.Errorf("access policy %q: %w", p.GetId(), err)
		}
		policies = append(policies, ap)
	}
	slices.SortFunc(policies, func(a, b *authzv1.Policy) int { return strings.Compare(a.Name, b.Name) })

	return map[string][]types.Resource{
		AuthzEndpointType: asResources(endpoints),
		AuthzProfileType:  asResources(profiles),
		AuthzPolicyType:   asResources(policies),
	}, nil
}

// profile is the authz view of an access profile: its client's state, its unrevoked tokens or
// JWT settings, its policy and IP lists.
func profile(p *adminv1.AccessProfile, idx *index) (*authzv1.Profile, error) {
	client, ok := idx.clients[p.GetClientId()]
	if !ok {
		return nil, fmt.Errorf("unknown client %q", p.GetClientId())
	}
	if id := p.GetPolicyId(); id != "" {
		if _, ok := idx.policies[id]; !ok {
			return nil, fmt.Errorf("unknown access policy %q", id)
		}
	}
	out := &authzv1.Profile{
		Name: p.GetId(),
		// Clients and profiles are active unless disabled.
		ClientId:      p.GetClientId(),
		ClientActive:  client.Active == nil || client.GetActive(),
		Active:        p.Active == nil || p.GetActive(),
		CollectionIds: sortedCopy(p.GetCollectionIds()),
		PolicyId:      p.GetPolicyId(),
		IpAllow:       slices.Clone(p.GetIpAllow()),
		IpDeny:        slices.Clone(p.GetIpDeny()),
	}
	switch a := p.GetAuth().(type) {
	case *adminv1.AccessProfile_ApiToken:
		ts := idx.tokens[p.GetId()]
		tokens := make([]*authzv1.Token, len(ts))
		for i, t := range ts {
			tokens[i] = &authzv1.Token{
				Id:           t.GetId(),
				SecretSha256: slices.Clone(t.GetSecretSha256()),
				ExpireTime:   cloneTime(t.GetExpireTime()),
			}
		}
		out.Auth = &authzv1.Profile_ApiToken{ApiToken: &authzv1.ApiTokenAuth{Tokens: tokens}}
	case *adminv1.AccessProfile_Jwt:
		jwt, err := jwtAuth(p.GetId(), a.Jwt)
		if err != nil {
			return nil, err
		}
		out.Auth = &authzv1.Profile_Jwt{Jwt: jwt}
	default:
		return nil, fmt.Errorf("no credential kind")
	}
	return out, nil
}

func jwtAuth(profileID string, j *adminv1.JwtAuth) (*authzv1.JwtAuth, error) {
	out := &authzv1.JwtAuth{
		Claim:          j.GetClaim(),
		ClaimValue:     j.GetClaimValue(),
		RequiredClaims: slices.Clone(j.GetRequiredClaims()),
		Issuers:        slices.Clone(j.GetIssuers()),
		Audiences:      slices.Clone(j.GetAudiences()),
		Algorithms:     slices.Clone(j.GetAlgorithms()),
	}
	if out.Claim == "" {
		out.Claim = DefaultJWTClaim
	}
	if out.ClaimValue == "" {
		out.ClaimValue = profileID
	}
	switch k := j.GetKey().(type) {
	case *adminv1.JwtAuth_HmacSecret:
		out.Key = &authzv1.JwtAuth_HmacSecret{HmacSecret: k.HmacSecret}
	case *adminv1.JwtAuth_PublicKeys:
		out.Key = &authzv1.JwtAuth_PublicKeys{PublicKeys: &authzv1.PublicKeys{Pem: slices.Clone(k.PublicKeys.GetPem())}}
	case *adminv1.JwtAuth_JwksUrl:
		out.Key = &authzv1.JwtAuth_JwksUrl{JwksUrl: k.JwksUrl}
	case *adminv1.JwtAuth_OidcIssuer:
		out.Key = &authzv1.JwtAuth_OidcIssuer{OidcIssuer: k.OidcIssuer}
	default:
		return nil, fmt.Errorf("jwt: no key")
	}
	return out, nil
}

var ratePeriods = map[string]time.Duration{"second": time.Second, "minute": time.Minute, "hour": time.Hour}

var quotaWindows = map[string]authzv1.Window{
	"day": authzv1.Window_WINDOW_DAY, "week": authzv1.Window_WINDOW_WEEK, "month": authzv1.Window_WINDOW_MONTH,
}

// policy is the authz view of an access policy: the period as a duration, the window as an enum.
func policy(p *adminv1.AccessPolicy) (*authzv1.Policy, error) {
	out := &authzv1.Policy{Name: p.GetId()}
	if rl := p.GetRateLimit(); rl != nil {
		period, ok := ratePeriods[rl.GetPer()]
		if !ok {
			return nil, fmt.Errorf("rate limit period %q", rl.GetPer())
		}
		burst := rl.GetBurst()
		if burst == 0 {
			burst = rl.GetRequests()
		}
		out.RateLimit = &authzv1.RateLimit{Requests: rl.GetRequests(), Period: durationpb.New(period), Burst: burst}
	}
	if q := p.GetQuota(); q != nil {
		w, ok := quotaWindows[q.GetPer()]
		if !ok {
			return nil, fmt.Errorf("quota window %q", q.GetPer())
		}
		out.Quota = &authzv1.Quota{Requests: q.GetRequests(), Window: w}
	}
	return out, nil
}

// AuthzConfig gathers the authz resources of o into one Config, the form of the sidecar's
// config file and local cache.
func (o *Output) AuthzConfig() *authzv1.Config {
	cfg := &authzv1.Config{Version: o.Version}
	for _, r := range o.Authz[AuthzEndpointType] {
		cfg.Endpoints = append(cfg.Endpoints, proto.Clone(r).(*authzv1.Endpoint))
	}
	for _, r := range o.Authz[AuthzProfileType] {
		cfg.Profiles = append(cfg.Profiles, proto.Clone(r).(*authzv1.Profile))
	}
	for _, r := range o.Authz[AuthzPolicyType] {
		cfg.Policies = append(cfg.Policies, proto.Clone(r).(*authzv1.Policy))
	}
	return cfg
}

// ResourceName is the xDS name of a compiled resource, Envoy's or authz's.
func ResourceName(r types.Resource) string {
	if n, ok := r.(interface{ GetName() string }); ok {
		return n.GetName()
	}
	if c, ok := r.(interface{ GetClusterName() string }); ok {
		return c.GetClusterName()
	}
	return ""
}

func asResources[T types.Resource](in []T) []types.Resource {
	out := make([]types.Resource, len(in))
	for i, r := range in {
		out[i] = r
	}
	return out
}

func sortedCopy(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return out
}

func cloneTime(t *timestamppb.Timestamp) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return &timestamppb.Timestamp{Seconds: t.GetSeconds(), Nanos: t.GetNanos()}
}
