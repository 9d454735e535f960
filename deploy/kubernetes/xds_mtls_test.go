package kubernetes

import (
	"os"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"gatehouse/controlplane/bootstrap"
)

// xdsTLSDir is where the xds-mtls overlay mounts each pod's certificate secret.
const xdsTLSDir = "/etc/gatehouse/xds/"

// xdsMTLSBootstrap is the gateway bootstrap of the xds-mtls overlay.
var xdsMTLSBootstrap = bootstrap.Config{
	ControlPlaneAddr: "gatehouse-controlplane.gatehouse.svc.cluster.local:18000",
	XDSCAFile:        xdsTLSDir + "ca.crt", XDSCertFile: xdsTLSDir + "tls.crt", XDSKeyFile: xdsTLSDir + "tls.key",
}

func TestXDSMutualTLSBootstrapIsTheRenderedOne(t *testing.T) {
	want, err := bootstrap.Render(xdsMTLSBootstrap)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("overlays/xds-mtls/envoy-bootstrap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatal("overlays/xds-mtls/envoy-bootstrap.yaml is stale: run the command in overlays/xds-mtls/kustomization.yaml")
	}
}

// The overlay turns on every side of mutual TLS: the control plane requires client
// certificates, and both the gateway's Envoy and its sidecar present one, from files the pod
// actually mounts.
func TestXDSMutualTLSOverlayWiresEveryClient(t *testing.T) {
	var cp *appsv1.StatefulSet
	var gw *appsv1.Deployment
	var envoyBootstrap string
	for _, doc := range render(t, "overlays/xds-mtls") {
		obj, _, err := decodeStrict(doc)
		if err != nil {
			t.Fatal(err)
		}
		switch o := obj.(type) {
		case *appsv1.StatefulSet:
			if o.Name == "gatehouse-controlplane" {
				cp = o
			}
		case *appsv1.Deployment:
			if o.Name == "gatehouse-gateway" {
				gw = o
			}
		case *corev1.ConfigMap:
			if strings.HasPrefix(o.Name, "gatehouse-envoy") {
				envoyBootstrap = o.Data["bootstrap.yaml"]
			}
		}
	}
	if cp == nil || gw == nil {
		t.Fatal("the overlay lost the control plane or the gateway")
	}
	want, err := bootstrap.Render(xdsMTLSBootstrap)
	if err != nil {
		t.Fatal(err)
	}
	if envoyBootstrap != string(want) {
		t.Error("the gateway's Envoy does not get the mutual-TLS bootstrap")
	}

	checkContainer(t, cp.Spec.Template.Spec, "controlplane", "gatehouse-xds-server",
		"--xds-tls-cert-file="+xdsTLSDir+"tls.crt", "--xds-tls-key-file="+xdsTLSDir+"tls.key", "--xds-client-ca-file="+xdsTLSDir+"ca.crt")
	checkContainer(t, gw.Spec.Template.Spec, "authz", "gatehouse-xds-client",
		"--xds-ca-file="+xdsTLSDir+"ca.crt", "--xds-cert-file="+xdsTLSDir+"tls.crt", "--xds-key-file="+xdsTLSDir+"tls.key")
	checkContainer(t, gw.Spec.Template.Spec, "envoy", "gatehouse-xds-client")
}

// checkContainer asserts that container name has args and mounts secret at xdsTLSDir.
func checkContainer(t *testing.T, pod corev1.PodSpec, name, secret string, args ...string) {
	t.Helper()
	i := slices.IndexFunc(pod.Containers, func(c corev1.Container) bool { return c.Name == name })
	if i < 0 {
		t.Fatalf("no container %s", name)
	}
	c := pod.Containers[i]
	for _, a := range args {
		if !slices.Contains(c.Args, a) {
			t.Errorf("%s: args %q lack %s", name, c.Args, a)
		}
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		if strings.TrimSuffix(xdsTLSDir, "/") != m.MountPath {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.Secret != nil && v.Secret.SecretName == secret {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Errorf("%s: secret %s is not mounted at %s", name, secret, xdsTLSDir)
	}
}
