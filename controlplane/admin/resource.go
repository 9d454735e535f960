package admin

import (
	"context"
	"errors"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"gatehouse/controlplane/store"
)

// resourceMsg is what the shared steps read from a resource message.
type resourceMsg interface {
	proto.Message
	validator
	GetId() string
	GetName() string
	GetEtag() string
}

// stamps points at the fields the server sets on every write of a resource.
type stamps struct {
	id, etag               *string
	createTime, updateTime **timestamppb.Timestamp
}

// topLevel describes a resource without a parent (collection, client, policy). Their create,
// get, list, update and delete validate, write in one transaction and audit alike; the hooks
// hold what differs between them.
type topLevel[T resourceMsg] struct {
	table store.Table[T]
	// kind names the resource in messages and audit events; it is also the request field that
	// holds the resource, so it prefixes the resource's field violations.
	kind string
	// plural names the list operation, e.g. "list clients".
	plural   string
	idPrefix string
	stamps   func(T) stamps
	// defaults fills what a create or update leaves unset; nil when nothing has a default.
	defaults func(T)
	// check applies the rules across resources before every write; nil checks only that no
	// other resource of the kind has the name.
	check func(tx *store.Tx, v T) error
	// follow adjusts an update after its fields are applied and before defaults; may be nil.
	follow func(next, cur T, paths []string)
}

func (r topLevel[T]) checkAcross(tx *store.Tx, v T) error {
	if r.check != nil {
		return r.check(tx, v)
	}
	return uniqueName(tx, r.table, r.kind, "", v.GetId(), v.GetName(), r.kind+".name")
}

func (r topLevel[T]) fillDefaults(v T) {
	if r.defaults != nil {
		r.defaults(v)
	}
}

// create stores a copy of in under a new id.
func (r topLevel[T]) create(ctx context.Context, s *Server, req validator, in T) (T, error) {
	var zero T
	if err := checkRequest(req); err != nil {
		return zero, err
	}
	v := proto.Clone(in).(T)
	st := r.stamps(v)
	*st.id = newID(r.idPrefix)
	r.fillDefaults(v)
	_, err := s.write(ctx, "create "+r.kind, func(w *wtx) error {
		*st.createTime, *st.updateTime, *st.etag = w.now, w.now, w.etag
		if err := r.checkAcross(w.Tx, v); err != nil {
			return err
		}
		w.record("create", r.kind, v.GetId(), v.GetName(), "")
		return store.Put(w.Tx, r.table, v)
	})
	if err != nil {
		return zero, err
	}
	return v, nil
}

// get reads the resource req names.
func (r topLevel[T]) get(s *Server, req interface {
	validator
	GetId() string
}) (T, error) {
	var out T
	if err := checkRequest(req); err != nil {
		return out, err
	}
	err := s.read("get "+r.kind, func(tx *store.Tx) error {
		var err error
		out, err = getIn(tx, r.table, r.kind, "", req.GetId())
		return err
	})
	return out, err
}

// list reads one page of resources and returns the next page token.
func (r topLevel[T]) list(s *Server, req interface {
	validator
	GetPageSize() int32
	GetPageToken() string
}) ([]T, string, error) {
	if err := checkRequest(req); err != nil {
		return nil, "", err
	}
	var items []T
	var next string
	err := s.read("list "+r.plural, func(tx *store.Tx) error {
		var err error
		items, next, err = page(tx, r.table, "", req.GetPageSize(), req.GetPageToken(), T.GetId)
		return err
	})
	return items, next, err
}

// update applies the fields of in that mask names to the stored resource. An update that
// changes nothing writes nothing, so it makes no new revision.
func (r topLevel[T]) update(ctx context.Context, s *Server, in T, mask *fieldmaskpb.FieldMask) (T, error) {
	var out T
	if err := requireUpdate(r.kind, in.ProtoReflect().IsValid(), map[string]string{"id": in.GetId()}); err != nil {
		return out, err
	}
	// Top-level resources are named by id alone and carry the same server-set fields.
	rules := maskRules{prefix: r.kind, keys: []string{"id", "etag"}, outputOnly: []string{"create_time", "update_time"}}
	paths, err := updatePaths(in, mask, rules)
	if err != nil {
		return out, err
	}
	_, err = s.write(ctx, "update "+r.kind, func(w *wtx) error {
		cur, err := getIn(w.Tx, r.table, r.kind, "", in.GetId())
		if err != nil {
			return err
		}
		if err := checkEtag(r.kind, cur.GetId(), in.GetEtag(), cur.GetEtag()); err != nil {
			return err
		}
		next := proto.Clone(cur).(T)
		applyPaths(next, in, paths)
		if r.follow != nil {
			r.follow(next, cur, paths)
		}
		r.fillDefaults(next)
		if proto.Equal(next, cur) {
			out = cur
			return nil
		}
		var v violations
		v.addPGV(r.kind, next.ValidateAll())
		if err := v.err(); err != nil {
			return err
		}
		if err := r.checkAcross(w.Tx, next); err != nil {
			return err
		}
		st := r.stamps(next)
		*st.updateTime, *st.etag = w.now, w.etag
		w.record("update", r.kind, next.GetId(), next.GetName(), "")
		out = next
		return store.Put(w.Tx, r.table, next)
	})
	return out, err
}

// delete deletes the resource req names after children, when not nil, has removed what force
// deletes with it. hint tells the caller what to do when the resource is still referred to.
func (r topLevel[T]) delete(ctx context.Context, s *Server, req interface {
	validator
	GetId() string
	GetEtag() string
}, children func(w *wtx, cur T) error, hint string) error {
	if err := checkRequest(req); err != nil {
		return err
	}
	_, err := s.write(ctx, "delete "+r.kind, func(w *wtx) error {
		cur, err := getIn(w.Tx, r.table, r.kind, "", req.GetId())
		if err != nil {
			return err
		}
		if err := checkEtag(r.kind, cur.GetId(), req.GetEtag(), cur.GetEtag()); err != nil {
			return err
		}
		if children != nil {
			if err := children(w, cur); err != nil {
				return err
			}
		}
		err = store.Delete(w.Tx, r.table, "", cur.GetId())
		var re *store.ReferencedError
		if errors.As(err, &re) {
			return referenced(re, hint)
		}
		if err != nil {
			return err
		}
		w.record("delete", r.kind, cur.GetId(), cur.GetName(), "")
		return nil
	})
	return err
}
