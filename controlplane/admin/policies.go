package admin

import (
	"context"

	"google.golang.org/protobuf/types/known/emptypb"

	"gatehouse/controlplane/store"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

const kindPolicy = "policy"

// policyResource is how the shared steps handle access policies.
var policyResource = topLevel[*adminv1.AccessPolicy]{
	table:    store.Policies,
	kind:     kindPolicy,
	plural:   "policies",
	idPrefix: prefixPolicy,
	stamps: func(p *adminv1.AccessPolicy) stamps {
		return stamps{id: &p.Id, etag: &p.Etag, createTime: &p.CreateTime, updateTime: &p.UpdateTime}
	},
	defaults: policyDefaults,
	follow:   followBurst,
}

// policies implements PolicyService.
type policies struct {
	adminv1.UnimplementedPolicyServiceServer
	s *Server
}

// policyDefaults lets a rate limit's burst default to its request count: the whole allowance
// of one period may arrive at once.
func policyDefaults(p *adminv1.AccessPolicy) {
	if rl := p.GetRateLimit(); rl != nil && rl.Burst == 0 {
		rl.Burst = rl.Requests
	}
}

// followBurst lets a burst that only followed the request count follow it to its new value.
func followBurst(next, cur *adminv1.AccessPolicy, paths []string) {
	if rl, old := next.GetRateLimit(), cur.GetRateLimit(); rl != nil && old != nil &&
		old.Burst == old.Requests && touches(paths, "rate_limit.requests") && !touchesExactly(paths, "rate_limit.burst") {
		rl.Burst = 0
	}
}

func (ps policies) CreatePolicy(ctx context.Context, req *adminv1.CreatePolicyRequest) (*adminv1.AccessPolicy, error) {
	return policyResource.create(ctx, ps.s, req, req.GetPolicy())
}

func (ps policies) GetPolicy(ctx context.Context, req *adminv1.GetPolicyRequest) (*adminv1.AccessPolicy, error) {
	return policyResource.get(ps.s, req)
}

func (ps policies) ListPolicies(ctx context.Context, req *adminv1.ListPoliciesRequest) (*adminv1.ListPoliciesResponse, error) {
	items, next, err := policyResource.list(ps.s, req)
	if err != nil {
		return nil, err
	}
	return &adminv1.ListPoliciesResponse{Policies: items, NextPageToken: next}, nil
}

func (ps policies) UpdatePolicy(ctx context.Context, req *adminv1.UpdatePolicyRequest) (*adminv1.AccessPolicy, error) {
	return policyResource.update(ctx, ps.s, req.GetPolicy(), req.GetUpdateMask())
}

// touchesExactly reports whether paths name field itself, not an enclosing message.
func touchesExactly(paths []string, field string) bool {
	return contains(paths, field)
}

func (ps policies) DeletePolicy(ctx context.Context, req *adminv1.DeletePolicyRequest) (*emptypb.Empty, error) {
	hint := "change the access profiles that use it to another policy or none first"
	if err := policyResource.delete(ctx, ps.s, req, nil, hint); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}
