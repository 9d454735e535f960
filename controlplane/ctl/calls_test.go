package ctl_test

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	accesslogdata "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	alsv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"gatehouse/controlplane/ctl/internal/cptest"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

const callsConfig = `
collections:
  - name: Sales
    version: v1
    path: sales
    endpoints:
      - {name: get-invoice, method: GET, path: "/invoices/{id}", recipe_id: rcp_1, active: true}
      - {name: list-invoices, method: GET, path: "/invoices", recipe_id: rcp_2, active: true}
clients:
  - name: Acme
    access_profiles: [{name: acme-prod, collections: [Sales], auth: {api_token: {}}}]
  - name: Globex
    access_profiles: [{name: globex-prod, collections: [Sales], auth: {api_token: {}}}]
`

// logCall is one access log entry as Envoy's gRPC access logger sends it.
type logCall struct {
	ago                   time.Duration
	client, profile, ep   string
	status                uint32
	ms                    int
	details, id, pathSent string
}

// streamCalls sends calls to the control plane's access-log service, as a gateway does; calls
// with an endpoint carry collectionID.
func streamCalls(t *testing.T, alsAddr, collectionID string, calls ...logCall) {
	t.Helper()
	cc, err := grpc.NewClient(alsAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	stream, err := alsv3.NewAccessLogServiceClient(cc).StreamAccessLogs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var entries []*accesslogdata.HTTPAccessLogEntry
	now := time.Now()
	for _, c := range calls {
		col := ""
		if c.ep != "" {
			col = collectionID
		}
		entries = append(entries, &accesslogdata.HTTPAccessLogEntry{
			CommonProperties: &accesslogdata.AccessLogCommon{
				StartTime: timestamppb.New(now.Add(-c.ago)), Duration: durationpb.New(time.Duration(c.ms) * time.Millisecond),
			},
			Request: &accesslogdata.HTTPRequestProperties{
				RequestMethod: corev3.RequestMethod_GET, Path: c.pathSent, RequestId: c.id,
				RequestHeaders: map[string]string{
					"x-gatehouse-client-id": c.client, "x-gatehouse-profile-id": c.profile, "x-gatehouse-endpoint-id": c.ep,
					"x-gatehouse-collection-id": col,
				},
			},
			Response: &accesslogdata.HTTPResponseProperties{ResponseCode: wrapperspb.UInt32(c.status), ResponseCodeDetails: c.details},
		})
	}
	err = stream.Send(&alsv3.StreamAccessLogsMessage{
		Identifier: &alsv3.StreamAccessLogsMessage_Identifier{Node: &corev3.Node{Id: "gw-1"}, LogName: "gatehouse"},
		LogEntries: &alsv3.StreamAccessLogsMessage_HttpLogs{HttpLogs: &alsv3.StreamAccessLogsMessage_HTTPAccessLogEntries{LogEntry: entries}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.CloseAndRecv(); err != nil && err != io.EOF {
		t.Fatal(err)
	}
}

// ids returns the ids of the named resources of callsConfig.
func ids(t *testing.T, cp *controlPlane) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, args := range [][]string{{"clients"}, {"collections"}, {"endpoints", "--collection", "Sales"}, {"profiles", "--client", "Acme"}} {
		var items []struct{ ID, Name string }
		if err := json.Unmarshal([]byte(cp.mustCtl(t, "", append([]string{"get", "-o", "json"}, args...)...)), &items); err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			out[it.Name] = it.ID
		}
	}
	return out
}

// requestIDs reads the REQUEST ID column of a `get calls` table.
func requestIDs(table string) []string {
	var out []string
	for i, line := range strings.Split(strings.TrimRight(table, "\n"), "\n") {
		if f := fields(line); i > 0 && len(f) > 0 {
			out = append(out, f[len(f)-1])
		}
	}
	return out
}

func TestGetCalls(t *testing.T) {
	x := cptest.Start(t)
	cp := &controlPlane{addr: x.Addr, token: x.Token, store: x.Store}
	if got := cp.mustCtl(t, "", "get", "calls"); got != "no calls\n" {
		t.Errorf("get calls on an empty log = %q", got)
	}
	cp.mustCtl(t, callsConfig, "apply", "-f", "-")
	id := ids(t, cp)
	streamCalls(t, x.ALSAddr, id["Sales"],
		logCall{ago: 3 * time.Hour, client: id["Acme"], profile: id["acme-prod"], ep: id["get-invoice"], status: 200, ms: 9, details: "via_upstream", id: "r1", pathSent: "/sales/invoices/1"},
		logCall{ago: 40 * time.Minute, client: id["Globex"], ep: id["list-invoices"], status: 429, ms: 1, details: "ext_authz_denied", id: "r2", pathSent: "/sales/invoices"},
		logCall{ago: 20 * time.Minute, client: id["Acme"], profile: id["acme-prod"], ep: id["list-invoices"], status: 200, ms: 30, details: "via_upstream", id: "r3", pathSent: "/sales/invoices?api_key=leak"},
		logCall{ago: time.Minute, status: 401, ms: 1, details: "ext_authz_denied", id: "r4", pathSent: "/sales/invoices"},
	)

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "newest first", args: nil, want: []string{"r4", "r3", "r2", "r1"}},
		{name: "client by name", args: []string{"--client", "Acme"}, want: []string{"r3", "r1"}},
		{name: "client by id", args: []string{"--client", id["Globex"]}, want: []string{"r2"}},
		{name: "profile by name", args: []string{"--client", "Acme", "--profile", "acme-prod"}, want: []string{"r3", "r1"}},
		{name: "endpoint by name", args: []string{"--endpoint", "list-invoices"}, want: []string{"r3", "r2"}},
		{name: "endpoint in a collection", args: []string{"--collection", "Sales", "--endpoint", "get-invoice"}, want: []string{"r1"}},
		{name: "since a duration", args: []string{"--since", "1h"}, want: []string{"r4", "r3", "r2"}},
		{name: "since a time", args: []string{"--since", time.Now().Add(-30 * time.Minute).UTC().Format(time.RFC3339)}, want: []string{"r4", "r3"}},
		{name: "limit", args: []string{"--limit", "2"}, want: []string{"r4", "r3"}},
		{name: "a deleted client's id", args: []string{"--client", "cli_gone"}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := cp.mustCtl(t, "", append([]string{"get", "calls"}, tt.args...)...)
			if tt.want == nil {
				if out != "no calls\n" {
					t.Errorf("got %q, want no calls", out)
				}
				return
			}
			if got := requestIDs(out); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("request ids = %v, want %v\n%s", got, tt.want, out)
			}
		})
	}

	// The table names clients and endpoints, and never shows a query string.
	out := cp.mustCtl(t, "", "get", "calls", "--limit", "2")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if h := strings.Join(fields(lines[0]), "|"); h != "TIME|STATUS|METHOD|PATH|CLIENT|ENDPOINT|DURATION|DETAILS|REQUEST ID" {
		t.Errorf("header = %q", h)
	}
	if row := fields(lines[2]); len(row) != 9 || row[1] != "200" || row[3] != "/sales/invoices" || row[4] != "Acme" || row[5] != "list-invoices" || row[6] != "30ms" {
		t.Errorf("row = %q", row)
	}
	if row := fields(lines[1]); len(row) != 9 || row[4] != "-" || row[5] != "-" {
		t.Errorf("a refused call's row = %q, want no client or endpoint", row)
	}
	if strings.Contains(out, "leak") {
		t.Errorf("the query string reached the output:\n%s", out)
	}

	var list []json.RawMessage
	if err := json.Unmarshal([]byte(cp.mustCtl(t, "", "get", "calls", "-o", "json", "--client", "Globex")), &list); err != nil || len(list) != 1 {
		t.Fatalf("get calls -o json: %v, %d items", err, len(list))
	}
	var call adminv1.Call
	if err := protojson.Unmarshal(list[0], &call); err != nil || call.GetStatus() != 429 || call.GetDetails() != "ext_authz_denied" || call.GetNode() != "gw-1" {
		t.Errorf("get calls -o json = %v, %v", &call, err)
	}
	if out := cp.mustCtl(t, "", "get", "calls", "-o", "yaml", "--limit", "1"); !strings.Contains(out, "request_id: r4") {
		t.Errorf("get calls -o yaml:\n%s", out)
	}

	for _, args := range [][]string{
		{"get", "calls", "r1"},
		{"get", "calls", "--since", "yesterday"},
		{"get", "calls", "--limit", "0"},
		{"get", "clients", "--since", "1h"},
	} {
		if r := cp.ctl(t, "", args...); r.code != 2 {
			t.Errorf("gatehousectl %v: exit %d, want a usage error\n%s", args, r.code, r.stderr)
		}
	}
}

func TestCallsSummary(t *testing.T) {
	x := cptest.Start(t)
	cp := &controlPlane{addr: x.Addr, token: x.Token, store: x.Store}
	cp.mustCtl(t, callsConfig, "apply", "-f", "-")
	id := ids(t, cp)

	if out := cp.mustCtl(t, "", "calls", "summary"); !strings.Contains(out, "(1h0m0s)\ntotal 0  2xx 0  4xx 0  5xx 0  other 0\n") || strings.Contains(out, "p50") {
		t.Errorf("summary of an empty log:\n%s", out)
	}
	streamCalls(t, x.ALSAddr, id["Sales"],
		logCall{ago: 3 * time.Hour, client: id["Globex"], ep: id["get-invoice"], status: 200, ms: 500, id: "old"},
		logCall{ago: 30 * time.Minute, client: id["Acme"], ep: id["get-invoice"], status: 200, ms: 10, details: "via_upstream", id: "a"},
		logCall{ago: 20 * time.Minute, client: id["Acme"], ep: id["get-invoice"], status: 200, ms: 20, details: "via_upstream", id: "b"},
		logCall{ago: 10 * time.Minute, client: id["Globex"], ep: id["list-invoices"], status: 503, ms: 40, details: "upstream_reset_before_response_started", id: "c"},
		logCall{ago: time.Minute, status: 401, ms: 1, details: "ext_authz_denied", id: "d"},
	)
	out := cp.mustCtl(t, "", "calls", "summary")
	wantLines := [][]string{
		{"total 4  2xx 2  4xx 1  5xx 1  other 0"},
		{"p50 10ms  p99 40ms"},
		{"ENDPOINT", "CALLS"}, {"get-invoice", "2"}, {"list-invoices", "1"},
		{"CLIENT", "CALLS"}, {"Acme", "2"}, {"Globex", "1"},
		{"NOT 2XX, BY DETAILS", "CALLS"}, {"ext_authz_denied", "1"}, {"upstream_reset_before_response_started", "1"},
	}
	var got [][]string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n")[1:] {
		if strings.HasPrefix(line, "total") || strings.HasPrefix(line, "p50") {
			got = append(got, []string{line})
		} else if f := fields(line); len(f) > 0 {
			got = append(got, f)
		}
	}
	if g, w := join(got), join(wantLines); g != w {
		t.Errorf("calls summary:\n%s\nwant lines:\n%s", out, w)
	}

	if out := cp.mustCtl(t, "", "calls", "summary", "--window", "4h", "--top", "1"); !strings.Contains(out, "total 5 ") || strings.Contains(out, "list-invoices") {
		t.Errorf("calls summary --window 4h --top 1:\n%s", out)
	}
	var sum adminv1.CallSummary
	if err := protojson.Unmarshal([]byte(cp.mustCtl(t, "", "calls", "summary", "-o", "json")), &sum); err != nil ||
		sum.GetTotal() != 4 || sum.GetP99Duration().AsDuration() != 40*time.Millisecond || sum.GetTopClients()[0].GetKey() != id["Acme"] {
		t.Errorf("calls summary -o json = %v, %v", &sum, err)
	}
	for _, args := range [][]string{{"calls"}, {"calls", "list"}, {"calls", "summary", "--window", "-1h"}, {"calls", "summary", "--top", "101"}, {"calls", "summary", "-o", "wide"}} {
		if r := cp.ctl(t, "", args...); r.code != 2 {
			t.Errorf("gatehousectl %v: exit %d, want a usage error", args, r.code)
		}
	}
}

func join(lines [][]string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(strings.Join(l, "|") + "\n")
	}
	return b.String()
}
