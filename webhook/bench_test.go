package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"go.uber.org/zap/zapcore"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// serveOnce runs one request through h the way the webhook server does, without a network.
func serveOnce(b *testing.B, h http.Handler, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
	}
	return rec
}

// distinctBody is the compact realistic review with a first container name of its own for the
// i-th iteration, so that no two iterations share a cached decision (the policy is given
// container names; a label such as pod-template-hash would be cut by data.config.reads).
func distinctBody(template []byte, i int) []byte {
	return bytes.Replace(template, []byte(`"name":"checkout"`), []byte(`"name":"checkout-`+strconv.Itoa(i)+`"`), 1)
}

func benchmarkHandler(b *testing.B, validate bool) {
	a := newPipeline(b, setup{})
	mutate, val := handlers(a)
	h := mutate
	if validate {
		h = val
	}
	body := readReview(b, "untrusted-no-class.json")
	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err != nil {
		b.Fatal(err)
	}
	body = compact.Bytes()
	if bytes.Equal(distinctBody(body, 1), body) {
		b.Fatal("the review has no container name to vary")
	}
	b.Run("same-template", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			serveOnce(b, h, body)
		}
	})
	b.Run("distinct-pods", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			serveOnce(b, h, distinctBody(body, i))
		}
	})
}

// BenchmarkMutateHandler is the whole mutating path: HTTP body, AdmissionReview decoding, pod
// decoding, namespace lookup, decision, patch, response encoding. The body is a realistic
// ~8 KB AdmissionReview of a Deployment pod.
func BenchmarkMutateHandler(b *testing.B) { benchmarkHandler(b, false) }

// BenchmarkValidateHandler is the same for the validating webhook.
func BenchmarkValidateHandler(b *testing.B) { benchmarkHandler(b, true) }

// BenchmarkDecideClusterSize shows that a decision does not get dearer with the size of the
// cluster: the snapshot policies see is O(classes), built once per change, and namespaces are
// a map lookup. Every iteration decides a new pod in another namespace (uncached).
func BenchmarkDecideClusterSize(b *testing.B) {
	set, err := policy.LoadFS(policyFS(b, nil, nil))
	if err != nil {
		b.Fatal(err)
	}
	for _, nodes := range []int{10, 100, 1000, 5000} {
		for _, classes := range []int{10, 50} {
			for _, namespaces := range []int{100, 10000} {
				name := fmt.Sprintf("nodes=%d/classes=%d/namespaces=%d", nodes, classes, namespaces)
				b.Run(name, func(b *testing.B) {
					engine, err := policy.NewEngine(context.Background(), set, 0)
					if err != nil {
						b.Fatal(err)
					}
					view := syntheticCluster(nodes, classes, namespaces)
					a := NewPipeline(Config{Engine: engine, View: view, Namespace: "runtimeguard"})
					pod := []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"job-","labels":{"app":"job","run":"RUN"}},` +
						`"spec":{"containers":[{"name":"job","image":"registry.example.com/job:1","resources":{"requests":{"cpu":"100m"}}}]}}`)
					ctx := context.Background()
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						i++
						ns := "ns-" + strconv.Itoa(i%namespaces)
						req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
							UID: types.UID(strconv.Itoa(i)), Kind: podKind, Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
							Namespace: ns, Operation: admissionv1.Create,
							Object: runtime.RawExtension{Raw: bytes.Replace(pod, []byte("RUN"), []byte(strconv.Itoa(i)), 1)},
						}}
						resp := a.Validate(ctx, req)
						if resp.Result != nil && resp.Result.Code >= 500 {
							b.Fatalf("%s", resp.Result.Message)
						}
					}
				})
			}
		}
	}
}

// syntheticCluster builds a view of nodes Nodes with the labels a cloud provider and the
// runtime operators put on them, classes RuntimeClasses (the five of the default policy plus
// others) and namespaces Namespaces, a third untrusted, a third financial.
func syntheticCluster(nodes, classes, namespaces int) *cluster.View {
	v := cluster.NewView(cluster.Options{})
	pools := []struct {
		label    string
		handlers []string
		taint    string
	}{
		{"sandbox.runtimeguard.io/gvisor", []string{"runc", "runsc"}, "sandbox.runtimeguard.io/gvisor"},
		{"katacontainers.io/kata-runtime", []string{"runc", "kata-qemu"}, ""},
		{"nvidia.com/gpu.present", []string{"runc", "nvidia", "runsc-nvidia", "kata-nvidia"}, "nvidia.com/gpu"},
		{"node.kubernetes.io/pool-general", []string{"runc"}, ""},
	}
	for i := range nodes {
		p := pools[i%len(pools)]
		name := fmt.Sprintf("ip-10-0-%d-%d.eu-west-1.compute.internal", i/250, i%250)
		n := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
				"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
				"topology.kubernetes.io/region": "eu-west-1", "topology.kubernetes.io/zone": fmt.Sprintf("eu-west-1%c", 'a'+i%3),
				"node.kubernetes.io/instance-type": "m6i.2xlarge", "eks.amazonaws.com/nodegroup": fmt.Sprintf("ng-%d", i%4),
				p.label: "true",
			}},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
		}
		if p.taint != "" {
			n.Spec.Taints = []corev1.Taint{{Key: p.taint, Value: "true", Effect: corev1.TaintEffectNoSchedule}}
		}
		for _, h := range append([]string{""}, p.handlers...) {
			n.Status.RuntimeHandlers = append(n.Status.RuntimeHandlers, corev1.NodeRuntimeHandler{Name: h})
		}
		v.UpsertNode(n)
	}
	known := []struct{ name, handler, label, toleration string }{
		{"gvisor", "runsc", "sandbox.runtimeguard.io/gvisor", "sandbox.runtimeguard.io/gvisor"},
		{"kata", "kata-qemu", "katacontainers.io/kata-runtime", ""},
		{"nvidia", "nvidia", "nvidia.com/gpu.present", "nvidia.com/gpu"},
		{"gvisor-nvidia", "runsc-nvidia", "nvidia.com/gpu.present", "nvidia.com/gpu"},
		{"kata-nvidia-gpu", "kata-nvidia", "nvidia.com/gpu.present", "nvidia.com/gpu"},
	}
	for i := range classes {
		rc := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("custom-%d", i)}, Handler: fmt.Sprintf("handler-%d", i),
			Scheduling: &nodev1.Scheduling{NodeSelector: map[string]string{fmt.Sprintf("runtime.example.com/h%d", i): "true"}}}
		if i < len(known) {
			k := known[i]
			rc = &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: k.name}, Handler: k.handler,
				Overhead:   &nodev1.Overhead{PodFixed: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}},
				Scheduling: &nodev1.Scheduling{NodeSelector: map[string]string{k.label: "true"}}}
			if k.toleration != "" {
				rc.Scheduling.Tolerations = []corev1.Toleration{{Key: k.toleration, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
			}
		}
		v.UpsertRuntimeClass(rc)
	}
	tenancy := []string{"untrusted", "financial", ""}
	for i := range namespaces {
		ns := cluster.Namespace{Name: "ns-" + strconv.Itoa(i), Labels: map[string]string{"kubernetes.io/metadata.name": "ns-" + strconv.Itoa(i), "team": fmt.Sprintf("team-%d", i%40)}}
		if t := tenancy[i%len(tenancy)]; t != "" {
			ns.Labels["runtimeguard.io/tenancy"] = t
		}
		v.UpsertNamespace(ns)
	}
	v.MarkSynced()
	return v
}

// deploymentReviews builds the AdmissionReviews the API server sends for a realistic Deployment
// (the benchmark Pod's labels, annotations and spec as its template, in the untrusted
// namespace): a CREATE; an UPDATE that only scales it (template unchanged); and an UPDATE
// that changes the template the way `kubectl rollout restart` does (a restartedAt annotation).
func deploymentReviews(b *testing.B) (create, scale, restart []byte) {
	var review map[string]any
	if err := json.Unmarshal(readReview(b, "untrusted-no-class.json"), &review); err != nil {
		b.Fatal(err)
	}
	req := review["request"].(map[string]any)
	pod := req["object"].(map[string]any)
	meta := pod["metadata"].(map[string]any)
	labels := map[string]any{}
	for k, v := range meta["labels"].(map[string]any) {
		if k != "pod-template-hash" { // the ReplicaSet adds it to its Pods, not the template
			labels[k] = v
		}
	}
	deployment := func(replicas int, restartedAt string) map[string]any {
		annotations := map[string]any{}
		for k, v := range meta["annotations"].(map[string]any) {
			annotations[k] = v
		}
		if restartedAt != "" {
			annotations["kubectl.kubernetes.io/restartedAt"] = restartedAt
		}
		return map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "checkout", "namespace": req["namespace"], "labels": labels, "generation": 4},
			"spec": map[string]any{
				"replicas": replicas, "selector": map[string]any{"matchLabels": labels},
				"template": map[string]any{"metadata": map[string]any{"labels": labels, "annotations": annotations}, "spec": pod["spec"]},
			},
		}
	}
	body := func(op string, obj, old map[string]any) []byte {
		r := map[string]any{
			"uid":       "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
			"kind":      map[string]any{"group": "apps", "version": "v1", "kind": "Deployment"},
			"resource":  map[string]any{"group": "apps", "version": "v1", "resource": "deployments"},
			"name":      "checkout",
			"namespace": req["namespace"],
			"operation": op,
			"userInfo":  req["userInfo"],
			"object":    obj,
			"oldObject": old,
		}
		out, err := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": r})
		if err != nil {
			b.Fatal(err)
		}
		return out
	}
	old := deployment(3, "2026-12-01T10:00:00Z")
	return body("CREATE", deployment(3, ""), nil),
		body("UPDATE", deployment(5, "2026-12-01T10:00:00Z"), old),
		body("UPDATE", deployment(3, "2026-12-05T22:00:00Z"), old)
}

// BenchmarkValidateWorkload is the validating handler serve registers, for a Deployment: its
// CREATE (the template decided as its Pods would be), an UPDATE that leaves the template alone
// (admitted without a decision) and one that changes it (decided again). Every iteration is a
// decision-cache hit, as repeated applies of one Deployment are; the answer memo does not
// apply to workloads.
func BenchmarkValidateWorkload(b *testing.B) {
	_, validate := handlers(newPipeline(b, setup{}))
	create, scale, restart := deploymentReviews(b)
	for _, bc := range []struct {
		name    string
		body    []byte
		message string
	}{
		{"create", create, `deployment \"checkout\": its pods would be admitted with runtime class \"gvisor\"`},
		{"update-template-unchanged", scale, "the pod template is unchanged; not re-decided"},
		{"update-template-changed", restart, `deployment \"checkout\": its pods would be admitted with runtime class \"gvisor\"`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if rec := serveOnce(b, validate, bc.body); !bytes.Contains(rec.Body.Bytes(), []byte(`"allowed":true`)) || !bytes.Contains(rec.Body.Bytes(), []byte(bc.message)) {
				b.Fatalf("answer %s, want allowed with %q", rec.Body, bc.message)
			}
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for b.Loop() {
				serveOnce(b, validate, bc.body)
			}
		})
	}
}

// BenchmarkMutateHandlerDecisionLog is BenchmarkMutateHandler/same-template with the decision
// log on, as serve runs by default: every admission is an injection (served by the answer
// memo), so each one writes a decision record through controller-runtime's zap logger (JSON,
// to io.Discard here). The difference to BenchmarkMutateHandler/same-template is what a
// decision record costs; with the level above info it is the level check alone.
func BenchmarkMutateHandlerDecisionLog(b *testing.B) {
	body := readReview(b, "untrusted-no-class.json")
	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err != nil {
		b.Fatal(err)
	}
	body = compact.Bytes()
	for _, level := range []zapcore.Level{zapcore.InfoLevel, zapcore.ErrorLevel} {
		b.Run("level="+level.String(), func(b *testing.B) {
			p := newPipeline(b, setup{})
			p.cfg.DecisionLog = zap.New(zap.WriteTo(io.Discard), zap.Level(level)).WithName("decision")
			h, _ := handlers(p)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				serveOnce(b, h, body)
			}
		})
	}
}
