package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"gatehouse/controlplane/admin"
	"gatehouse/controlplane/compile"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

// TestRunPublishesAdminChangesOverXDS drives the wiring as a deployment would: a change made
// through the admin API reaches a subscribed sidecar over delta ADS, and the node shows up in
// the status API.
func TestRunPublishesAdminChangesOverXDS(t *testing.T) {
	token, err := admin.NewAdminToken()
	if err != nil {
		t.Fatal(err)
	}
	addrs, _, stop := startAll(t, Config{DataDir: t.TempDir(), AdminToken: token})
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	xconn, err := grpc.NewClient(addrs[serverXDS], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer xconn.Close()
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(xconn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	endpointType := "type.googleapis.com/gatehouse.authz.v1.Endpoint"
	err = stream.Send(&discoveryv3.DeltaDiscoveryRequest{
		Node:                   &corev3.Node{Id: "sidecar-1", Cluster: "gatehouse-authz"},
		TypeUrl:                endpointType,
		ResourceNamesSubscribe: []string{"*"},
	})
	if err != nil {
		t.Fatal(err)
	}

	conn, err := grpc.NewClient(addrs[serverAdminGRPC], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	actx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	col, err := adminv1.NewCollectionServiceClient(conn).CreateCollection(actx, &adminv1.CreateCollectionRequest{
		Collection: &adminv1.Collection{Name: "Sales", Version: "v1", Path: "sales-v1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := adminv1.NewEndpointServiceClient(conn).CreateEndpoint(actx, &adminv1.CreateEndpointRequest{
		CollectionId: col.GetId(),
		Endpoint:     &adminv1.Endpoint{Name: "get", Method: "GET", Path: "/invoices/{id}", RecipeId: "rcp_1", Active: proto.Bool(true)},
	})
	if err != nil {
		t.Fatal(err)
	}

	for {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("waiting for endpoint %s over xDS: %v", ep.GetId(), err)
		}
		if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()}); err != nil {
			t.Fatal(err)
		}
		var got *authzv1.Endpoint
		for _, r := range resp.GetResources() {
			if r.GetName() == ep.GetId() {
				got = new(authzv1.Endpoint)
				if err := r.GetResource().UnmarshalTo(got); err != nil {
					t.Fatal(err)
				}
			}
		}
		if got != nil {
			if got.GetPathTemplate() != "/sales-v1/invoices/{id}" || !got.GetActive() || got.GetRecipeId() != "rcp_1" {
				t.Fatalf("published endpoint = %v", got)
			}
			break
		}
	}

	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addrs[serverAdminHTTP]+"/v1/status/nodes", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "sidecar-1") {
		t.Fatalf("status nodes: %d %s", resp.StatusCode, body)
	}
}

func TestParseFlagsReadsTheDeploymentSettings(t *testing.T) {
	cfg, _, err := parseFlags([]string{"--runtime-addr", "10.0.0.1:8081, 10.0.0.2:8081", "--listener-port", "8443", "--xds-addr", ":19000"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Compile.RuntimeAddresses, " "); got != "10.0.0.1:8081 10.0.0.2:8081" || cfg.Compile.ListenerPort != 8443 || cfg.XDSAddr != ":19000" {
		t.Fatalf("parsed %+v", cfg)
	}
	if _, _, err := parseFlags([]string{"--listener-port", "70000"}, io.Discard); err == nil {
		t.Fatal("an out-of-range listener port was accepted")
	}
	if err := Run(t.Context(), Config{DataDir: t.TempDir(), AdminHTTPAddr: "127.0.0.1:0", AdminGRPCAddr: "127.0.0.1:0", XDSAddr: "127.0.0.1:0",
		Compile: compileSettings("runtime-without-port")}); err == nil || !strings.Contains(err.Error(), "compile settings") {
		t.Fatalf("a bad runtime address started the control plane: %v", err)
	}
}

func compileSettings(runtime string) (s compile.Settings) {
	s.RuntimeAddresses = []string{runtime}
	return s
}
