package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/runtimeguard/runtimeguard/e2e/bench/internal/baseline"
	"github.com/runtimeguard/runtimeguard/e2e/bench/internal/fixtures"
	"github.com/runtimeguard/runtimeguard/e2e/bench/internal/godecide"
	"github.com/runtimeguard/runtimeguard/e2e/bench/review"
	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

// TestAnswersLikeTheBaseline posts the same reviews to the minimal webhook and to the
// framework-served baseline (webhook.NewHandler around baseline.Handler, as bench-baseline
// serves it) on the same cluster view, and requires byte-identical answers on both paths:
// allowed, status code and message, patch, warnings, audit annotations.
func TestAnswersLikeTheBaseline(t *testing.T) {
	p, err := godecide.Load()
	if err != nil {
		t.Fatal(err)
	}
	view := fixtures.Generate(fixtures.Size{Nodes: 30, Classes: 10, Namespaces: 20}).View()
	view.UpsertNamespace(cluster.Namespace{Name: "trying", Labels: map[string]string{
		"runtimeguard.io/tenancy": "untrusted", webhook.EnforcementLabel: string(webhook.Warn)}})
	view.UpsertNamespace(cluster.Namespace{Name: "ignored", Labels: map[string]string{webhook.IgnoreLabel: "true"}})
	bl := baseline.NewHandler(p, view, "runtimeguard-system", nil)
	theirs := map[string]http.Handler{webhook.MutatePath: webhook.NewHandler(bl.Mutate), webhook.ValidatePath: webhook.NewHandler(bl.Validate)}
	ours := newMux(p, view, "runtimeguard-system")

	edit := func(f func(*corev1.Pod)) *corev1.Pod { pod := review.Pod(); f(pod); return pod }
	class := func(name string) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Spec.RuntimeClassName = ptr.To(name) }
	}
	cases := []struct {
		name string
		pod  *corev1.Pod
		ns   string
		// want is the outcome on [mutate, validate], so the cases cover what they claim.
		want [2]string
	}{
		{"the benchmark Pod in the untrusted namespace", review.Pod(), review.Namespace, [2]string{"mutated", "denied"}},
		{"the benchmark Pod naming gvisor", edit(class("gvisor")), review.Namespace, [2]string{"allowed", "allowed"}},
		{"a Pod naming runc where isolation is required", edit(class("runc")), review.Namespace, [2]string{"allowed", "denied"}},
		{"a Pod naming a class that does not exist", edit(class("missing")), review.Namespace, [2]string{"allowed", "denied"}},
		{"a Pod in a namespace without requirements", review.Pod(), "default", [2]string{"allowed", "allowed"}},
		{"a Pod in warn mode", review.Pod(), "trying", [2]string{"allowed", "allowed"}},
		{"a Pod in an ignored namespace", review.Pod(), "ignored", [2]string{"allowed", "allowed"}},
		{"a Pod in kube-system", review.Pod(), "kube-system", [2]string{"allowed", "allowed"}},
		{"a GPU Pod", edit(func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Limits["nvidia.com/gpu"] = resource.MustParse("1")
		}), review.Namespace, [2]string{"mutated", "denied"}},
		{"a Pod with an unknown runtimeguard.io label", edit(func(p *corev1.Pod) {
			p.Labels["runtimeguard.io/workload"] = "Untrusted"
		}), "default", [2]string{"allowed", "allowed"}},
		{"a Pod bound to a general node", edit(func(p *corev1.Pod) { p.Spec.NodeName = "node-00004" }), review.Namespace, [2]string{"allowed", "denied"}},
		{"a Pod pinned to a Kata node", edit(func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"node-00011"}}}}}}}}
		}), review.Namespace, [2]string{"mutated", "denied"}},
		{"a Pod with an invalid nodeSelector key", edit(func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{}}}
		}), review.Namespace, [2]string{"denied", "denied"}},
	}
	for _, c := range cases {
		c.pod.Namespace = c.ns
		raw, err := json.Marshal(c.pod)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
			Request: &admissionv1.AdmissionRequest{UID: "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
				Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespace: c.ns, Operation: admissionv1.Create,
				Object: runtime.RawExtension{Raw: raw}},
		})
		for k, path := range []string{webhook.MutatePath, webhook.ValidatePath} {
			got, want := post(t, ours, path, body), post(t, theirs[path], path, body)
			var a struct {
				Response admissionv1.AdmissionResponse `json:"response"`
			}
			if err := json.Unmarshal(got, &a); err != nil {
				t.Fatalf("%s %s: %v\n%s", c.name, path, err, got)
			}
			if outcome := a.Response.AuditAnnotations["decision"]; outcome != c.want[k] {
				t.Errorf("%s %s: decision %q, want %q: %s", c.name, path, outcome, c.want[k], got)
			}
			if c.ns == "kube-system" { // the exemption's wording names the webhook
				continue
			}
			if !bytes.Equal(got, bytes.TrimSuffix(want, []byte("\n"))) {
				t.Errorf("%s %s:\n minimal:  %s\n baseline: %s", c.name, path, got, want)
			}
		}
	}
}

func post(t *testing.T, h http.Handler, path string, body []byte) []byte {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("%s: HTTP %d: %s", path, rec.Code, rec.Body)
	}
	return rec.Body.Bytes()
}
