package admin

import (
	"context"
	"errors"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"gatehouse/controlplane/store"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

const kindPolicy = "policy"

var policyMask = maskRules{
	prefix:     "policy",
	keys:       []string{"id", "etag"},
	outputOnly: []string{"create_time", "update_time"},
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

func (ps policies) CreatePolicy(ctx context.Context, req *adminv1.CreatePolicyRequest) (*adminv1.AccessPolicy, error) {
	var v violations
	v.addPGV("", req.ValidateAll())
	if err := v.err(); err != nil {
		return nil, err
	}
	p := proto.Clone(req.GetPolicy()).(*adminv1.AccessPolicy)
	p.Id = newID(prefixPolicy)
	policyDefaults(p)
	_, err := ps.s.write(ctx, "create policy", func(w *wtx) error {
		p.CreateTime, p.UpdateTime, p.Etag = w.now, w.now, w.etag
		if err := uniqueName(w.Tx, store.Policies, kindPolicy, "", p.Id, p.Name, "policy.name"); err != nil {
			return err
		}
		w.record("create", kindPolicy, p.Id, p.Name, "")
		return store.Put(w.Tx, store.Policies, p)
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (ps policies) GetPolicy(ctx context.Context, req *adminv1.GetPolicyRequest) (*adminv1.AccessPolicy, error) {
	var v violations
	v.addPGV("", req.ValidateAll())
	if err := v.err(); err != nil {
		return nil, err
	}
	var out *adminv1.AccessPolicy
	err := ps.s.read("get policy", func(tx *store.Tx) error {
		var err error
		out, err = getIn(tx, store.Policies, kindPolicy, "", req.GetId())
		return err
	})
	return out, err
}

func (ps policies) ListPolicies(ctx context.Context, req *adminv1.ListPoliciesRequest) (*adminv1.ListPoliciesResponse, error) {
	var v violations
	v.addPGV("", req.ValidateAll())
	if err := v.err(); err != nil {
		return nil, err
	}
	out := &adminv1.ListPoliciesResponse{}
	err := ps.s.read("list policies", func(tx *store.Tx) error {
		var err error
		out.Policies, out.NextPageToken, err = page(tx, store.Policies, "", req.GetPageSize(), req.GetPageToken(), (*adminv1.AccessPolicy).GetId)
		return err
	})
	return out, err
}

func (ps policies) UpdatePolicy(ctx context.Context, req *adminv1.UpdatePolicyRequest) (*adminv1.AccessPolicy, error) {
	in := req.GetPolicy()
	if err := requireUpdate("policy", in != nil, map[string]string{"id": in.GetId()}); err != nil {
		return nil, err
	}
	paths, err := updatePaths(in, req.GetUpdateMask(), policyMask)
	if err != nil {
		return nil, err
	}
	var out *adminv1.AccessPolicy
	_, err = ps.s.write(ctx, "update policy", func(w *wtx) error {
		cur, err := getIn(w.Tx, store.Policies, kindPolicy, "", in.GetId())
		if err != nil {
			return err
		}
		if err := checkEtag(kindPolicy, cur.Id, in.GetEtag(), cur.Etag); err != nil {
			return err
		}
		next := proto.Clone(cur).(*adminv1.AccessPolicy)
		applyPaths(next, in, paths)
		// A burst that only followed the request count follows it to its new value.
		if rl, old := next.GetRateLimit(), cur.GetRateLimit(); rl != nil && old != nil &&
			old.Burst == old.Requests && touches(paths, "rate_limit.requests") && !touchesExactly(paths, "rate_limit.burst") {
			rl.Burst = 0
		}
		policyDefaults(next)
		if proto.Equal(next, cur) {
			out = cur
			return nil
		}
		var v violations
		v.addPGV("policy", next.ValidateAll())
		if err := v.err(); err != nil {
			return err
		}
		if err := uniqueName(w.Tx, store.Policies, kindPolicy, "", next.Id, next.Name, "policy.name"); err != nil {
			return err
		}
		next.UpdateTime, next.Etag = w.now, w.etag
		w.record("update", kindPolicy, next.Id, next.Name, "")
		out = next
		return store.Put(w.Tx, store.Policies, next)
	})
	return out, err
}

// touchesExactly reports whether paths name field itself, not an enclosing message.
func touchesExactly(paths []string, field string) bool {
	return contains(paths, field)
}

func (ps policies) DeletePolicy(ctx context.Context, req *adminv1.DeletePolicyRequest) (*emptypb.Empty, error) {
	var v violations
	v.addPGV("", req.ValidateAll())
	if err := v.err(); err != nil {
		return nil, err
	}
	_, err := ps.s.write(ctx, "delete policy", func(w *wtx) error {
		cur, err := getIn(w.Tx, store.Policies, kindPolicy, "", req.GetId())
		if err != nil {
			return err
		}
		if err := checkEtag(kindPolicy, cur.Id, req.GetEtag(), cur.Etag); err != nil {
			return err
		}
		err = store.Delete(w.Tx, store.Policies, "", cur.Id)
		var re *store.ReferencedError
		if errors.As(err, &re) {
			return referenced(re, "change the access profiles that use it to another policy or none first")
		}
		if err != nil {
			return err
		}
		w.record("delete", kindPolicy, cur.Id, cur.Name, "")
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}
