package ctl

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// Canonical kind names of get, create and delete.
const (
	kCollections = "collections"
	kEndpoints   = "endpoints"
	kClients     = "clients"
	kProfiles    = "profiles"
	kTokens      = "tokens"
	kPolicies    = "policies"
	kAudit       = "audit-events"
	kCalls       = "calls"
)

// kindOf accepts singular, plural and a few long forms of a kind name.
func kindOf(s string) (string, error) {
	switch strings.ToLower(s) {
	case "collection", "collections", "col":
		return kCollections, nil
	case "endpoint", "endpoints", "ep":
		return kEndpoints, nil
	case "client", "clients":
		return kClients, nil
	case "profile", "profiles", "access-profile", "access-profiles", "accessprofiles":
		return kProfiles, nil
	case "token", "tokens":
		return kTokens, nil
	case "policy", "policies", "access-policy", "access-policies":
		return kPolicies, nil
	case "audit", "audit-event", "audit-events", "events":
		return kAudit, nil
	case "call", "calls":
		return kCalls, nil
	}
	return "", usagef("unknown kind %q (want collections, endpoints, clients, profiles, tokens, policies, audit-events or calls)", s)
}

// parents are the flags naming the parent of child resources, by id or name.
type parents struct {
	collection, client, profile string
}

// get lists resources or shows one: `get <kind> [id|name] [-o table|yaml|json]`.
func (c *cli) get(ctx context.Context, args []string) error {
	fs := c.flags("get")
	format := fs.String("o", "table", "output format: table, yaml or json")
	var p parents
	fs.StringVar(&p.collection, "collection", "", "collection id or name (endpoints, calls)")
	fs.StringVar(&p.client, "client", "", "client id or name (profiles, tokens, calls)")
	fs.StringVar(&p.profile, "profile", "", "access profile id or name (tokens, calls)")
	resource := fs.String("resource", "", "audit-events: only the events of this resource id")
	limit := fs.Int("limit", 50, "audit-events, calls: how many of the newest")
	endpoint := fs.String("endpoint", "", "calls: only the calls of this endpoint id or name")
	since := fs.String("since", "", "calls: only calls since a duration ago (1h) or an RFC 3339 time")
	pos, err := c.parse(fs, args, 1, 2)
	if err != nil {
		return err
	}
	kind, err := kindOf(pos[0])
	if err != nil {
		return err
	}
	if *format != "table" && *format != "yaml" && *format != "json" {
		return usagef("get: -o must be table, yaml or json")
	}
	if *limit < 1 || *limit > pageSize {
		return usagef("get: --limit must be 1 to %d", pageSize)
	}
	if err := p.check(kind); err != nil {
		return err
	}
	cf := callFilter{client: p.client, profile: p.profile, collection: p.collection, endpoint: *endpoint, limit: *limit}
	if kind == kCalls {
		if len(pos) == 2 {
			return usagef("get calls: takes no id; filter with --client, --endpoint, --since")
		}
		if *since != "" {
			if cf.since, err = parseSince(*since, time.Now()); err != nil {
				return usagef("get calls: --since: %v", err)
			}
		}
	} else if *endpoint != "" || *since != "" {
		return usagef("get: --endpoint and --since apply to calls only")
	}
	a, closeConn, err := c.dial()
	if err != nil {
		return err
	}
	defer closeConn()
	if kind == kCalls {
		return c.getCalls(ctx, a, cf, *format)
	}
	var items []proto.Message
	if kind == kAudit {
		r, err := a.audit.ListAuditEvents(ctx, &adminv1.ListAuditEventsRequest{PageSize: int32(*limit), ResourceId: *resource})
		if err != nil {
			return wrap(err, "list audit events")
		}
		items = messages(r.GetAuditEvents())
	} else if items, err = a.list(ctx, kind, p); err != nil {
		return err
	}
	var names map[string]string
	if kind == kProfiles && *format == "table" {
		// Profiles reference collections and a policy by id; the table shows their names.
		if names, err = a.refNames(ctx); err != nil {
			return err
		}
	}
	if len(pos) == 2 {
		it, err := pick(items, kind, pos[1])
		if err != nil {
			return err
		}
		return printItems(c.stdout, *format, kind, []proto.Message{it}, true, names)
	}
	return printItems(c.stdout, *format, kind, items, false, names)
}

// delete deletes one resource: `delete <kind> <id|name> [--force]`.
func (c *cli) delete(ctx context.Context, args []string) error {
	fs := c.flags("delete")
	var p parents
	fs.StringVar(&p.collection, "collection", "", "collection id or name (endpoints)")
	fs.StringVar(&p.client, "client", "", "client id or name (profiles)")
	force := fs.Bool("force", false, "also delete a collection's endpoints or a client's profiles and tokens")
	pos, err := c.parse(fs, args, 2, 2)
	if err != nil {
		return err
	}
	kind, err := kindOf(pos[0])
	if err != nil {
		return err
	}
	switch kind {
	case kTokens:
		return usagef("delete: tokens are revoked, not deleted: use 'tokens revoke'")
	case kAudit:
		return usagef("delete: audit events cannot be deleted")
	}
	if err := p.check(kind); err != nil {
		return err
	}
	a, closeConn, err := c.dial()
	if err != nil {
		return err
	}
	defer closeConn()
	items, err := a.list(ctx, kind, p)
	if err != nil {
		return err
	}
	it, err := pick(items, kind, pos[1])
	if err != nil {
		return err
	}
	switch m := it.(type) {
	case *adminv1.Collection:
		_, err = a.collections.DeleteCollection(ctx, &adminv1.DeleteCollectionRequest{Id: m.GetId(), Force: *force})
	case *adminv1.Endpoint:
		_, err = a.endpoints.DeleteEndpoint(ctx, &adminv1.DeleteEndpointRequest{CollectionId: m.GetCollectionId(), Id: m.GetId()})
	case *adminv1.Client:
		_, err = a.clients.DeleteClient(ctx, &adminv1.DeleteClientRequest{Id: m.GetId(), Force: *force})
	case *adminv1.AccessProfile:
		_, err = a.profiles.DeleteAccessProfile(ctx, &adminv1.DeleteAccessProfileRequest{ClientId: m.GetClientId(), Id: m.GetId()})
	case *adminv1.AccessPolicy:
		_, err = a.policies.DeletePolicy(ctx, &adminv1.DeletePolicyRequest{Id: m.GetId()})
	}
	if err != nil {
		return wrap(err, "delete "+singular(kind)+" "+pos[1])
	}
	n := it.(named)
	fmt.Fprintf(c.stdout, "deleted %s %q (%s)\n", singular(kind), n.GetName(), n.GetId())
	return nil
}

func (p parents) check(kind string) error {
	switch {
	case kind == kEndpoints && p.collection == "":
		return usagef("endpoints need --collection")
	case kind == kProfiles && p.client == "":
		return usagef("profiles need --client")
	case kind == kTokens && (p.client == "" || p.profile == ""):
		return usagef("tokens need --client and --profile")
	}
	return nil
}

// list lists every resource of a kind below the parents named in p.
func (a *api) list(ctx context.Context, kind string, p parents) ([]proto.Message, error) {
	switch kind {
	case kCollections:
		l, err := a.listCollections(ctx)
		return messages(l), err
	case kClients:
		l, err := a.listClients(ctx)
		return messages(l), err
	case kPolicies:
		l, err := a.listPolicies(ctx)
		return messages(l), err
	case kEndpoints:
		col, err := a.collection(ctx, p.collection)
		if err != nil {
			return nil, err
		}
		l, err := a.listEndpoints(ctx, col.GetId())
		return messages(l), err
	case kProfiles:
		cl, err := a.client(ctx, p.client)
		if err != nil {
			return nil, err
		}
		l, err := a.listProfiles(ctx, cl.GetId())
		return messages(l), err
	case kTokens:
		cl, prof, err := a.profile(ctx, p.client, p.profile)
		if err != nil {
			return nil, err
		}
		l, err := a.listTokens(ctx, cl.GetId(), prof.GetId())
		return messages(l), err
	}
	return nil, fmt.Errorf("cannot list %s", kind)
}

// refNames maps the ids of collections and policies to their names.
func (a *api) refNames(ctx context.Context) (map[string]string, error) {
	cols, err := a.listCollections(ctx)
	if err != nil {
		return nil, err
	}
	pols, err := a.listPolicies(ctx)
	if err != nil {
		return nil, err
	}
	names := idNames(cols)
	for id, n := range idNames(pols) {
		names[id] = n
	}
	return names, nil
}

// collection finds a collection by id or name.
func (a *api) collection(ctx context.Context, ref string) (*adminv1.Collection, error) {
	l, err := a.listCollections(ctx)
	if err != nil {
		return nil, err
	}
	if c, ok := find(l, ref); ok {
		return c, nil
	}
	return nil, notFound("collection", ref)
}

// client finds a client by id or name.
func (a *api) client(ctx context.Context, ref string) (*adminv1.Client, error) {
	l, err := a.listClients(ctx)
	if err != nil {
		return nil, err
	}
	if c, ok := find(l, ref); ok {
		return c, nil
	}
	return nil, notFound("client", ref)
}

// profile finds a client and one of its access profiles by id or name.
func (a *api) profile(ctx context.Context, clientRef, profileRef string) (*adminv1.Client, *adminv1.AccessProfile, error) {
	cl, err := a.client(ctx, clientRef)
	if err != nil {
		return nil, nil, err
	}
	l, err := a.listProfiles(ctx, cl.GetId())
	if err != nil {
		return nil, nil, err
	}
	if p, ok := find(l, profileRef); ok {
		return cl, p, nil
	}
	return nil, nil, notFound("access profile", profileRef)
}

func notFound(kind, ref string) error {
	return status.Errorf(codes.NotFound, "%s %q not found", kind, ref)
}

// pick finds one item by id or name (audit events by id).
func pick(items []proto.Message, kind, ref string) (proto.Message, error) {
	for _, byID := range []bool{true, false} {
		for _, it := range items {
			n, ok := it.(interface{ GetId() string })
			if ok && byID && n.GetId() == ref {
				return it, nil
			}
			if nn, ok := it.(named); ok && !byID && nn.GetName() == ref {
				return it, nil
			}
		}
	}
	return nil, notFound(singular(kind), ref)
}

func singular(kind string) string {
	switch kind {
	case kPolicies:
		return "policy"
	case kProfiles:
		return "access profile"
	case kAudit:
		return "audit event"
	}
	return strings.TrimSuffix(kind, "s")
}

func messages[T proto.Message](l []T) []proto.Message {
	out := make([]proto.Message, len(l))
	for i, m := range l {
		out[i] = m
	}
	return out
}
