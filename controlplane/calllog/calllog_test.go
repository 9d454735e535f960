package calllog

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	accesslogdata "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	alsv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }
func at(min int) time.Time       { return time.Date(2026, 3, 2, 10, min, 0, 0, time.UTC) }

// serve runs l's AccessLogService on 127.0.0.1:0 and returns a client.
func serve(t *testing.T, l *Log) alsv3.AccessLogServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	l.Register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return alsv3.NewAccessLogServiceClient(cc)
}

// entry is an access log entry as Envoy's HTTP gRPC access logger sends it.
func entry(minute int, client, endpoint, path string, status uint32) *accesslogdata.HTTPAccessLogEntry {
	return &accesslogdata.HTTPAccessLogEntry{
		CommonProperties: &accesslogdata.AccessLogCommon{
			StartTime: timestamppb.New(at(minute)),
			Duration:  durationpb.New(12 * time.Millisecond),
			DownstreamRemoteAddress: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
				Address: "192.0.2.7", PortSpecifier: &core.SocketAddress_PortValue{PortValue: 5555},
			}}},
		},
		Request: &accesslogdata.HTTPRequestProperties{
			RequestMethod: core.RequestMethod_POST, Path: path, RequestId: fmt.Sprintf("req-%d", minute),
			RequestBodyBytes: 10,
			RequestHeaders: map[string]string{
				headerClientID: client, headerProfileID: "prof-" + client, headerEndpointID: endpoint, headerCollectionID: "col-1",
			},
		},
		Response: &accesslogdata.HTTPResponseProperties{
			ResponseCode: wrapperspb.UInt32(status), ResponseBodyBytes: 20, ResponseCodeDetails: "via_upstream",
		},
	}
}

// send streams entries the way Envoy does: the identifier first, then batches.
func send(t *testing.T, c alsv3.AccessLogServiceClient, node string, batches ...[]*accesslogdata.HTTPAccessLogEntry) {
	t.Helper()
	stream, err := c.StreamAccessLogs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range batches {
		msg := &alsv3.StreamAccessLogsMessage{LogEntries: &alsv3.StreamAccessLogsMessage_HttpLogs{
			HttpLogs: &alsv3.StreamAccessLogsMessage_HTTPAccessLogEntries{LogEntry: b},
		}}
		if i == 0 {
			msg.Identifier = &alsv3.StreamAccessLogsMessage_Identifier{Node: &core.Node{Id: node}, LogName: "gatehouse"}
		}
		if err := stream.Send(msg); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := stream.CloseAndRecv(); err != nil && err != io.EOF {
		t.Fatal(err)
	}
}

func TestReceiveAndQuery(t *testing.T) {
	clk := &clock{t: at(30)}
	l, err := New(Config{Now: clk.now, Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	c := serve(t, l)
	send(t, c, "gw-1",
		[]*accesslogdata.HTTPAccessLogEntry{entry(1, "cli-a", "ep-1", "/sales/invoices?api_key=secret", 200)},
		[]*accesslogdata.HTTPAccessLogEntry{entry(2, "cli-b", "ep-2", "/sales/orders/7", 429), entry(3, "cli-a", "ep-2", "/sales/orders/8", 200)},
	)

	tests := []struct {
		name   string
		filter Filter
		want   []string // request ids, newest first
	}{
		{name: "all newest first", filter: Filter{}, want: []string{"req-3", "req-2", "req-1"}},
		{name: "by client", filter: Filter{ClientID: "cli-a"}, want: []string{"req-3", "req-1"}},
		{name: "by endpoint", filter: Filter{EndpointID: "ep-2"}, want: []string{"req-3", "req-2"}},
		{name: "since", filter: Filter{Since: at(2)}, want: []string{"req-3", "req-2"}},
		{name: "limit", filter: Filter{Limit: 1}, want: []string{"req-3"}},
		{name: "no match", filter: Filter{ProfileID: "nobody"}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, r := range l.Query(context.Background(), tt.filter) {
				got = append(got, r.RequestID)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	got := l.Query(context.Background(), Filter{Limit: 3})[2]
	want := Record{
		Time: at(1), Node: "gw-1", RequestID: "req-1", Method: "POST", Path: "/sales/invoices",
		Status: 200, Duration: 12 * time.Millisecond, ClientID: "cli-a", ProfileID: "prof-cli-a",
		EndpointID: "ep-1", CollectionID: "col-1", RemoteIP: "192.0.2.7", BytesIn: 10, BytesOut: 20,
		Details: "via_upstream",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
}

func TestBounds(t *testing.T) {
	t.Run("capacity drops the oldest", func(t *testing.T) {
		clk := &clock{t: at(30)}
		l, err := New(Config{Capacity: 3, Now: clk.now})
		if err != nil {
			t.Fatal(err)
		}
		c := serve(t, l)
		var batch []*accesslogdata.HTTPAccessLogEntry
		for m := 1; m <= 5; m++ {
			batch = append(batch, entry(m, "cli", "ep", "/x", 200))
		}
		send(t, c, "gw", batch)
		var got []string
		for _, r := range l.Query(context.Background(), Filter{}) {
			got = append(got, r.RequestID)
		}
		if diff := cmp.Diff([]string{"req-5", "req-4", "req-3"}, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("retention drops old records", func(t *testing.T) {
		clk := &clock{t: at(10)}
		l, err := New(Config{Retention: 5 * time.Minute, Now: clk.now})
		if err != nil {
			t.Fatal(err)
		}
		c := serve(t, l)
		send(t, c, "gw", []*accesslogdata.HTTPAccessLogEntry{entry(6, "c", "e", "/x", 200), entry(8, "c", "e", "/x", 200)})
		if l.Len() != 2 {
			t.Fatalf("len = %d, want 2", l.Len())
		}
		clk.set(at(12))
		if got := l.Query(context.Background(), Filter{}); len(got) != 1 || got[0].RequestID != "req-8" {
			t.Errorf("after 12:00 kept %v, want only req-8", got)
		}
		clk.set(at(20))
		if got := l.Query(context.Background(), Filter{}); len(got) != 0 {
			t.Errorf("after 20:00 kept %d records", len(got))
		}
	})
}

func BenchmarkAdd(b *testing.B) {
	l, err := New(Config{Capacity: 100_000})
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]Record, 100)
	now := time.Now()
	for i := range recs {
		recs[i] = Record{Time: now, RequestID: "r", Path: "/x"}
	}
	b.ReportAllocs()
	for b.Loop() {
		l.add(recs)
	}
}
