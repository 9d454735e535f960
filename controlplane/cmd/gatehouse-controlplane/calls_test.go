package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	accesslogdata "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	alsv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"gatehouse/controlplane/admin"
	"gatehouse/controlplane/dashboard"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// streamCalls sends access log entries to the xDS port as Envoy's gRPC access logger does.
func streamCalls(t *testing.T, xdsAddr string, entries ...*accesslogdata.HTTPAccessLogEntry) {
	t.Helper()
	cc, err := grpc.NewClient(xdsAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	stream, err := alsv3.NewAccessLogServiceClient(cc).StreamAccessLogs(t.Context())
	if err != nil {
		t.Fatal(err)
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

func logEntry(start time.Time, client, endpoint, path string, code uint32) *accesslogdata.HTTPAccessLogEntry {
	return &accesslogdata.HTTPAccessLogEntry{
		CommonProperties: &accesslogdata.AccessLogCommon{StartTime: timestamppb.New(start), Duration: durationpb.New(3 * time.Millisecond)},
		Request: &accesslogdata.HTTPRequestProperties{
			RequestMethod: corev3.RequestMethod_GET, Path: path, RequestId: "req-" + client,
			RequestHeaders: map[string]string{"x-gatehouse-client-id": client, "x-gatehouse-endpoint-id": endpoint},
		},
		Response: &accesslogdata.HTTPResponseProperties{ResponseCode: wrapperspb.UInt32(code), ResponseCodeDetails: "via_upstream"},
	}
}

// TestRunServesTheCallLog feeds calls through the access-log port and reads them back over
// REST and gRPC, behind the admin token, and serves the dashboard page without one.
func TestRunServesTheCallLog(t *testing.T) {
	token, err := admin.NewAdminToken()
	if err != nil {
		t.Fatal(err)
	}
	addrs, out, stop := startAll(t, Config{DataDir: t.TempDir(), AdminToken: token})
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	base := "http://" + addrs[serverAdminHTTP]
	if !strings.Contains(out.String(), base+"/dashboard/") {
		t.Errorf("banner does not show the dashboard:\n%s", out.String())
	}
	now := time.Now()
	streamCalls(t, addrs[serverXDS],
		logEntry(now.Add(-2*time.Hour), "cli-old", "ep-1", "/s/a", 200),
		logEntry(now.Add(-2*time.Minute), "cli-a", "ep-1", "/s/a?api_key=leak", 200),
		logEntry(now.Add(-time.Minute), "cli-b", "ep-2", "/s/b", 503),
	)

	rest := func(path, tok string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), "GET", base+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/v1/calls", "/v1/calls:summary"} {
		if code, _ := rest(path, ""); code != http.StatusUnauthorized {
			t.Errorf("GET %s without a token = %d, want 401", path, code)
		}
	}

	// The stream's close returns once the server has stored every entry it received.
	code, body := rest("/v1/calls?page_size=10", token)
	if code != 200 {
		t.Fatalf("GET /v1/calls = %d %s", code, body)
	}
	var list struct {
		Calls []struct {
			RequestID string `json:"request_id"`
			Path      string `json:"path"`
		} `json:"calls"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Calls) != 3 || list.Calls[0].RequestID != "req-cli-b" || list.Calls[1].Path != "/s/a" {
		t.Errorf("GET /v1/calls = %s", body)
	}
	if strings.Contains(body, "leak") {
		t.Errorf("a query string reached the call log: %s", body)
	}
	if code, body := rest("/v1/calls?client_id=cli-a", token); code != 200 || strings.Count(body, "request_id") != 1 {
		t.Errorf("GET /v1/calls?client_id=cli-a = %d %s", code, body)
	}
	if code, body := rest("/v1/calls?page_size=5000", token); code != http.StatusBadRequest {
		t.Errorf("GET /v1/calls?page_size=5000 = %d %s, want 400", code, body)
	}

	code, body = rest("/v1/calls:summary?window=3600s", token)
	var sum struct {
		Total     string `json:"total"`
		Status5xx string `json:"status_5xx"`
	}
	if err := json.Unmarshal([]byte(body), &sum); err != nil || code != 200 || sum.Total != "2" || sum.Status5xx != "1" {
		t.Errorf("GET /v1/calls:summary = %d %s (%v), want 2 calls, one 5xx", code, body, err)
	}

	conn, err := grpc.NewClient(addrs[serverAdminGRPC], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	calls := adminv1.NewCallLogServiceClient(conn)
	if _, err := calls.ListCalls(context.Background(), &adminv1.ListCallsRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("gRPC ListCalls without a token: %v", err)
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
	if r, err := calls.ListCalls(ctx, &adminv1.ListCallsRequest{EndpointId: "ep-2"}); err != nil || len(r.GetCalls()) != 1 {
		t.Errorf("gRPC ListCalls(ep-2) = %v, %v", r, err)
	}

	resp, err := http.Get(base + "/dashboard/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") != dashboard.ContentSecurityPolicy {
		t.Errorf("GET /dashboard/ = %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
}
