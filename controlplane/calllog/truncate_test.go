package calllog

import (
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// TestRecordBoundsStrings checks that what a caller controls cannot make a record large: every
// string is cut to its limit at a UTF-8 boundary, and a cut or query-stripped path does not keep
// the received string alive.
func TestRecordBoundsStrings(t *testing.T) {
	long := strings.Repeat("a", 60<<10)
	tests := []struct {
		name  string
		edit  func(e *entryParts)
		field func(r Record) string
		limit int
		want  string // the expected value; empty to check only the limit
	}{
		{name: "60 KiB path", edit: func(e *entryParts) { e.path = "/" + long }, field: func(r Record) string { return r.Path },
			limit: MaxPathBytes, want: "/" + long[:MaxPathBytes-1]},
		{name: "long path with a long query", edit: func(e *entryParts) { e.path = "/" + long + "?q=" + long },
			field: func(r Record) string { return r.Path }, limit: MaxPathBytes, want: "/" + long[:MaxPathBytes-1]},
		{name: "path not split inside a UTF-8 sequence",
			edit:  func(e *entryParts) { e.path = "/" + strings.Repeat("é", 2000) }, // 2-byte runes after one byte
			field: func(r Record) string { return r.Path }, limit: MaxPathBytes, want: "/" + strings.Repeat("é", (MaxPathBytes-1)/2)},
		{name: "short path kept whole", edit: func(e *entryParts) { e.path = "/sales/invoices/7?page=2" },
			field: func(r Record) string { return r.Path }, limit: MaxPathBytes, want: "/sales/invoices/7"},
		{name: "request id", edit: func(e *entryParts) { e.requestID = long }, field: func(r Record) string { return r.RequestID },
			limit: MaxRequestIDBytes, want: long[:MaxRequestIDBytes]},
		{name: "details", edit: func(e *entryParts) { e.details = long }, field: func(r Record) string { return r.Details },
			limit: MaxDetailsBytes, want: long[:MaxDetailsBytes]},
		{name: "node", edit: func(e *entryParts) { e.node = long }, field: func(r Record) string { return r.Node },
			limit: MaxIDBytes, want: long[:MaxIDBytes]},
		{name: "client id", edit: func(e *entryParts) { e.client = long }, field: func(r Record) string { return r.ClientID },
			limit: MaxIDBytes, want: long[:MaxIDBytes]},
		{name: "profile id", edit: func(e *entryParts) { e.profile = long }, field: func(r Record) string { return r.ProfileID },
			limit: MaxIDBytes, want: long[:MaxIDBytes]},
		{name: "endpoint id", edit: func(e *entryParts) { e.endpoint = long }, field: func(r Record) string { return r.EndpointID },
			limit: MaxIDBytes, want: long[:MaxIDBytes]},
		{name: "collection id", edit: func(e *entryParts) { e.collection = long }, field: func(r Record) string { return r.CollectionID },
			limit: MaxIDBytes, want: long[:MaxIDBytes]},
		{name: "remote address", edit: func(e *entryParts) { e.remote = long }, field: func(r Record) string { return r.RemoteIP },
			limit: MaxIDBytes, want: long[:MaxIDBytes]},
		{name: "unknown method number", edit: func(e *entryParts) { e.method = core.RequestMethod(1 << 30) },
			field: func(r Record) string { return r.Method }, limit: MaxMethodBytes},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := entryParts{node: "gw-1", path: "/p", method: core.RequestMethod_GET}
			tc.edit(&p)
			e := entry(1, p.client, p.endpoint, p.path, 200)
			e.Request.RequestMethod = p.method
			e.Request.RequestHeaders[headerProfileID] = p.profile
			e.Request.RequestHeaders[headerCollectionID] = p.collection
			if p.requestID != "" {
				e.Request.RequestId = p.requestID
			}
			if p.details != "" {
				e.Response.ResponseCodeDetails = p.details
			}
			if p.remote != "" {
				e.CommonProperties.DownstreamRemoteAddress.GetSocketAddress().Address = p.remote
			}
			got := tc.field(record(p.node, e))
			if len(got) > tc.limit || !utf8.ValidString(got) {
				t.Fatalf("len %d (limit %d), valid UTF-8 %v", len(got), tc.limit, utf8.ValidString(got))
			}
			if tc.want != "" && got != tc.want {
				t.Errorf("got %.40q… (len %d), want %.40q… (len %d)", got, len(got), tc.want, len(tc.want))
			}
			if in := e.GetRequest().GetPath(); got != "" && sharesMemory(got, in) && len(got) < len(in) {
				t.Errorf("the kept value points into the received %d-byte path", len(in))
			}
		})
	}
}

// entryParts are the caller-influenced strings of one access log entry.
type entryParts struct {
	node, path, requestID, details, client, profile, endpoint, collection, remote string
	method                                                                        core.RequestMethod
}

// sharesMemory reports whether a's bytes lie inside b's.
func sharesMemory(a, b string) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	pa, pb := uintptr(unsafe.Pointer(unsafe.StringData(a))), uintptr(unsafe.Pointer(unsafe.StringData(b)))
	return pa >= pb && pa < pb+uintptr(len(b))
}
