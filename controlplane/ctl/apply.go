package ctl

import (
	"context"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// refs maps names to ids for the resources that others reference or contain; creates add to it.
type refs struct {
	policies, collections, clients map[string]string
	// created collects what creates returned, for the caller to print.
	created []proto.Message
}

func newRefs(s *State) *refs {
	r := &refs{policies: map[string]string{}, collections: map[string]string{}, clients: map[string]string{}}
	for _, p := range s.Policies {
		r.policies[p.GetName()] = p.GetId()
	}
	for _, c := range s.Collections {
		r.collections[c.GetName()] = c.GetId()
	}
	for _, c := range s.Clients {
		r.clients[c.GetName()] = c.GetId()
	}
	return r
}

// execute runs the plan in order, printing each action before it runs. It stops at the first
// error: what ran stays applied, and a second apply continues from there.
func (a *api) execute(ctx context.Context, plan Plan, cur *State, w io.Writer) error {
	r := newRefs(cur)
	for _, act := range plan {
		fmt.Fprintln(w, act)
		if err := a.run(ctx, act, r); err != nil {
			name := act.Name
			if act.Parent != "" {
				name = act.Parent + "/" + act.Name
			}
			return fmt.Errorf("%s %s %q: %w", act.Op, act.Kind, name, err)
		}
	}
	return nil
}

func (a *api) run(ctx context.Context, act Action, r *refs) error {
	var mask *fieldmaskpb.FieldMask
	if act.Op == OpUpdate {
		mask = &fieldmaskpb.FieldMask{Paths: act.Fields}
	}
	switch act.Kind {
	case KindPolicy:
		return a.runPolicy(ctx, act, r, mask)
	case KindCollection:
		return a.runCollection(ctx, act, r, mask)
	case KindEndpoint:
		return a.runEndpoint(ctx, act, r, mask)
	case KindClient:
		return a.runClient(ctx, act, r, mask)
	case KindProfile:
		return a.runProfile(ctx, act, r, mask)
	}
	return fmt.Errorf("unknown kind %q", act.Kind)
}

func (a *api) runPolicy(ctx context.Context, act Action, r *refs, mask *fieldmaskpb.FieldMask) error {
	switch act.Op {
	case OpCreate:
		p, err := a.policies.CreatePolicy(ctx, &adminv1.CreatePolicyRequest{Policy: clone(act.desired.(*adminv1.AccessPolicy))})
		if err != nil {
			return err
		}
		r.policies[p.GetName()] = p.GetId()
		r.created = append(r.created, p)
		return nil
	case OpUpdate:
		cur := act.current.(*adminv1.AccessPolicy)
		p := clone(act.desired.(*adminv1.AccessPolicy))
		p.Id, p.Etag = cur.GetId(), cur.GetEtag()
		_, err := a.policies.UpdatePolicy(ctx, &adminv1.UpdatePolicyRequest{Policy: p, UpdateMask: mask})
		return err
	default:
		cur := act.current.(*adminv1.AccessPolicy)
		_, err := a.policies.DeletePolicy(ctx, &adminv1.DeletePolicyRequest{Id: cur.GetId(), Etag: cur.GetEtag()})
		return err
	}
}

func (a *api) runCollection(ctx context.Context, act Action, r *refs, mask *fieldmaskpb.FieldMask) error {
	switch act.Op {
	case OpCreate:
		c, err := a.collections.CreateCollection(ctx, &adminv1.CreateCollectionRequest{Collection: clone(act.desired.(*adminv1.Collection))})
		if err != nil {
			return err
		}
		r.collections[c.GetName()] = c.GetId()
		r.created = append(r.created, c)
		return nil
	case OpUpdate:
		cur := act.current.(*adminv1.Collection)
		c := clone(act.desired.(*adminv1.Collection))
		c.Id, c.Etag = cur.GetId(), cur.GetEtag()
		_, err := a.collections.UpdateCollection(ctx, &adminv1.UpdateCollectionRequest{Collection: c, UpdateMask: mask})
		return err
	default:
		// Pruning a collection removes it with its endpoints: the file no longer has either.
		cur := act.current.(*adminv1.Collection)
		_, err := a.collections.DeleteCollection(ctx, &adminv1.DeleteCollectionRequest{Id: cur.GetId(), Etag: cur.GetEtag(), Force: true})
		return err
	}
}

func (a *api) runEndpoint(ctx context.Context, act Action, r *refs, mask *fieldmaskpb.FieldMask) error {
	switch act.Op {
	case OpCreate:
		colID, ok := r.collections[act.Parent]
		if !ok {
			return fmt.Errorf("collection %q does not exist", act.Parent)
		}
		e, err := a.endpoints.CreateEndpoint(ctx, &adminv1.CreateEndpointRequest{CollectionId: colID, Endpoint: clone(act.desired.(*adminv1.Endpoint))})
		if err == nil {
			r.created = append(r.created, e)
		}
		return err
	case OpUpdate:
		cur := act.current.(*adminv1.Endpoint)
		e := clone(act.desired.(*adminv1.Endpoint))
		e.Id, e.CollectionId, e.Etag = cur.GetId(), cur.GetCollectionId(), cur.GetEtag()
		_, err := a.endpoints.UpdateEndpoint(ctx, &adminv1.UpdateEndpointRequest{Endpoint: e, UpdateMask: mask})
		return err
	default:
		cur := act.current.(*adminv1.Endpoint)
		_, err := a.endpoints.DeleteEndpoint(ctx, &adminv1.DeleteEndpointRequest{CollectionId: cur.GetCollectionId(), Id: cur.GetId(), Etag: cur.GetEtag()})
		return err
	}
}

func (a *api) runClient(ctx context.Context, act Action, r *refs, mask *fieldmaskpb.FieldMask) error {
	switch act.Op {
	case OpCreate:
		c, err := a.clients.CreateClient(ctx, &adminv1.CreateClientRequest{Client: clone(act.desired.(*adminv1.Client))})
		if err != nil {
			return err
		}
		r.clients[c.GetName()] = c.GetId()
		r.created = append(r.created, c)
		return nil
	case OpUpdate:
		cur := act.current.(*adminv1.Client)
		c := clone(act.desired.(*adminv1.Client))
		c.Id, c.Etag = cur.GetId(), cur.GetEtag()
		_, err := a.clients.UpdateClient(ctx, &adminv1.UpdateClientRequest{Client: c, UpdateMask: mask})
		return err
	default:
		// Pruning a client removes it with its profiles and their tokens.
		cur := act.current.(*adminv1.Client)
		_, err := a.clients.DeleteClient(ctx, &adminv1.DeleteClientRequest{Id: cur.GetId(), Etag: cur.GetEtag(), Force: true})
		return err
	}
}

func (a *api) runProfile(ctx context.Context, act Action, r *refs, mask *fieldmaskpb.FieldMask) error {
	if act.Op == OpDelete {
		cur := act.current.(*adminv1.AccessProfile)
		_, err := a.profiles.DeleteAccessProfile(ctx, &adminv1.DeleteAccessProfileRequest{ClientId: cur.GetClientId(), Id: cur.GetId(), Etag: cur.GetEtag()})
		return err
	}
	p, err := resolveProfile(act.profile, r)
	if err != nil {
		return err
	}
	if act.Op == OpCreate {
		clientID, ok := r.clients[act.Parent]
		if !ok {
			return fmt.Errorf("client %q does not exist", act.Parent)
		}
		p, err := a.profiles.CreateAccessProfile(ctx, &adminv1.CreateAccessProfileRequest{ClientId: clientID, AccessProfile: p})
		if err == nil {
			r.created = append(r.created, p)
		}
		return err
	}
	cur := act.current.(*adminv1.AccessProfile)
	p.Id, p.ClientId, p.Etag = cur.GetId(), cur.GetClientId(), cur.GetEtag()
	_, err = a.profiles.UpdateAccessProfile(ctx, &adminv1.UpdateAccessProfileRequest{AccessProfile: p, UpdateMask: mask})
	return err
}

// resolveProfile turns a profile's collection and policy names into ids.
func resolveProfile(ps *ProfileSpec, r *refs) (*adminv1.AccessProfile, error) {
	p := clone(ps.Profile)
	p.CollectionIds = nil
	for _, name := range ps.Collections {
		id, ok := r.collections[name]
		if !ok {
			return nil, fmt.Errorf("collection %q does not exist", name)
		}
		p.CollectionIds = append(p.CollectionIds, id)
	}
	if ps.Policy != "" {
		id, ok := r.policies[ps.Policy]
		if !ok {
			return nil, fmt.Errorf("policy %q does not exist", ps.Policy)
		}
		p.PolicyId = id
	}
	return p, nil
}

func clone[T proto.Message](m T) T { return proto.Clone(m).(T) }
