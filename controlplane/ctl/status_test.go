package ctl_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.yaml.in/yaml/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	"gatehouse/controlplane/ctl/internal/cptest"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// gateway is one Envoy-like node on a real SotW ADS stream to the control plane.
type gateway struct {
	t      *testing.T
	node   *corev3.Node
	stream discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	close  context.CancelFunc
}

func connectGateway(t *testing.T, xdsAddr, id string) *gateway {
	t.Helper()
	cc, err := grpc.NewClient(xdsAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(cc).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := &corev3.Node{Id: id, Cluster: "gatehouse", UserAgentName: "envoy"}
	return &gateway{t: t, node: node, stream: stream, close: cancel}
}

// subscribe asks for every resource of typeURL and returns the first answer.
func (g *gateway) subscribe(typeURL string) *discovery.DiscoveryResponse {
	g.t.Helper()
	g.send(&discovery.DiscoveryRequest{Node: g.node, TypeUrl: typeURL})
	resp, err := g.stream.Recv()
	if err != nil {
		g.t.Fatalf("recv %s: %v", typeURL, err)
	}
	if resp.GetTypeUrl() != typeURL {
		g.t.Fatalf("got %s, want %s", resp.GetTypeUrl(), typeURL)
	}
	return resp
}

// ack accepts resp, as Envoy does: its version and nonce.
func (g *gateway) ack(resp *discovery.DiscoveryResponse) {
	g.t.Helper()
	g.send(&discovery.DiscoveryRequest{Node: g.node, TypeUrl: resp.GetTypeUrl(), VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()})
}

// nack rejects resp, as Envoy does: the last accepted version (none here), resp's nonce and
// the reason.
func (g *gateway) nack(resp *discovery.DiscoveryResponse, reason string) {
	g.t.Helper()
	g.send(&discovery.DiscoveryRequest{Node: g.node, TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce(),
		ErrorDetail: &rpcstatus.Status{Code: int32(codes.InvalidArgument), Message: reason}})
}

func (g *gateway) send(req *discovery.DiscoveryRequest) {
	g.t.Helper()
	if err := g.stream.Send(req); err != nil {
		g.t.Fatalf("send: %v", err)
	}
}

// statusUntil runs `gatehousectl status args...` until ok accepts its output; the bound only
// keeps a broken server from hanging the test.
func (cp *controlPlane) statusUntil(t *testing.T, ok func(string) error, args ...string) string {
	t.Helper()
	var last error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		out := cp.mustCtl(t, "", append([]string{"status"}, args...)...)
		if last = ok(out); last == nil {
			return out
		}
	}
	t.Fatalf("status never became right: %v", last)
	return ""
}

func contains(subs ...string) func(string) error {
	return func(out string) error {
		for _, s := range subs {
			if !strings.Contains(out, s) {
				return fmt.Errorf("output lacks %q:\n%s", s, out)
			}
		}
		return nil
	}
}

// fields splits a table line on runs of two or more spaces, the table's column gap.
func fields(line string) []string {
	var out []string
	for _, f := range strings.Split(line, "  ") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func TestStatusShowsConnectedGateways(t *testing.T) {
	x := cptest.StartWithXDS(t)
	cp := &controlPlane{addr: x.Addr, token: x.Token, store: x.Store}
	published := fmt.Sprintf("published revision %d\n", cp.store.Revision())

	// Before any node connects: the published revision and a clear line, no empty table.
	out := cp.statusUntil(t, contains(published))
	if want := published + "no gateways connected\n"; out != want {
		t.Errorf("status without nodes:\n%s\nwant:\n%s", out, want)
	}

	// A gateway accepts the clusters and rejects the listener.
	gw := connectGateway(t, x.XDSAddr, "gw-1")
	clusters := gw.subscribe(resource.ClusterType)
	gw.ack(clusters)
	listeners := gw.subscribe(resource.ListenerType)
	reason := "Error adding/updating listener(s) gatehouse-public: Didn't find a registered implementation\n" +
		"for 'envoy.filters.http.header_mutation' with type URL: 'envoy.extensions.filters.http.header_mutation.v3.HeaderMutation'"
	gw.nack(listeners, reason)

	lv := listeners.GetVersionInfo()
	out = cp.statusUntil(t, contains("gw-1", lv+": Error adding"))
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 5 || lines[0]+"\n" != published || lines[1] != "" {
		t.Fatalf("status with one gateway:\n%s", out)
	}
	if got := fields(lines[2]); strings.Join(got, "|") != "NODE|CLUSTER|CONNECTED SINCE|TYPE|ACKED|LAST NACK" {
		t.Errorf("header = %q", got)
	}
	row := fields(lines[3])
	if len(row) != 6 || row[0] != "gw-1" || row[1] != "gatehouse" || row[3] != "Cluster" || row[4] != clusters.GetVersionInfo() || row[5] != "-" {
		t.Errorf("cluster row = %q, want gw-1, gatehouse, a time, Cluster, %s, -", row, clusters.GetVersionInfo())
	}
	if len(row) > 2 {
		if _, err := time.Parse(time.RFC3339, row[2]); err != nil {
			t.Errorf("connected since %q: %v", row[2], err)
		}
	}
	next := fields(lines[4])
	if len(next) != 3 || next[0] != "Listener" || next[1] != "-" {
		t.Errorf("listener row = %q, want Listener, -, its NACK", next)
	} else if nack := next[2]; !strings.HasPrefix(nack, lv+": Error adding/updating listener(s) gatehouse-public: ") ||
		!strings.HasSuffix(nack, "…") || len([]rune(nack)) != 72 || strings.Contains(nack, "\n") {
		t.Errorf("NACK column = %q, want version and error cut to 72 characters on one line", nack)
	}
	// The node's columns are not repeated on its second row.
	if !strings.HasPrefix(lines[4], strings.Repeat(" ", strings.Index(lines[3], "Cluster"))+"Listener") {
		t.Errorf("second row repeats the node:\n%s", out)
	}

	// JSON carries the whole answer, the NACK uncut.
	var resp adminv1.ListNodesResponse
	if err := protojson.Unmarshal([]byte(cp.mustCtl(t, "", "status", "-o", "json")), &resp); err != nil {
		t.Fatalf("status -o json: %v", err)
	}
	if n := resp.GetNodes(); len(n) != 1 || n[0].GetId() != "gw-1" || len(n[0].GetTypes()) != 2 ||
		n[0].GetTypes()[1].GetLastError() != reason || n[0].GetTypes()[1].GetNackedVersion() != lv {
		t.Errorf("status -o json nodes = %v", n)
	}
	// YAML too, with the published versions map.
	var doc struct {
		PublishedRevision uint64            `yaml:"published_revision"`
		PublishedVersions map[string]string `yaml:"published_versions"`
		Nodes             []struct {
			ID string `yaml:"id"`
		} `yaml:"nodes"`
	}
	if err := yaml.Unmarshal([]byte(cp.mustCtl(t, "", "status", "-o", "yaml")), &doc); err != nil {
		t.Fatalf("status -o yaml: %v", err)
	}
	if doc.PublishedRevision != cp.store.Revision() || doc.PublishedVersions[resource.ClusterType] != clusters.GetVersionInfo() ||
		len(doc.Nodes) != 1 || doc.Nodes[0].ID != "gw-1" {
		t.Errorf("status -o yaml = %+v", doc)
	}

	// A gateway that goes away leaves the list.
	gw.close()
	cp.statusUntil(t, contains("no gateways connected"))
}

func TestStatusRefusesABadFormat(t *testing.T) {
	x := cptest.StartWithXDS(t)
	cp := &controlPlane{addr: x.Addr, token: x.Token, store: x.Store}
	if r := cp.ctl(t, "", "status", "-o", "wide"); r.code != 2 || !strings.Contains(r.stderr, "-o must be table, yaml or json") {
		t.Errorf("status -o wide: exit %d, stderr %q", r.code, r.stderr)
	}
}
