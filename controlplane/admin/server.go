// Package admin serves the control plane's admin API: the gatehouse.admin.v1 gRPC services and
// the same API as REST/JSON through grpc-gateway.
//
// Every RPC that changes something is one store transaction that validates the request, applies
// the cross-resource rules, writes, and appends its audit events, so a refused or failed request
// leaves nothing behind. Reads see one store revision. Errors are gRPC statuses with details
// (google.rpc.BadRequest for bad fields, ErrorInfo reasons for conflicts); REST maps them to
// HTTP codes (see httpStatus).
package admin

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"gatehouse/controlplane/store"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// Config configures the admin API.
type Config struct {
	// Store holds the configuration; required.
	Store *store.Store
	// Logger receives request and change logs; nil discards them.
	Logger *slog.Logger
	// Registry receives the admin API's metrics; nil registers none.
	Registry prometheus.Registerer
	// Now is the clock for create, update and audit times; nil uses time.Now.
	Now func() time.Time
}

// Server implements every gatehouse.admin.v1 service on top of the store.
type Server struct {
	store   *store.Store
	log     *slog.Logger
	now     func() time.Time
	auth    *authenticator
	metrics *metrics
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("admin: no store")
	}
	s := &Server{store: cfg.Store, log: cfg.Logger, now: cfg.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.auth = newAuthenticator(cfg.Store)
	return s, nil
}

// Register registers every admin service on g. Serve them with Interceptor installed, which
// authenticates callers.
func (s *Server) Register(g grpc.ServiceRegistrar) {
	adminv1.RegisterCollectionServiceServer(g, collections{s: s})
	adminv1.RegisterEndpointServiceServer(g, endpoints{s: s})
	adminv1.RegisterClientServiceServer(g, clients{s: s})
	adminv1.RegisterAccessProfileServiceServer(g, profiles{s: s})
	adminv1.RegisterTokenServiceServer(g, tokens{s: s})
	adminv1.RegisterPolicyServiceServer(g, policies{s: s})
	adminv1.RegisterAuditServiceServer(g, audits{s: s})
}

// change is one resource changed by a write, recorded as one audit event.
type change struct {
	action, kind, id, name, parent string
}

// wtx is a store write transaction with what the admin layer adds to every write: the time,
// the etag of resources written, and the changes to audit.
type wtx struct {
	*store.Tx
	now     *timestamppb.Timestamp
	etag    string
	changes []change
}

func (w *wtx) record(action, kind, id, name, parent string) {
	w.changes = append(w.changes, change{action: action, kind: kind, id: id, name: name, parent: parent})
}

// write runs fn in one store transaction and appends an audit event for each change fn records,
// so a change and its audit record commit together or not at all.
func (s *Server) write(ctx context.Context, op string, fn func(w *wtx) error) (uint64, error) {
	actor := actorFrom(ctx)
	var changes []change
	rev, err := s.store.Update(func(tx *store.Tx) error {
		// The clock is read under the store's write lock, so audit times follow audit order.
		w := &wtx{Tx: tx, now: timestamppb.New(s.now()), etag: strconv.FormatUint(tx.NextRevision(), 10)}
		if err := fn(w); err != nil {
			return err
		}
		for _, c := range w.changes {
			ev := &adminv1.AuditEvent{
				Time: w.now, Actor: actor, Action: c.action,
				ResourceType: c.kind, ResourceId: c.id, ResourceName: c.name, ParentId: c.parent,
				RevisionBefore: tx.Revision(), RevisionAfter: tx.NextRevision(),
			}
			if err := store.AppendAudit(tx, ev); err != nil {
				return err
			}
		}
		changes = w.changes
		return nil
	})
	if err != nil {
		return 0, storeErr(s.log, op, err)
	}
	for _, c := range changes {
		s.log.InfoContext(ctx, "admin change", "action", c.action, "kind", c.kind, "id", c.id,
			"parent", c.parent, "actor", actor, "revision", rev)
	}
	return rev, nil
}

// read runs fn in a read transaction.
func (s *Server) read(op string, fn func(tx *store.Tx) error) error {
	return storeErr(s.log, op, s.store.View(fn))
}

// getIn reads one resource, mapping absence to NOT_FOUND with the kind users know.
func getIn[T proto.Message](tx *store.Tx, t store.Table[T], kind, parent, id string) (T, error) {
	v, err := store.Get(tx, t, parent, id)
	if store.IsNotFound(err) {
		return v, notFound(kind, id)
	}
	return v, err
}

// page lists one page of t under parent and returns the next page token.
func page[T proto.Message](tx *store.Tx, t store.Table[T], parent string, size int32, token string, id func(T) string) ([]T, string, error) {
	list := listKey(t.Kind(), parent)
	after, err := parsePageToken(list, token)
	if err != nil {
		return nil, "", err
	}
	n := pageSize(size)
	items, err := store.List(tx, t, parent, after, n+1)
	if err != nil {
		return nil, "", err
	}
	if len(items) <= n {
		return items, "", nil
	}
	items = items[:n]
	return items, pageToken(list, id(items[n-1])), nil
}

// uniqueName returns ALREADY_EXISTS when another resource of t under parent has name.
func uniqueName[T interface {
	proto.Message
	GetId() string
	GetName() string
}](tx *store.Tx, t store.Table[T], kind, parent, id, name, field string) error {
	var clash T
	found := false
	err := store.Each(tx, t, parent, func(v T) error {
		if v.GetName() == name && v.GetId() != id {
			clash, found = v, true
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	if found {
		return conflict(reasonDuplicateName, field, kind+" "+clash.GetId()+" already has the name "+strconv.Quote(name)+"; choose another")
	}
	return nil
}

// errStop ends a store walk early.
var errStop = errors.New("stop")
