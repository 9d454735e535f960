package ctl

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// callFilter is what `get calls` was asked for: references by id or name, as typed.
type callFilter struct {
	client, profile, endpoint, collection string
	since                                 time.Time
	limit                                 int
}

// getCalls lists the newest calls: `get calls [--client X] [--profile P] [--collection C]
// [--endpoint E] [--since 1h] [--limit N]`. References are resolved to ids by name where
// the resource still exists; anything else is taken as an id, since the call log outlives
// deleted clients and endpoints.
func (c *cli) getCalls(ctx context.Context, a *api, f callFilter, format string) error {
	idx, err := a.callNames(ctx)
	if err != nil {
		return err
	}
	req := &adminv1.ListCallsRequest{PageSize: int32(f.limit)}
	if !f.since.IsZero() {
		req.Since = timestamppb.New(f.since)
	}
	req.ClientId = idx.resolve(idx.clients, f.client)
	req.CollectionId = idx.resolve(idx.collections, f.collection)
	req.EndpointId, err = idx.endpoint(req.CollectionId, f.endpoint)
	if err != nil {
		return err
	}
	req.ProfileId = f.profile
	if f.profile != "" && f.client != "" {
		if _, prof, err := a.profile(ctx, f.client, f.profile); err == nil {
			req.ProfileId = prof.GetId()
		}
	}
	r, err := a.calls.ListCalls(ctx, req)
	if err != nil {
		return wrap(err, "list calls")
	}
	switch format {
	case "json":
		return printJSON(c.stdout, messages(r.GetCalls()), false)
	case "yaml":
		return printYAML(c.stdout, messages(r.GetCalls()), false)
	}
	return printCalls(c.stdout, r.GetCalls(), idx.names)
}

// parseSince reads --since: a duration back from now (1h) or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("duration %s is not positive", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a duration (1h) nor an RFC 3339 time", s)
	}
	return t, nil
}

// callsCmd runs `calls summary [--window 1h] [--top N] [-o table|yaml|json]`.
func (c *cli) callsCmd(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "summary" {
		return usagef("calls: want summary (list calls with 'get calls')")
	}
	fs := c.flags("calls summary")
	format := fs.String("o", "table", "output format: table, yaml or json")
	window := fs.Duration("window", time.Hour, "how far back to count (cut to the call log's retention)")
	top := fs.Int("top", 10, "how many top endpoints, clients and details to show (1 to 100)")
	if _, err := c.parse(fs, args[1:], 0, 0); err != nil {
		return err
	}
	if *format != "table" && *format != "yaml" && *format != "json" {
		return usagef("calls summary: -o must be table, yaml or json")
	}
	if *window <= 0 {
		return usagef("calls summary: --window must be positive")
	}
	if *top < 1 || *top > 100 {
		return usagef("calls summary: --top must be 1 to 100")
	}
	a, closeConn, err := c.dial()
	if err != nil {
		return err
	}
	defer closeConn()
	s, err := a.calls.SummarizeCalls(ctx, &adminv1.SummarizeCallsRequest{Window: durationpb.New(*window), Top: int32(*top)})
	if err != nil {
		return wrap(err, "summarize calls")
	}
	switch *format {
	case "json":
		return printJSON(c.stdout, []proto.Message{s}, true)
	case "yaml":
		return printYAML(c.stdout, []proto.Message{s}, true)
	}
	idx, err := a.callNames(ctx)
	if err != nil {
		return err
	}
	return printSummary(c.stdout, s, idx.names)
}

// callIndex maps the ids of clients, collections and endpoints to names and back.
type callIndex struct {
	names                map[string]string
	clients, collections map[string]string // name → id
	endpoints            []*adminv1.Endpoint
}

// callNames reads the clients, collections and endpoints that calls refer to.
func (a *api) callNames(ctx context.Context) (*callIndex, error) {
	cls, err := a.listClients(ctx)
	if err != nil {
		return nil, err
	}
	cols, err := a.listCollections(ctx)
	if err != nil {
		return nil, err
	}
	idx := &callIndex{names: idNames(cls), clients: map[string]string{}, collections: map[string]string{}}
	for _, cl := range cls {
		idx.clients[cl.GetName()] = cl.GetId()
	}
	for _, col := range cols {
		idx.names[col.GetId()] = col.GetName()
		idx.collections[col.GetName()] = col.GetId()
		eps, err := a.listEndpoints(ctx, col.GetId())
		if err != nil {
			return nil, err
		}
		for _, ep := range eps {
			idx.names[ep.GetId()] = ep.GetName()
		}
		idx.endpoints = append(idx.endpoints, eps...)
	}
	return idx, nil
}

// resolve returns the id of a name in byName, or ref itself (an id, or a deleted resource).
func (x *callIndex) resolve(byName map[string]string, ref string) string {
	if _, isID := x.names[ref]; isID {
		return ref
	}
	if id, ok := byName[ref]; ok {
		return id
	}
	return ref
}

// endpoint resolves an endpoint reference, within collectionID when set. Endpoint names are
// unique only within a collection, so a name found in several needs --collection.
func (x *callIndex) endpoint(collectionID, ref string) (string, error) {
	if ref == "" {
		return "", nil
	}
	var byName []string
	for _, ep := range x.endpoints {
		if collectionID != "" && ep.GetCollectionId() != collectionID {
			continue
		}
		if ep.GetId() == ref {
			return ref, nil
		}
		if ep.GetName() == ref {
			byName = append(byName, ep.GetId())
		}
	}
	switch len(byName) {
	case 0:
		return ref, nil
	case 1:
		return byName[0], nil
	}
	return "", usagef("get calls: endpoint %q is in %d collections; add --collection", ref, len(byName))
}

// printCalls writes one row per call, newest first, with names for the ids still known.
func printCalls(w io.Writer, calls []*adminv1.Call, names map[string]string) error {
	if len(calls) == 0 {
		fmt.Fprintln(w, "no calls")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tSTATUS\tMETHOD\tPATH\tCLIENT\tENDPOINT\tDURATION\tDETAILS\tREQUEST ID")
	for _, c := range calls {
		st := "-"
		if c.GetStatus() != 0 {
			st = fmt.Sprint(c.GetStatus())
		}
		fmt.Fprintln(tw, strings.Join([]string{
			when(c.GetTime()), st, dash(c.GetMethod()), dash(c.GetPath()),
			dash(nameOf(names, c.GetClientId())), dash(nameOf(names, c.GetEndpointId())),
			c.GetDuration().AsDuration().String(), dash(c.GetDetails()), dash(c.GetRequestId()),
		}, "\t"))
	}
	return tw.Flush()
}

// printSummary writes the window, the counts by status class, the percentiles, and the top
// lists as small tables.
func printSummary(w io.Writer, s *adminv1.CallSummary, names map[string]string) error {
	start, end := s.GetWindowStart().AsTime(), s.GetWindowEnd().AsTime()
	fmt.Fprintf(w, "calls from %s to %s (%s)\n", when(s.GetWindowStart()), when(s.GetWindowEnd()), end.Sub(start).Round(time.Second))
	fmt.Fprintf(w, "total %d  2xx %d  4xx %d  5xx %d  other %d\n",
		s.GetTotal(), s.GetStatus_2Xx(), s.GetStatus_4Xx(), s.GetStatus_5Xx(), s.GetStatusOther())
	if s.GetTotal() == 0 {
		return nil
	}
	fmt.Fprintf(w, "p50 %s  p99 %s\n", s.GetP50Duration().AsDuration(), s.GetP99Duration().AsDuration())
	for _, sec := range []struct {
		title  string
		counts []*adminv1.CallCount
	}{
		{"ENDPOINT", s.GetTopEndpoints()}, {"CLIENT", s.GetTopClients()}, {"NOT 2XX, BY DETAILS", s.GetByDetails()},
	} {
		if len(sec.counts) == 0 {
			continue
		}
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "%s\tCALLS\n", sec.title)
		for _, c := range sec.counts {
			fmt.Fprintf(tw, "%s\t%d\n", nameOf(names, c.GetKey()), c.GetCount())
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}
