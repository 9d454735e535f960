package admin

import (
	"context"
	"slices"
	"strconv"

	"google.golang.org/protobuf/types/known/emptypb"

	"gatehouse/controlplane/store"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

const kindCollection = "collection"

// collectionResource is how the shared steps handle collections.
var collectionResource = topLevel[*adminv1.Collection]{
	table:    store.Collections,
	kind:     kindCollection,
	plural:   "collections",
	idPrefix: prefixCollection,
	stamps: func(c *adminv1.Collection) stamps {
		return stamps{id: &c.Id, etag: &c.Etag, createTime: &c.CreateTime, updateTime: &c.UpdateTime}
	},
	check: checkCollection,
}

// collections implements CollectionService.
type collections struct {
	adminv1.UnimplementedCollectionServiceServer
	s *Server
}

func (c collections) CreateCollection(ctx context.Context, req *adminv1.CreateCollectionRequest) (*adminv1.Collection, error) {
	return collectionResource.create(ctx, c.s, req, req.GetCollection())
}

// checkCollection applies the rules that span collections: unique name and unique path.
func checkCollection(tx *store.Tx, col *adminv1.Collection) error {
	err := store.Each(tx, store.Collections, "", func(o *adminv1.Collection) error {
		if o.GetId() == col.GetId() {
			return nil
		}
		if o.GetPath() == col.GetPath() {
			return conflict(reasonDuplicatePath, "collection.path",
				"collection "+o.GetId()+" already uses the path "+strconv.Quote(col.GetPath())+"; choose another")
		}
		if o.GetName() == col.GetName() {
			return conflict(reasonDuplicateName, "collection.name",
				"collection "+o.GetId()+" already has the name "+strconv.Quote(col.GetName())+"; choose another")
		}
		return nil
	})
	return err
}

func (c collections) GetCollection(ctx context.Context, req *adminv1.GetCollectionRequest) (*adminv1.Collection, error) {
	return collectionResource.get(c.s, req)
}

func (c collections) ListCollections(ctx context.Context, req *adminv1.ListCollectionsRequest) (*adminv1.ListCollectionsResponse, error) {
	items, next, err := collectionResource.list(c.s, req)
	if err != nil {
		return nil, err
	}
	return &adminv1.ListCollectionsResponse{Collections: items, NextPageToken: next}, nil
}

func (c collections) UpdateCollection(ctx context.Context, req *adminv1.UpdateCollectionRequest) (*adminv1.Collection, error) {
	return collectionResource.update(ctx, c.s, req.GetCollection(), req.GetUpdateMask())
}

func (c collections) DeleteCollection(ctx context.Context, req *adminv1.DeleteCollectionRequest) (*emptypb.Empty, error) {
	hint := "delete its endpoints first or set force to delete them with it; access profiles that name it must be changed first"
	var children func(*wtx, *adminv1.Collection) error
	if req.GetForce() {
		hint, children = "delete or change the access profiles that name it first", deleteCollectionEndpoints
	}
	if err := collectionResource.delete(ctx, c.s, req, children, hint); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// deleteCollectionEndpoints deletes the endpoints of col, for a forced delete.
func deleteCollectionEndpoints(w *wtx, col *adminv1.Collection) error {
	eps, err := store.List(w.Tx, store.Endpoints, col.Id, "", 0)
	if err != nil {
		return err
	}
	for _, ep := range eps {
		if err := store.Delete(w.Tx, store.Endpoints, col.Id, ep.Id); err != nil {
			return err
		}
		w.record("delete", kindEndpoint, ep.Id, ep.Name, col.Id)
	}
	return nil
}

// requireUpdate refuses an update request without the resource it updates or its keys.
func requireUpdate(field string, present bool, keys map[string]string) error {
	var v violations
	if !present {
		v.add(field, "is required")
		return v.err()
	}
	for _, k := range sortedKeys(keys) {
		if keys[k] == "" {
			v.add(field+"."+k, "is required to name the %s to update", field)
		}
	}
	return v.err()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
