package calllog

import (
	"cmp"
	"context"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// Defaults of the CallLogService requests.
const (
	DefaultPageSize = 100
	DefaultWindow   = time.Hour
	DefaultTop      = 10
)

// Service is the admin API's gatehouse.admin.v1.CallLogService over a Log. It holds no state of
// its own; authentication is the admin server's interceptor and REST middleware.
type Service struct {
	adminv1.UnimplementedCallLogServiceServer

	log *Log
	now func() time.Time
}

// NewService returns the CallLogService reading l, on l's clock.
func NewService(l *Log) *Service { return &Service{log: l, now: l.now} }

// ListCalls implements adminv1.CallLogServiceServer.
func (s *Service) ListCalls(ctx context.Context, req *adminv1.ListCallsRequest) (*adminv1.ListCallsResponse, error) {
	if err := req.ValidateAll(); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	f := Filter{
		ClientID: req.GetClientId(), ProfileID: req.GetProfileId(),
		EndpointID: req.GetEndpointId(), CollectionID: req.GetCollectionId(),
		Limit: int(req.GetPageSize()),
	}
	if f.Limit == 0 {
		f.Limit = DefaultPageSize
	}
	if req.GetSince() != nil {
		f.Since = req.GetSince().AsTime()
	}
	recs := s.log.Query(ctx, f)
	out := &adminv1.ListCallsResponse{Calls: make([]*adminv1.Call, len(recs))}
	for i := range recs {
		out.Calls[i] = toCall(&recs[i])
	}
	return out, nil
}

func toCall(r *Record) *adminv1.Call {
	c := &adminv1.Call{
		Node: r.Node, RequestId: r.RequestID, Method: r.Method, Path: r.Path, Status: r.Status,
		Duration: durationpb.New(r.Duration), ClientId: r.ClientID, ProfileId: r.ProfileID,
		EndpointId: r.EndpointID, CollectionId: r.CollectionID, RemoteIp: r.RemoteIP,
		BytesIn: r.BytesIn, BytesOut: r.BytesOut, Details: r.Details,
	}
	if !r.Time.IsZero() {
		c.Time = timestamppb.New(r.Time)
	}
	return c
}

// SummarizeCalls implements adminv1.CallLogServiceServer.
func (s *Service) SummarizeCalls(ctx context.Context, req *adminv1.SummarizeCallsRequest) (*adminv1.CallSummary, error) {
	if err := req.ValidateAll(); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	window := DefaultWindow
	if req.GetWindow() != nil && req.GetWindow().AsDuration() > 0 {
		window = req.GetWindow().AsDuration()
	}
	// Older records are gone anyway; saying so in window_start keeps the summary honest.
	window = min(window, s.log.Retention())
	top := int(req.GetTop())
	if top == 0 {
		top = DefaultTop
	}
	end := s.now()
	start := end.Add(-window)

	var agg summary
	s.log.each(Filter{Since: start}, agg.add)
	out := agg.proto(top)
	out.WindowStart, out.WindowEnd = timestamppb.New(start), timestamppb.New(end)
	return out, nil
}

// summary accumulates the counts of SummarizeCalls.
type summary struct {
	total, s2xx, s4xx, s5xx, other uint64
	durations                      []time.Duration
	details, endpoints, clients    map[string]uint64
}

func (a *summary) add(r *Record) {
	if a.details == nil {
		a.details, a.endpoints, a.clients = map[string]uint64{}, map[string]uint64{}, map[string]uint64{}
	}
	a.total++
	switch r.Status / 100 {
	case 2:
		a.s2xx++
	case 4:
		a.s4xx++
	case 5:
		a.s5xx++
	default:
		a.other++
	}
	if r.Status/100 != 2 && r.Details != "" {
		a.details[r.Details]++
	}
	if r.EndpointID != "" {
		a.endpoints[r.EndpointID]++
	}
	if r.ClientID != "" {
		a.clients[r.ClientID]++
	}
	a.durations = append(a.durations, r.Duration)
}

func (a *summary) proto(top int) *adminv1.CallSummary {
	out := &adminv1.CallSummary{
		Total: a.total, Status_2Xx: a.s2xx, Status_4Xx: a.s4xx, Status_5Xx: a.s5xx, StatusOther: a.other,
		ByDetails:    topCounts(a.details, top),
		TopEndpoints: topCounts(a.endpoints, top),
		TopClients:   topCounts(a.clients, top),
	}
	if len(a.durations) > 0 {
		slices.Sort(a.durations)
		out.P50Duration = durationpb.New(percentile(a.durations, 50))
		out.P99Duration = durationpb.New(percentile(a.durations, 99))
	}
	return out
}

// percentile is the nearest-rank percentile p of sorted: the smallest value with at least p%
// of the values at or below it.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 * n)
	return sorted[max(rank, 1)-1]
}

// topCounts returns the n largest counts, most first, ties by key so the output is stable.
func topCounts(m map[string]uint64, n int) []*adminv1.CallCount {
	out := make([]*adminv1.CallCount, 0, len(m))
	for k, c := range m {
		out = append(out, &adminv1.CallCount{Key: k, Count: c})
	}
	slices.SortFunc(out, func(a, b *adminv1.CallCount) int {
		if c := cmp.Compare(b.GetCount(), a.GetCount()); c != 0 {
			return c
		}
		return cmp.Compare(a.GetKey(), b.GetKey())
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}
