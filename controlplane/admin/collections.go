package admin

import (
	"context"
	"errors"
	"slices"
	"strconv"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"gatehouse/controlplane/store"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

const kindCollection = "collection"

var collectionMask = maskRules{
	prefix:     "collection",
	keys:       []string{"id", "etag"},
	outputOnly: []string{"create_time", "update_time"},
}

// collections implements CollectionService.
type collections struct {
	adminv1.UnimplementedCollectionServiceServer
	s *Server
}

func (c collections) CreateCollection(ctx context.Context, req *adminv1.CreateCollectionRequest) (*adminv1.Collection, error) {
	var v violations
	v.addPGV("", req.ValidateAll())
	if err := v.err(); err != nil {
		return nil, err
	}
	col := proto.Clone(req.GetCollection()).(*adminv1.Collection)
	col.Id = newID(prefixCollection)
	_, err := c.s.write(ctx, "create collection", func(w *wtx) error {
		col.CreateTime, col.UpdateTime, col.Etag = w.now, w.now, w.etag
		if err := checkCollection(w.Tx, col); err != nil {
			return err
		}
		w.record("create", kindCollection, col.Id, col.Name, "")
		return store.Put(w.Tx, store.Collections, col)
	})
	if err != nil {
		return nil, err
	}
	return col, nil
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
	var v violations
	v.addPGV("", req.ValidateAll())
	if err := v.err(); err != nil {
		return nil, err
	}
	var out *adminv1.Collection
	err := c.s.read("get collection", func(tx *store.Tx) error {
		var err error
		out, err = getIn(tx, store.Collections, kindCollection, "", req.GetId())
		return err
	})
	return out, err
}

func (c collections) ListCollections(ctx context.Context, req *adminv1.ListCollectionsRequest) (*adminv1.ListCollectionsResponse, error) {
	var v violations
	v.addPGV("", req.ValidateAll())
	if err := v.err(); err != nil {
		return nil, err
	}
	out := &adminv1.ListCollectionsResponse{}
	err := c.s.read("list collections", func(tx *store.Tx) error {
		var err error
		out.Collections, out.NextPageToken, err = page(tx, store.Collections, "", req.GetPageSize(), req.GetPageToken(), (*adminv1.Collection).GetId)
		return err
	})
	return out, err
}

func (c collections) UpdateCollection(ctx context.Context, req *adminv1.UpdateCollectionRequest) (*adminv1.Collection, error) {
	in := req.GetCollection()
	if err := requireUpdate("collection", in != nil, map[string]string{"id": in.GetId()}); err != nil {
		return nil, err
	}
	paths, err := updatePaths(in, req.GetUpdateMask(), collectionMask)
	if err != nil {
		return nil, err
	}
	var out *adminv1.Collection
	_, err = c.s.write(ctx, "update collection", func(w *wtx) error {
		cur, err := getIn(w.Tx, store.Collections, kindCollection, "", in.GetId())
		if err != nil {
			return err
		}
		if err := checkEtag(kindCollection, cur.Id, in.GetEtag(), cur.Etag); err != nil {
			return err
		}
		next := proto.Clone(cur).(*adminv1.Collection)
		applyPaths(next, in, paths)
		if proto.Equal(next, cur) {
			out = cur // nothing to change: no write, no new revision
			return nil
		}
		var v violations
		v.addPGV("collection", next.ValidateAll())
		if err := v.err(); err != nil {
			return err
		}
		if err := checkCollection(w.Tx, next); err != nil {
			return err
		}
		next.UpdateTime, next.Etag = w.now, w.etag
		w.record("update", kindCollection, next.Id, next.Name, "")
		out = next
		return store.Put(w.Tx, store.Collections, next)
	})
	return out, err
}

func (c collections) DeleteCollection(ctx context.Context, req *adminv1.DeleteCollectionRequest) (*emptypb.Empty, error) {
	var v violations
	v.addPGV("", req.ValidateAll())
	if err := v.err(); err != nil {
		return nil, err
	}
	_, err := c.s.write(ctx, "delete collection", func(w *wtx) error {
		cur, err := getIn(w.Tx, store.Collections, kindCollection, "", req.GetId())
		if err != nil {
			return err
		}
		if err := checkEtag(kindCollection, cur.Id, req.GetEtag(), cur.Etag); err != nil {
			return err
		}
		if req.GetForce() {
			eps, err := store.List(w.Tx, store.Endpoints, cur.Id, "", 0)
			if err != nil {
				return err
			}
			for _, ep := range eps {
				if err := store.Delete(w.Tx, store.Endpoints, cur.Id, ep.Id); err != nil {
					return err
				}
				w.record("delete", kindEndpoint, ep.Id, ep.Name, cur.Id)
			}
		}
		err = store.Delete(w.Tx, store.Collections, "", cur.Id)
		var re *store.ReferencedError
		if errors.As(err, &re) {
			hint := "delete or change the access profiles that name it first"
			if !req.GetForce() {
				hint = "delete its endpoints first or set force to delete them with it; access profiles that name it must be changed first"
			}
			return referenced(re, hint)
		}
		if err != nil {
			return err
		}
		w.record("delete", kindCollection, cur.Id, cur.Name, "")
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
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
