package ctl

import (
	"context"
	"fmt"
	"sort"

	"google.golang.org/grpc"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// api holds the generated clients of the admin services.
type api struct {
	collections adminv1.CollectionServiceClient
	endpoints   adminv1.EndpointServiceClient
	clients     adminv1.ClientServiceClient
	profiles    adminv1.AccessProfileServiceClient
	tokens      adminv1.TokenServiceClient
	policies    adminv1.PolicyServiceClient
	audit       adminv1.AuditServiceClient
	calls       adminv1.CallLogServiceClient
	// pageSize is the page size of list calls.
	pageSize int32
}

func newAPI(cc grpc.ClientConnInterface) *api {
	return &api{
		collections: adminv1.NewCollectionServiceClient(cc),
		endpoints:   adminv1.NewEndpointServiceClient(cc),
		clients:     adminv1.NewClientServiceClient(cc),
		profiles:    adminv1.NewAccessProfileServiceClient(cc),
		tokens:      adminv1.NewTokenServiceClient(cc),
		policies:    adminv1.NewPolicyServiceClient(cc),
		audit:       adminv1.NewAuditServiceClient(cc),
		calls:       adminv1.NewCallLogServiceClient(cc),
		pageSize:    pageSize,
	}
}

// State is the configuration the control plane holds, as apply and export read it.
type State struct {
	Policies    []*adminv1.AccessPolicy
	Collections []*adminv1.Collection
	// Endpoints by collection id.
	Endpoints map[string][]*adminv1.Endpoint
	Clients   []*adminv1.Client
	// Profiles by client id.
	Profiles map[string][]*adminv1.AccessProfile
}

// pageSize is the largest page the admin API serves, so reading a large state takes few calls.
const pageSize = 1000

// listAll follows page tokens until the last page.
func listAll[T any](ctx context.Context, page func(ctx context.Context, token string) ([]T, string, error)) ([]T, error) {
	var all []T
	token := ""
	for {
		items, next, err := page(ctx, token)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if next == "" {
			return all, nil
		}
		token = next
	}
}

func (a *api) listPolicies(ctx context.Context) ([]*adminv1.AccessPolicy, error) {
	return listAll(ctx, func(ctx context.Context, tok string) ([]*adminv1.AccessPolicy, string, error) {
		r, err := a.policies.ListPolicies(ctx, &adminv1.ListPoliciesRequest{PageSize: a.pageSize, PageToken: tok})
		return r.GetPolicies(), r.GetNextPageToken(), wrap(err, "list policies")
	})
}

func (a *api) listCollections(ctx context.Context) ([]*adminv1.Collection, error) {
	return listAll(ctx, func(ctx context.Context, tok string) ([]*adminv1.Collection, string, error) {
		r, err := a.collections.ListCollections(ctx, &adminv1.ListCollectionsRequest{PageSize: a.pageSize, PageToken: tok})
		return r.GetCollections(), r.GetNextPageToken(), wrap(err, "list collections")
	})
}

func (a *api) listEndpoints(ctx context.Context, collectionID string) ([]*adminv1.Endpoint, error) {
	return listAll(ctx, func(ctx context.Context, tok string) ([]*adminv1.Endpoint, string, error) {
		r, err := a.endpoints.ListEndpoints(ctx, &adminv1.ListEndpointsRequest{CollectionId: collectionID, PageSize: a.pageSize, PageToken: tok})
		return r.GetEndpoints(), r.GetNextPageToken(), wrap(err, "list endpoints")
	})
}

func (a *api) listClients(ctx context.Context) ([]*adminv1.Client, error) {
	return listAll(ctx, func(ctx context.Context, tok string) ([]*adminv1.Client, string, error) {
		r, err := a.clients.ListClients(ctx, &adminv1.ListClientsRequest{PageSize: a.pageSize, PageToken: tok})
		return r.GetClients(), r.GetNextPageToken(), wrap(err, "list clients")
	})
}

func (a *api) listProfiles(ctx context.Context, clientID string) ([]*adminv1.AccessProfile, error) {
	return listAll(ctx, func(ctx context.Context, tok string) ([]*adminv1.AccessProfile, string, error) {
		r, err := a.profiles.ListAccessProfiles(ctx, &adminv1.ListAccessProfilesRequest{ClientId: clientID, PageSize: a.pageSize, PageToken: tok})
		return r.GetAccessProfiles(), r.GetNextPageToken(), wrap(err, "list access profiles")
	})
}

func (a *api) listTokens(ctx context.Context, clientID, profileID string) ([]*adminv1.ApiToken, error) {
	return listAll(ctx, func(ctx context.Context, tok string) ([]*adminv1.ApiToken, string, error) {
		r, err := a.tokens.ListTokens(ctx, &adminv1.ListTokensRequest{ClientId: clientID, ProfileId: profileID, PageSize: a.pageSize, PageToken: tok})
		return r.GetTokens(), r.GetNextPageToken(), wrap(err, "list tokens")
	})
}

// readState reads every resource apply and export deal with. Tokens are not part of it: they
// are secrets, issued one at a time.
func (a *api) readState(ctx context.Context) (*State, error) {
	s := &State{Endpoints: map[string][]*adminv1.Endpoint{}, Profiles: map[string][]*adminv1.AccessProfile{}}
	var err error
	if s.Policies, err = a.listPolicies(ctx); err != nil {
		return nil, err
	}
	if s.Collections, err = a.listCollections(ctx); err != nil {
		return nil, err
	}
	for _, c := range s.Collections {
		if s.Endpoints[c.GetId()], err = a.listEndpoints(ctx, c.GetId()); err != nil {
			return nil, fmt.Errorf("collection %q: %w", c.GetName(), err)
		}
	}
	if s.Clients, err = a.listClients(ctx); err != nil {
		return nil, err
	}
	for _, c := range s.Clients {
		if s.Profiles[c.GetId()], err = a.listProfiles(ctx, c.GetId()); err != nil {
			return nil, fmt.Errorf("client %q: %w", c.GetName(), err)
		}
	}
	return s, nil
}

// named is a resource with an id and a name.
type named interface {
	GetId() string
	GetName() string
}

// find returns the item whose id or, failing that, whose name is ref.
func find[T named](items []T, ref string) (T, bool) {
	for _, it := range items {
		if it.GetId() == ref {
			return it, true
		}
	}
	for _, it := range items {
		if it.GetName() == ref {
			return it, true
		}
	}
	var zero T
	return zero, false
}

// byName sorts a copy of items by name, then id, for stable output.
func byName[T named](items []T) []T {
	out := append([]T(nil), items...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].GetName() != out[j].GetName() {
			return out[i].GetName() < out[j].GetName()
		}
		return out[i].GetId() < out[j].GetId()
	})
	return out
}

// wrap adds what was being done to an error, keeping the gRPC status reachable for printing.
func wrap(err error, what string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
