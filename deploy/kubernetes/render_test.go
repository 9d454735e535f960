// Package kubernetes holds the Kubernetes manifests of Gatehouse; its tests render every
// kustomize overlay and check that each object decodes strictly into its Kubernetes type and
// keeps the platform's security and availability rules.
package kubernetes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"gatehouse/controlplane/bootstrap"
)

// overlays are every kustomization a user may apply.
var overlays = []string{"base", "overlays/redis", "overlays/xds-mtls"}

func render(t *testing.T, dir string) [][]byte {
	t.Helper()
	if _, err := exec.LookPath("kubectl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("kubectl is not installed (.ci/run installs it)")
		}
		t.Skip("kubectl not installed")
	}
	out, err := exec.Command("kubectl", "kustomize", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, out)
	}
	var docs [][]byte
	for _, doc := range bytes.Split(out, []byte("\n---\n")) {
		if len(bytes.TrimSpace(doc)) > 0 {
			docs = append(docs, doc)
		}
	}
	return docs
}

// decodeStrict decodes one YAML object into its typed struct, refusing unknown fields.
func decodeStrict(doc []byte) (any, string, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return nil, "", err
	}
	var obj any
	switch head.APIVersion + "/" + head.Kind {
	case "v1/Namespace":
		obj = new(corev1.Namespace)
	case "v1/Service":
		obj = new(corev1.Service)
	case "v1/ConfigMap":
		obj = new(corev1.ConfigMap)
	case "apps/v1/Deployment":
		obj = new(appsv1.Deployment)
	case "apps/v1/StatefulSet":
		obj = new(appsv1.StatefulSet)
	case "policy/v1/PodDisruptionBudget":
		obj = new(policyv1.PodDisruptionBudget)
	case "autoscaling/v2/HorizontalPodAutoscaler":
		obj = new(autoscalingv2.HorizontalPodAutoscaler)
	case "networking.k8s.io/v1/NetworkPolicy":
		obj = new(networkingv1.NetworkPolicy)
	default:
		return nil, "", fmt.Errorf("unexpected object %s %s", head.APIVersion, head.Kind)
	}
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, "", err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		return nil, "", fmt.Errorf("%s: %w", head.Kind, err)
	}
	return obj, head.Kind, nil
}

func TestEveryOverlayRendersIntoValidObjects(t *testing.T) {
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			kinds := map[string]int{}
			for _, doc := range render(t, dir) {
				obj, kind, err := decodeStrict(doc)
				if err != nil {
					t.Fatalf("%v\n%s", err, doc)
				}
				kinds[kind]++
				switch o := obj.(type) {
				case *corev1.ConfigMap:
					if b, ok := o.Data["bootstrap.yaml"]; ok {
						if _, err := bootstrap.Parse([]byte(b)); err != nil {
							t.Errorf("configmap %s: the Envoy bootstrap does not validate: %v", o.Name, err)
						}
					}
				case *appsv1.Deployment:
					checkPod(t, o.Name, o.Spec.Template.Spec)
				case *appsv1.StatefulSet:
					checkPod(t, o.Name, o.Spec.Template.Spec)
					if len(o.Spec.VolumeClaimTemplates) == 0 {
						t.Errorf("statefulset %s has no persistent volume claim", o.Name)
					}
				}
			}
			for _, want := range []string{"StatefulSet", "Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy", "ConfigMap"} {
				if kinds[want] == 0 {
					t.Errorf("no %s rendered", want)
				}
			}
		})
	}
}

// checkPod holds every workload to the rules a platform team expects: non-root, no privilege
// escalation, read-only root filesystem, probes, requests and limits.
func checkPod(t *testing.T, name string, pod corev1.PodSpec) {
	t.Helper()
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Errorf("%s: pod does not require a non-root user", name)
	}
	for _, c := range pod.Containers {
		where := name + "/" + c.Name
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: needs allowPrivilegeEscalation false and readOnlyRootFilesystem true", where)
		}
		if c.ReadinessProbe == nil || c.LivenessProbe == nil {
			t.Errorf("%s: needs readiness and liveness probes", where)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: needs CPU requests and memory limits", where)
		}
		if !strings.Contains(c.Image, ":") || strings.HasSuffix(c.Image, ":latest") {
			t.Errorf("%s: image %s is not pinned to a version", where, c.Image)
		}
	}
}

func TestRedisOverlayTurnsOnTheSharedLimiter(t *testing.T) {
	for _, doc := range render(t, "overlays/redis") {
		obj, _, err := decodeStrict(doc)
		if err != nil {
			t.Fatal(err)
		}
		d, ok := obj.(*appsv1.Deployment)
		if !ok || d.Name != "gatehouse-gateway" {
			continue
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name == "authz" {
				args := strings.Join(c.Args, " ")
				if !strings.Contains(args, "--limiter=redis") || !strings.Contains(args, "--redis-addr=") {
					t.Fatalf("authz args %q do not select the Redis limiter", args)
				}
				return
			}
		}
	}
	t.Fatal("no authz container in the redis overlay's gateway")
}

func TestKubernetesBootstrapIsTheRenderedOne(t *testing.T) {
	want, err := bootstrap.Render(bootstrap.Config{ControlPlaneAddr: "gatehouse-controlplane.gatehouse.svc.cluster.local:18000"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("base/envoy-bootstrap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatal("base/envoy-bootstrap.yaml is stale: run gatehouse-controlplane bootstrap -xds-addr gatehouse-controlplane.gatehouse.svc.cluster.local:18000 -out deploy/kubernetes/base/envoy-bootstrap.yaml")
	}
}
