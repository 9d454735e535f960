package admin

import (
	"context"
	"errors"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"gatehouse/controlplane/store"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

const kindClient = "client"

var clientMask = maskRules{
	prefix:     "client",
	keys:       []string{"id", "etag"},
	outputOnly: []string{"create_time", "update_time"},
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
	var v violations
	v.addPGV("", req.ValidateAll())
	if err := v.err(); err != nil {
		return nil, err
	}
	cl := proto.Clone(req.GetClient()).(*adminv1.Client)
	cl.Id = newID(prefixClient)
	clientDefaults(cl)
	_, err := c.s.write(ctx, "create client", func(w *wtx) error {
		cl.CreateTime, cl.UpdateTime, cl.Etag = w.now, w.now, w.etag
		if err := uniqueName(w.Tx, store.Clients, kindClient, "", cl.Id, cl.Name, "client.name"); err != nil {
			return err
		}
		w.record("create", kindClient, cl.Id, cl.Name, "")
		return store.Put(w.Tx, store.Clients, cl)
	})
	if err != nil {
		return nil, err
	}
	return cl, nil
}

func (c clients) GetClient(ctx context.Context, req *adminv1.GetClientRequest) (*adminv1.Client, error) {
	var v violations
	v.addPGV("", req.ValidateAll())
	if err := v.err(); err != nil {
		return nil, err
	}
	var out *adminv1.Client
	err := c.s.read("get client", func(tx *store.Tx) error {
		var err error
		out, err = getIn(tx, store.Clients, kindClient, "", req.GetId())
		return err
	})
	return out, err
}

func (c clients) ListClients(ctx context.Context, req *adminv1.ListClientsRequest) (*adminv1.ListClientsResponse, error) {
	var v violations
	v.addPGV("", req.ValidateAll())
	if err := v.err(); err != nil {
		return nil, err
	}
	out := &adminv1.ListClientsResponse{}
	err := c.s.read("list clients", func(tx *store.Tx) error {
		var err error
		out.Clients, out.NextPageToken, err = page(tx, store.Clients, "", req.GetPageSize(), req.GetPageToken(), (*adminv1.Client).GetId)
		return err
	})
	return out, err
}

func (c clients) UpdateClient(ctx context.Context, req *adminv1.UpdateClientRequest) (*adminv1.Client, error) {
	in := req.GetClient()
	if err := requireUpdate("client", in != nil, map[string]string{"id": in.GetId()}); err != nil {
		return nil, err
	}
	paths, err := updatePaths(in, req.GetUpdateMask(), clientMask)
	if err != nil {
		return nil, err
	}
	var out *adminv1.Client
	_, err = c.s.write(ctx, "update client", func(w *wtx) error {
		cur, err := getIn(w.Tx, store.Clients, kindClient, "", in.GetId())
		if err != nil {
			return err
		}
		if err := checkEtag(kindClient, cur.Id, in.GetEtag(), cur.Etag); err != nil {
			return err
		}
		next := proto.Clone(cur).(*adminv1.Client)
		applyPaths(next, in, paths)
		clientDefaults(next)
		if proto.Equal(next, cur) {
			out = cur
			return nil
		}
		var v violations
		v.addPGV("client", next.ValidateAll())
		if err := v.err(); err != nil {
			return err
		}
		if err := uniqueName(w.Tx, store.Clients, kindClient, "", next.Id, next.Name, "client.name"); err != nil {
			return err
		}
		next.UpdateTime, next.Etag = w.now, w.etag
		w.record("update", kindClient, next.Id, next.Name, "")
		out = next
		return store.Put(w.Tx, store.Clients, next)
	})
	return out, err
}

func (c clients) DeleteClient(ctx context.Context, req *adminv1.DeleteClientRequest) (*emptypb.Empty, error) {
	var v violations
	v.addPGV("", req.ValidateAll())
	if err := v.err(); err != nil {
		return nil, err
	}
	_, err := c.s.write(ctx, "delete client", func(w *wtx) error {
		cur, err := getIn(w.Tx, store.Clients, kindClient, "", req.GetId())
		if err != nil {
			return err
		}
		if err := checkEtag(kindClient, cur.Id, req.GetEtag(), cur.Etag); err != nil {
			return err
		}
		if req.GetForce() {
			prfs, err := store.List(w.Tx, store.Profiles, cur.Id, "", 0)
			if err != nil {
				return err
			}
			for _, p := range prfs {
				if err := deleteProfile(w, p); err != nil {
					return err
				}
			}
		}
		err = store.Delete(w.Tx, store.Clients, "", cur.Id)
		var re *store.ReferencedError
		if errors.As(err, &re) {
			return referenced(re, "delete its access profiles first or set force to delete them and their tokens with it")
		}
		if err != nil {
			return err
		}
		w.record("delete", kindClient, cur.Id, cur.Name, "")
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}
