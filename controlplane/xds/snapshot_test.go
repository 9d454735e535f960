package xds

import (
	"context"
	"errors"
	"strings"
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

func TestPublishVersions(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	f := newFixture(3, "127.0.0.1:8081")
	if err := s.Publish(ctx, 1, f.resources(t)); err != nil {
		t.Fatal(err)
	}
	f.endpoints[1].recipe = "changed"
	if err := s.Publish(ctx, 2, f.resources(t)); err != nil {
		t.Fatal(err)
	}
	st, err := s.ListNodes(ctx, &adminv1.ListNodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// Only the authz endpoints changed: the route table does not carry the recipe here.
	want := map[string]string{
		resource.ListenerType: "1", resource.RouteType: "1", resource.ClusterType: "1", resource.EndpointType: "1",
		TypeAuthzEndpoint: "2", TypeAuthzProfile: "1", TypeAuthzPolicy: "1",
	}
	if diff := cmp.Diff(want, st.GetPublishedVersions()); diff != "" {
		t.Errorf("versions (-want +got):\n%s", diff)
	}
	if st.GetPublishedRevision() != 2 {
		t.Errorf("revision = %d", st.GetPublishedRevision())
	}
}

func TestPublishRefusesInvalid(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(Resources)
		wantErr string
	}{
		{
			name: "route breaking a PGV rule",
			mutate: func(r Resources) {
				rc := proto.CloneOf(r[resource.RouteType][0].(*route.RouteConfiguration))
				rc.VirtualHosts[0].Routes[1].Match.Headers[0].Name = "" // min_len 1
				r[resource.RouteType] = []proto.Message{rc}
			},
			wantErr: `route "ep-00001"`,
		},
		{
			name: "route to an unpublished cluster",
			mutate: func(r Resources) {
				rc := proto.CloneOf(r[resource.RouteType][0].(*route.RouteConfiguration))
				rc.VirtualHosts[0].Routes[0].GetRoute().ClusterSpecifier = &route.RouteAction_Cluster{Cluster: "nope"}
				r[resource.RouteType] = []proto.Message{rc}
			},
			wantErr: `cluster "nope" is not published`,
		},
		{
			name:    "EDS cluster without endpoints",
			mutate:  func(r Resources) { delete(r, resource.EndpointType) },
			wantErr: `endpoints "gatehouse-runtime" are not published`,
		},
		{
			name: "cluster breaking a PGV rule",
			mutate: func(r Resources) {
				c := proto.CloneOf(r[resource.ClusterType][0].(*cluster.Cluster))
				c.ConnectTimeout.Seconds = -1
				r[resource.ClusterType] = []proto.Message{c}
			},
			wantErr: "ConnectTimeout",
		},
		{
			name: "duplicate names",
			mutate: func(r Resources) {
				r[TypeAuthzPolicy] = append(r[TypeAuthzPolicy], &authzv1.Policy{Name: "pol-1"})
			},
			wantErr: `duplicate resource "pol-1"`,
		},
		{
			name:    "message under the wrong type URL",
			mutate:  func(r Resources) { r[TypeAuthzPolicy] = []proto.Message{&authzv1.Profile{Name: "x"}} },
			wantErr: "is a gatehouse.authz.v1.Profile",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t)
			ctx := context.Background()
			f := newFixture(3, "127.0.0.1:8081")
			if err := s.Publish(ctx, 1, f.resources(t)); err != nil {
				t.Fatal(err)
			}
			bad := f.resources(t)
			tt.mutate(bad)
			err := s.Publish(ctx, 2, bad)
			if !errors.Is(err, ErrInvalidSnapshot) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Publish = %v, want ErrInvalidSnapshot with %q", err, tt.wantErr)
			}
			st, err := s.ListNodes(ctx, &adminv1.ListNodesRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if st.GetPublishedRevision() != 1 || st.GetRejectedPublishes() != 1 || !strings.Contains(st.GetLastRejectedError(), tt.wantErr) {
				t.Errorf("status after refusal = %v", st)
			}
		})
	}
}
