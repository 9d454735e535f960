package admin

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"

	"gatehouse/controlplane/store"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

const kindEndpoint = "endpoint"

// defaultEndpointTimeout bounds a recipe call when the endpoint does not say.
const defaultEndpointTimeout = 30 * time.Second

var endpointMask = maskRules{
	prefix:     "endpoint",
	keys:       []string{"id", "collection_id", "etag"},
	outputOnly: []string{"create_time", "update_time"},
}

// endpoints implements EndpointService.
type endpoints struct {
	adminv1.UnimplementedEndpointServiceServer
	s *Server
}

// endpointDefaults fills what an endpoint leaves unset: new endpoints start inactive so that a
// half-configured endpoint is not callable, and calls time out after 30 s.
func endpointDefaults(ep *adminv1.Endpoint) {
	if ep.Active == nil {
		ep.Active = proto.Bool(false)
	}
	if ep.Timeout == nil {
		ep.Timeout = durationpb.New(defaultEndpointTimeout)
	}
}

// validateEndpoint adds what PGV cannot check to v: the path template must parse, which also
// refuses a parameter name used twice.
func validateEndpoint(v *violations, ep *adminv1.Endpoint) {
	if ep == nil || v.has("endpoint.path") {
		return
	}
	if _, err := parseTemplate(ep.GetPath()); err != nil {
		v.add("endpoint.path", "%v", err)
	}
}

// checkEndpoint applies the rules across endpoints: a name unique in the collection and no
// other endpoint of the collection that matches the same method and path.
func checkEndpoint(tx *store.Tx, ep *adminv1.Endpoint) error {
	t, err := parseTemplate(ep.GetPath())
	if err != nil {
		return err // validateEndpoint refused it already
	}
	return store.Each(tx, store.Endpoints, ep.GetCollectionId(), func(o *adminv1.Endpoint) error {
		if o.GetId() == ep.GetId() {
			return nil
		}
		if o.GetName() == ep.GetName() {
			return conflict(reasonDuplicateName, "endpoint.name",
				"endpoint "+o.GetId()+" of this collection already has the name \""+o.GetName()+"\"; choose another")
		}
		if o.GetMethod() != ep.GetMethod() {
			return nil
		}
		ot, err := parseTemplate(o.GetPath())
		if err != nil {
			return nil // stored endpoints were checked when written; an old rule change must not block writes
		}
		if t.clashes(ot) {
			return conflict(reasonRouteClash, "endpoint.path",
				ep.GetMethod()+" "+ep.GetPath()+" matches the same requests as endpoint "+o.GetId()+
					" ("+o.GetMethod()+" "+o.GetPath()+"); change the path or the method")
		}
		return nil
	})
}

func (e endpoints) CreateEndpoint(ctx context.Context, req *adminv1.CreateEndpointRequest) (*adminv1.Endpoint, error) {
	var v violations
	v.addPGV("", req.ValidateAll())
	validateEndpoint(&v, req.GetEndpoint())
	if err := v.err(); err != nil {
		return nil, err
	}
	ep := proto.Clone(req.GetEndpoint()).(*adminv1.Endpoint)
	ep.Id, ep.CollectionId = newID(prefixEndpoint), req.GetCollectionId()
	endpointDefaults(ep)
	_, err := e.s.write(ctx, "create endpoint", func(w *wtx) error {
		if _, err := getIn(w.Tx, store.Collections, kindCollection, "", ep.CollectionId); err != nil {
			return err
		}
		ep.CreateTime, ep.UpdateTime, ep.Etag = w.now, w.now, w.etag
		if err := checkEndpoint(w.Tx, ep); err != nil {
			return err
		}
		w.record("create", kindEndpoint, ep.Id, ep.Name, ep.CollectionId)
		return store.Put(w.Tx, store.Endpoints, ep)
	})
	if err != nil {
		return nil, err
	}
	return ep, nil
}

func (e endpoints) GetEndpoint(ctx context.Context, req *adminv1.GetEndpointRequest) (*adminv1.Endpoint, error) {
	if err := checkRequest(req); err != nil {
		return nil, err
	}
	var out *adminv1.Endpoint
	err := e.s.read("get endpoint", func(tx *store.Tx) error {
		var err error
		out, err = getIn(tx, store.Endpoints, kindEndpoint, req.GetCollectionId(), req.GetId())
		return err
	})
	return out, err
}

func (e endpoints) ListEndpoints(ctx context.Context, req *adminv1.ListEndpointsRequest) (*adminv1.ListEndpointsResponse, error) {
	if err := checkRequest(req); err != nil {
		return nil, err
	}
	out := &adminv1.ListEndpointsResponse{}
	err := e.s.read("list endpoints", func(tx *store.Tx) error {
		if _, err := getIn(tx, store.Collections, kindCollection, "", req.GetCollectionId()); err != nil {
			return err
		}
		var err error
		out.Endpoints, out.NextPageToken, err = page(tx, store.Endpoints, req.GetCollectionId(), req.GetPageSize(), req.GetPageToken(), (*adminv1.Endpoint).GetId)
		return err
	})
	return out, err
}

func (e endpoints) UpdateEndpoint(ctx context.Context, req *adminv1.UpdateEndpointRequest) (*adminv1.Endpoint, error) {
	in := req.GetEndpoint()
	if err := requireUpdate("endpoint", in != nil, map[string]string{"id": in.GetId(), "collection_id": in.GetCollectionId()}); err != nil {
		return nil, err
	}
	paths, err := updatePaths(in, req.GetUpdateMask(), endpointMask)
	if err != nil {
		return nil, err
	}
	var out *adminv1.Endpoint
	_, err = e.s.write(ctx, "update endpoint", func(w *wtx) error {
		cur, err := getIn(w.Tx, store.Endpoints, kindEndpoint, in.GetCollectionId(), in.GetId())
		if err != nil {
			return err
		}
		if err := checkEtag(kindEndpoint, cur.Id, in.GetEtag(), cur.Etag); err != nil {
			return err
		}
		next := proto.Clone(cur).(*adminv1.Endpoint)
		applyPaths(next, in, paths)
		endpointDefaults(next)
		if proto.Equal(next, cur) {
			out = cur
			return nil
		}
		var v violations
		v.addPGV("endpoint", next.ValidateAll())
		validateEndpoint(&v, next)
		if err := v.err(); err != nil {
			return err
		}
		if err := checkEndpoint(w.Tx, next); err != nil {
			return err
		}
		next.UpdateTime, next.Etag = w.now, w.etag
		w.record("update", kindEndpoint, next.Id, next.Name, next.CollectionId)
		out = next
		return store.Put(w.Tx, store.Endpoints, next)
	})
	return out, err
}

func (e endpoints) DeleteEndpoint(ctx context.Context, req *adminv1.DeleteEndpointRequest) (*emptypb.Empty, error) {
	if err := checkRequest(req); err != nil {
		return nil, err
	}
	_, err := e.s.write(ctx, "delete endpoint", func(w *wtx) error {
		cur, err := getIn(w.Tx, store.Endpoints, kindEndpoint, req.GetCollectionId(), req.GetId())
		if err != nil {
			return err
		}
		if err := checkEtag(kindEndpoint, cur.Id, req.GetEtag(), cur.Etag); err != nil {
			return err
		}
		if err := store.Delete(w.Tx, store.Endpoints, cur.CollectionId, cur.Id); err != nil {
			return err
		}
		w.record("delete", kindEndpoint, cur.Id, cur.Name, cur.CollectionId)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}
