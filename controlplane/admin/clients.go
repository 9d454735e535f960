package admin

import (
	"context"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"gatehouse/controlplane/store"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

const kindClient = "client"

// clientResource is how the shared steps handle clients.
var clientResource = topLevel[*adminv1.Client]{
	table:    store.Clients,
	kind:     kindClient,
	plural:   "clients",
	idPrefix: prefixClient,
	stamps: func(c *adminv1.Client) stamps {
		return stamps{id: &c.Id, etag: &c.Etag, createTime: &c.CreateTime, updateTime: &c.UpdateTime}
	},
	defaults: clientDefaults,
}

// clients implements ClientService.
type clients struct {
	adminv1.UnimplementedClientServiceServer
	s *Server
}

// clientDefaults makes clients active unless they say otherwise.
func clientDefaults(cl *adminv1.Client) {
	if cl.Active == nil {
		cl.Active = proto.Bool(true)
	}
}

func (c clients) CreateClient(ctx context.Context, req *adminv1.CreateClientRequest) (*adminv1.Client, error) {
	return clientResource.create(ctx, c.s, req, req.GetClient())
}

func (c clients) GetClient(ctx context.Context, req *adminv1.GetClientRequest) (*adminv1.Client, error) {
	return clientResource.get(c.s, req)
}

func (c clients) ListClients(ctx context.Context, req *adminv1.ListClientsRequest) (*adminv1.ListClientsResponse, error) {
	items, next, err := clientResource.list(c.s, req)
	if err != nil {
		return nil, err
	}
	return &adminv1.ListClientsResponse{Clients: items, NextPageToken: next}, nil
}

func (c clients) UpdateClient(ctx context.Context, req *adminv1.UpdateClientRequest) (*adminv1.Client, error) {
	return clientResource.update(ctx, c.s, req.GetClient(), req.GetUpdateMask())
}

func (c clients) DeleteClient(ctx context.Context, req *adminv1.DeleteClientRequest) (*emptypb.Empty, error) {
	var children func(*wtx, *adminv1.Client) error
	if req.GetForce() {
		children = deleteClientProfiles
	}
	hint := "delete its access profiles first or set force to delete them and their tokens with it"
	if err := clientResource.delete(ctx, c.s, req, children, hint); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// deleteClientProfiles deletes the access profiles of cl and their tokens, for a forced delete.
func deleteClientProfiles(w *wtx, cl *adminv1.Client) error {
	prfs, err := store.List(w.Tx, store.Profiles, cl.Id, "", 0)
	if err != nil {
		return err
	}
	for _, p := range prfs {
		if err := deleteProfile(w, p); err != nil {
			return err
		}
	}
	return nil
}
