package ctl

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// largeConfig is an apply file of collections×endpoints endpoints and as many clients, each with
// one profile, and the state a control plane holds after applying it.
func largeConfig(collections, endpoints int) ([]byte, *State) {
	st := emptyState()
	doc := []byte("collections:\n")
	for c := range collections {
		col := &adminv1.Collection{Id: fmt.Sprintf("col_%d", c), Name: fmt.Sprintf("c%d", c), Version: "v1", Path: fmt.Sprintf("c%d", c)}
		st.Collections = append(st.Collections, col)
		doc = fmt.Appendf(doc, "  - {name: %s, version: v1, path: %s, endpoints: [\n", col.Name, col.Path)
		for e := range endpoints {
			ep := &adminv1.Endpoint{
				Id: fmt.Sprintf("ep_%d_%d", c, e), CollectionId: col.Id, Name: fmt.Sprintf("e%d", e), Method: "GET",
				Path: fmt.Sprintf("/r%d/{id}", e), RecipeId: "rcp", Active: proto.Bool(false), Timeout: durationpb.New(30 * time.Second),
			}
			st.Endpoints[col.Id] = append(st.Endpoints[col.Id], ep)
			doc = fmt.Appendf(doc, "      {name: %s, method: GET, path: \"%s\", recipe_id: rcp},\n", ep.Name, ep.Path)
		}
		doc = append(doc, "    ]}\n"...)
	}
	doc = append(doc, "clients:\n"...)
	for c := range collections {
		cl := &adminv1.Client{Id: fmt.Sprintf("cli_%d", c), Name: fmt.Sprintf("client%d", c), Active: proto.Bool(true)}
		st.Clients = append(st.Clients, cl)
		st.Profiles[cl.Id] = []*adminv1.AccessProfile{{
			Id: fmt.Sprintf("prf_%d", c), ClientId: cl.Id, Name: "p", CollectionIds: []string{fmt.Sprintf("col_%d", c)},
			Active: proto.Bool(true), Auth: &adminv1.AccessProfile_ApiToken{ApiToken: &adminv1.ApiTokenAuth{}},
		}}
		doc = fmt.Appendf(doc, "  - {name: %s, access_profiles: [{name: p, collections: [c%d], auth: {api_token: {}}}]}\n", cl.Name, c)
	}
	return doc, st
}

// BenchmarkMakePlan plans an unchanged configuration of 10,000 endpoints in 100 collections
// and 100 clients: the cost of a no-op apply after its state is read.
func BenchmarkMakePlan(b *testing.B) {
	doc, st := largeConfig(100, 100)
	spec, err := testDecoder(nil).DecodeSpec(doc)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		plan, err := MakePlan(spec, st, true)
		if err != nil || len(plan) != 0 {
			b.Fatalf("plan %v, %v; want no changes", plan, err)
		}
	}
}

// BenchmarkDecodeSpec parses the same 10,000-endpoint apply file.
func BenchmarkDecodeSpec(b *testing.B) {
	doc, _ := largeConfig(100, 100)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := testDecoder(nil).DecodeSpec(doc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExport renders the 10,000-endpoint state as YAML.
func BenchmarkExport(b *testing.B) {
	_, st := largeConfig(100, 100)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Export(st); err != nil {
			b.Fatal(err)
		}
	}
}
