package ctl

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

func TestPrintStatus(t *testing.T) {
	since := timestamppb.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	tests := []struct {
		name string
		resp *adminv1.ListNodesResponse
		want string
	}{
		{
			name: "a control plane that has published nothing",
			resp: &adminv1.ListNodesResponse{},
			want: "nothing published yet\nno gateways connected\n",
		},
		{
			name: "refused snapshots are shown above the nodes",
			resp: &adminv1.ListNodesResponse{PublishedRevision: 9, RejectedPublishes: 2,
				LastRejectedError: "revision 11: route config \"gatehouse\"\n route \"x\": cluster \"nope\" is not published"},
			want: "published revision 9\n" +
				"refused snapshots: 2, last: revision 11: route config \"gatehouse\" route \"x\": cluster \"nope\" is not…\n" +
				"no gateways connected\n",
		},
		{
			name: "a sidecar's types are marked authz and a node that asked nothing has dashes",
			resp: &adminv1.ListNodesResponse{PublishedRevision: 9, Nodes: []*adminv1.Node{
				{Id: "idle", ConnectedSince: since},
				{Id: "sidecar-1", Cluster: "gatehouse-authz", ConnectedSince: since, Types: []*adminv1.NodeType{
					{TypeUrl: "type.googleapis.com/gatehouse.authz.v1.Endpoint", AckedVersion: "8"},
					{TypeUrl: "type.googleapis.com/gatehouse.authz.v1.Profile", AckedVersion: "7", NackedVersion: "9", LastError: "bad key"},
				}},
			}},
			want: "published revision 9\n\n" +
				"NODE       CLUSTER          CONNECTED SINCE       TYPE            ACKED  LAST NACK\n" +
				"idle       -                2026-03-01T12:00:00Z  -               -      -\n" +
				"sidecar-1  gatehouse-authz  2026-03-01T12:00:00Z  authz.Endpoint  8      -\n" +
				"                                                  authz.Profile   7      9: bad key\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := printStatus(&buf, tc.resp); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, buf.String()); diff != "" {
				t.Errorf("status table (-want +got):\n%s", diff)
			}
		})
	}
}
