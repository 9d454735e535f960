package calllog

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	accesslogdata "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// call is an entry with its own duration and response details.
func call(minute int, client, endpoint string, status uint32, ms int, details string) *accesslogdata.HTTPAccessLogEntry {
	e := entry(minute, client, endpoint, "/sales/x?token=secret", status)
	e.CommonProperties.Duration = durationpb.New(time.Duration(ms) * time.Millisecond)
	e.Response.ResponseCodeDetails = details
	if client == "" {
		// Refused before authentication: the authz set no identity headers.
		e.Request.RequestHeaders = nil
	}
	return e
}

// newService returns a Service whose log was filled through a real ALS stream at clock 10:30.
func newService(t *testing.T, retention time.Duration, batches ...[]*accesslogdata.HTTPAccessLogEntry) *Service {
	t.Helper()
	clk := &clock{t: at(30)}
	l, err := New(Config{Now: clk.now, Retention: retention, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	send(t, serve(t, l), "gw-1", batches...)
	return NewService(l)
}

func TestListCalls(t *testing.T) {
	s := newService(t, 0, []*accesslogdata.HTTPAccessLogEntry{
		call(1, "cli-a", "ep-1", 200, 5, "via_upstream"),
		call(2, "cli-b", "ep-2", 429, 1, "ext_authz_denied"),
		call(3, "", "", 401, 1, "ext_authz_denied"),
		call(4, "cli-a", "ep-2", 200, 7, "via_upstream"),
	})
	tests := []struct {
		name string
		req  *adminv1.ListCallsRequest
		want []string // request ids, newest first
		code codes.Code
	}{
		{name: "all newest first", req: &adminv1.ListCallsRequest{}, want: []string{"req-4", "req-3", "req-2", "req-1"}},
		{name: "client", req: &adminv1.ListCallsRequest{ClientId: "cli-a"}, want: []string{"req-4", "req-1"}},
		{name: "profile", req: &adminv1.ListCallsRequest{ProfileId: "prof-cli-b"}, want: []string{"req-2"}},
		{name: "endpoint", req: &adminv1.ListCallsRequest{EndpointId: "ep-2"}, want: []string{"req-4", "req-2"}},
		{name: "collection", req: &adminv1.ListCallsRequest{CollectionId: "col-1"}, want: []string{"req-4", "req-2", "req-1"}},
		{name: "since", req: &adminv1.ListCallsRequest{Since: timestamppb.New(at(3))}, want: []string{"req-4", "req-3"}},
		{name: "page size", req: &adminv1.ListCallsRequest{PageSize: 2}, want: []string{"req-4", "req-3"}},
		{name: "page size over 1000", req: &adminv1.ListCallsRequest{PageSize: 1001}, code: codes.InvalidArgument},
		{name: "negative page size", req: &adminv1.ListCallsRequest{PageSize: -1}, code: codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := s.ListCalls(context.Background(), tt.req)
			if status.Code(err) != tt.code {
				t.Fatalf("code = %v (%v), want %v", status.Code(err), err, tt.code)
			}
			var got []string
			for _, c := range r.GetCalls() {
				got = append(got, c.GetRequestId())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	r, err := s.ListCalls(context.Background(), &adminv1.ListCallsRequest{PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := &adminv1.Call{
		Time: timestamppb.New(at(4)), Node: "gw-1", RequestId: "req-4", Method: "POST", Path: "/sales/x",
		Status: 200, Duration: durationpb.New(7 * time.Millisecond), ClientId: "cli-a", ProfileId: "prof-cli-a",
		EndpointId: "ep-2", CollectionId: "col-1", RemoteIp: "192.0.2.7", BytesIn: 10, BytesOut: 20, Details: "via_upstream",
	}
	if diff := cmp.Diff(want, r.GetCalls()[0], protocmp.Transform()); diff != "" {
		t.Errorf("call (-want +got):\n%s", diff)
	}
}

func TestSummarizeCalls(t *testing.T) {
	// 100 calls of 1..100 ms between 10:00 and 10:29 give exact nearest-rank percentiles.
	var hundred []*accesslogdata.HTTPAccessLogEntry
	for i := 1; i <= 100; i++ {
		client, ep, st, details := "cli-a", "ep-1", uint32(200), "via_upstream"
		switch {
		case i%10 == 0:
			client, ep, st, details = "cli-b", "ep-2", 429, "ext_authz_denied"
		case i%25 == 1:
			st, details = 503, "upstream_reset_before_response_started"
		case i == 99:
			client, ep, st, details = "", "", 401, "ext_authz_denied"
		}
		hundred = append(hundred, call(i%30, client, ep, st, i, details))
	}
	tests := []struct {
		name      string
		retention time.Duration
		batches   [][]*accesslogdata.HTTPAccessLogEntry
		req       *adminv1.SummarizeCallsRequest
		want      *adminv1.CallSummary
	}{
		{
			name: "empty log", req: &adminv1.SummarizeCallsRequest{},
			want: &adminv1.CallSummary{WindowStart: timestamppb.New(at(-30)), WindowEnd: timestamppb.New(at(30))},
		},
		{
			name:    "counts, percentiles and tops over the default hour",
			batches: [][]*accesslogdata.HTTPAccessLogEntry{hundred},
			req:     &adminv1.SummarizeCallsRequest{},
			want: &adminv1.CallSummary{
				WindowStart: timestamppb.New(at(-30)), WindowEnd: timestamppb.New(at(30)),
				Total: 100, Status_2Xx: 85, Status_4Xx: 11, Status_5Xx: 4,
				ByDetails: []*adminv1.CallCount{
					{Key: "ext_authz_denied", Count: 11},
					{Key: "upstream_reset_before_response_started", Count: 4},
				},
				P50Duration:  durationpb.New(50 * time.Millisecond),
				P99Duration:  durationpb.New(99 * time.Millisecond),
				TopEndpoints: []*adminv1.CallCount{{Key: "ep-1", Count: 89}, {Key: "ep-2", Count: 10}},
				TopClients:   []*adminv1.CallCount{{Key: "cli-a", Count: 89}, {Key: "cli-b", Count: 10}},
			},
		},
		{
			name:    "top cuts the lists",
			batches: [][]*accesslogdata.HTTPAccessLogEntry{hundred},
			req:     &adminv1.SummarizeCallsRequest{Window: durationpb.New(time.Hour), Top: 1},
			want: &adminv1.CallSummary{
				WindowStart: timestamppb.New(at(-30)), WindowEnd: timestamppb.New(at(30)),
				Total: 100, Status_2Xx: 85, Status_4Xx: 11, Status_5Xx: 4,
				ByDetails:    []*adminv1.CallCount{{Key: "ext_authz_denied", Count: 11}},
				P50Duration:  durationpb.New(50 * time.Millisecond),
				P99Duration:  durationpb.New(99 * time.Millisecond),
				TopEndpoints: []*adminv1.CallCount{{Key: "ep-1", Count: 89}},
				TopClients:   []*adminv1.CallCount{{Key: "cli-a", Count: 89}},
			},
		},
		{
			name: "window keeps recent calls only",
			batches: [][]*accesslogdata.HTTPAccessLogEntry{{
				call(10, "cli-a", "ep-1", 200, 3, "via_upstream"),
				call(25, "cli-a", "ep-1", 204, 8, "via_upstream"),
				call(26, "cli-b", "ep-1", 0, 30, "downstream_remote_disconnect"),
				call(27, "cli-b", "ep-1", 302, 2, "via_upstream"),
			}},
			req: &adminv1.SummarizeCallsRequest{Window: durationpb.New(10 * time.Minute)},
			want: &adminv1.CallSummary{
				WindowStart: timestamppb.New(at(20)), WindowEnd: timestamppb.New(at(30)),
				Total: 3, Status_2Xx: 1, StatusOther: 2,
				ByDetails: []*adminv1.CallCount{
					{Key: "downstream_remote_disconnect", Count: 1},
					{Key: "via_upstream", Count: 1},
				},
				P50Duration:  durationpb.New(8 * time.Millisecond),
				P99Duration:  durationpb.New(30 * time.Millisecond),
				TopEndpoints: []*adminv1.CallCount{{Key: "ep-1", Count: 3}},
				TopClients:   []*adminv1.CallCount{{Key: "cli-b", Count: 2}, {Key: "cli-a", Count: 1}},
			},
		},
		{
			name:      "window is cut to the retention",
			retention: 15 * time.Minute,
			batches:   [][]*accesslogdata.HTTPAccessLogEntry{{call(20, "cli-a", "ep-1", 200, 4, "via_upstream")}},
			req:       &adminv1.SummarizeCallsRequest{Window: durationpb.New(24 * time.Hour)},
			want: &adminv1.CallSummary{
				WindowStart: timestamppb.New(at(15)), WindowEnd: timestamppb.New(at(30)),
				Total: 1, Status_2Xx: 1,
				P50Duration:  durationpb.New(4 * time.Millisecond),
				P99Duration:  durationpb.New(4 * time.Millisecond),
				TopEndpoints: []*adminv1.CallCount{{Key: "ep-1", Count: 1}},
				TopClients:   []*adminv1.CallCount{{Key: "cli-a", Count: 1}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newService(t, tt.retention, tt.batches...)
			got, err := s.SummarizeCalls(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSummarizeCallsRejects(t *testing.T) {
	s := newService(t, 0)
	for name, req := range map[string]*adminv1.SummarizeCallsRequest{
		"negative window": {Window: durationpb.New(-time.Minute)},
		"top over 100":    {Top: 101},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := s.SummarizeCalls(context.Background(), req); status.Code(err) != codes.InvalidArgument {
				t.Errorf("err = %v, want InvalidArgument", err)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      int
		want   time.Duration
	}{
		{name: "one value", sorted: ms(7), p: 99, want: 7 * time.Millisecond},
		{name: "median of two is the lower", sorted: ms(1, 9), p: 50, want: time.Millisecond},
		{name: "p99 of ten is the largest", sorted: ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), p: 99, want: 10 * time.Millisecond},
		{name: "p50 of three", sorted: ms(1, 2, 30), p: 50, want: 2 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %d) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func BenchmarkSummarize(b *testing.B) {
	l, err := New(Config{Capacity: 100_000})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	recs := make([]Record, 100_000)
	for i := range recs {
		recs[i] = Record{Time: now, Status: 200, Duration: time.Duration(i), ClientID: fmt.Sprint("c", i%50), EndpointID: fmt.Sprint("e", i%200)}
	}
	l.add(recs)
	s := NewService(l)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.SummarizeCalls(context.Background(), &adminv1.SummarizeCallsRequest{}); err != nil {
			b.Fatal(err)
		}
	}
}
