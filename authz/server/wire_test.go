package server

import (
	"net/netip"
	"slices"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"gatehouse/authz/check"
	"gatehouse/authz/check/checktest"
)

// wireSeeds are CheckRequests in the shapes Envoy sends, including raw headers.
func wireSeeds() []*authv3.CheckRequest {
	full := envoyRequest("GET", "/sales/orders/o-1?x", "198.51.100.7", ext(checktest.EndpointGetOrder),
		map[string]string{"api-token": "gth_x", "x-gatehouse-client-id": "spoof", "x-forwarded-for": "1.2.3.4"})
	full.Attributes.MetadataContext = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"f": {}}}
	raw := envoyRequest("POST", "/sales/orders", "2001:db8::1", nil, nil)
	raw.Attributes.Request.Http.Headers = nil
	raw.Attributes.Request.Http.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
		{Key: "API-Token", RawValue: []byte("gth_a")},
		{Key: "x-forwarded-for", Value: "1.1.1.1"},
		{Key: "X-Forwarded-For", RawValue: []byte("2.2.2.2")},
		{Key: "x-request-id", Value: "rid"},
	}}
	pipe := envoyRequest("GET", "/", "", nil, nil)
	pipe.Attributes.Source.Address.Address = &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/run/envoy.sock"}}
	return []*authv3.CheckRequest{full, raw, pipe, {}, {Attributes: &authv3.AttributeContext{}}}
}

// comparable is what the pipeline reads from a request.
type comparable struct {
	Method, Path, EndpointID, RequestID string
	Source                              netip.Addr
	Headers                             map[string]string
	Names                               []string
}

var probeHeaders = []string{"api-token", "authorization", "x-forwarded-for", "x-request-id", "x-gatehouse-client-id"}

func view(r check.Request, names func(func(string))) comparable {
	c := comparable{Method: r.Method, Path: r.Path, EndpointID: r.EndpointID, RequestID: r.RequestID,
		Source: r.Source, Headers: map[string]string{}}
	seen := map[string]bool{}
	names(func(n string) {
		if !seen[n] {
			seen[n] = true
			c.Names = append(c.Names, n)
		}
	})
	slices.Sort(c.Names)
	for _, n := range append(slices.Clone(probeHeaders), c.Names...) {
		c.Headers[n] = r.Headers.Get(n)
	}
	return c
}

func compareDecoders(t *testing.T, b []byte) {
	var req authv3.CheckRequest
	if proto.Unmarshal(b, &req) != nil {
		// The generated decoder refuses it; the wire decoder may skip what it does not read,
		// and must only not panic.
		var w wireRequest
		_ = w.decode(b)
		return
	}
	want := RequestFromCheck(&req)
	m := want.Headers.(check.MapHeaders)
	var w wireRequest
	if err := w.decode(b); err != nil {
		t.Fatalf("wire decoder refused a valid CheckRequest: %v", err)
	}
	got := w.toRequest()
	if diff := cmp.Diff(view(want, func(f func(string)) {
		for k := range m {
			f(k)
		}
	}), view(got, w.eachName), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Fatalf("decoders disagree (-generated +wire):\n%s", diff)
	}
}

func TestWireDecoderAgrees(t *testing.T) {
	for i, r := range wireSeeds() {
		b, err := proto.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(string(rune('a'+i)), func(t *testing.T) { compareDecoders(t, b) })
	}
}

// FuzzWireRequest is a differential test: for every message the generated decoder accepts,
// the wire decoder reads the same method, path, source, endpoint, request id and headers.
func FuzzWireRequest(f *testing.F) {
	for _, r := range wireSeeds() {
		b, err := proto.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(compareDecoders)
}
