package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// An answer encoded for a cached decision is reused only in the enforcement mode it was built
// for: a policy that does not read the namespace's runtimeguard.io/enforcement label keeps
// its decision when the label changes, but the answer must turn from a denial into a warning.
func TestAMemoizedAnswerFollowsTheEnforcementMode(t *testing.T) {
	a := newPipeline(t, setup{policy: map[string]string{
		"policy.rego": `package runtimeguard

decision := {"class": "", "deny": ["pod rejected: always"], "warn": [], "reasons": ["constant"]}
`,
		// The policy reads no label at all: every Pod of tenant-a shares one decision.
		"data.yaml": "config:\n  reads:\n    none: {}\n",
	}})
	_, validate := handlers(a)
	body := readReview(t, "untrusted-no-class.json")
	answer := func() *admissionv1.AdmissionResponse {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, ValidatePath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		validate.ServeHTTP(rec, req)
		var ar admissionv1.AdmissionReview
		if err := json.Unmarshal(rec.Body.Bytes(), &ar); err != nil || ar.Response == nil {
			t.Fatalf("answer %q: %v", rec.Body, err)
		}
		return ar.Response
	}
	for i := range 2 { // the second answer comes from the memo
		if r := answer(); r.Allowed {
			t.Fatalf("enforce, call %d: allowed, want the denial", i+1)
		}
	}
	a.cfg.View.UpsertNamespace(cluster.Namespace{Name: "tenant-a", Labels: map[string]string{EnforcementLabel: string(Warn)}})
	if r := answer(); !r.Allowed || len(r.Warnings) == 0 {
		t.Errorf("warn mode: allowed=%v warnings=%q, want allowed with the denial as a warning", r.Allowed, r.Warnings)
	}
}

// Pods bound to lookalike nodes share a decision (policy.NodePlaceholder), but each answer must
// name its own node, also those worded in Go (a named class the node does not run) and those
// served from the answer memo.
func TestAnswersForPodsOnLookalikeNodesNameTheirNode(t *testing.T) {
	a := newPipeline(t, setup{clusterFile: "testdata/cluster-pools.yaml"})
	_, validate := handlers(a)
	answer := func(h http.Handler, ns string, spec map[string]any) *admissionv1.AdmissionResponse {
		t.Helper()
		ar := admissionv1.AdmissionReview{Request: &admissionv1.AdmissionRequest{
			UID: "u", Kind: podKind, Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespace: ns, Operation: admissionv1.Create,
		}}
		ar.Request.Object.Raw = podJSON(t, ns, spec)
		ar.SetGroupVersionKind(admissionReviewKind)
		body, err := json.Marshal(ar)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, ValidatePath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var out admissionv1.AdmissionReview
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
			t.Fatalf("answer %q: %v", rec.Body, err)
		}
		return out.Response
	}
	for _, tc := range []struct {
		name string
		h    http.Handler
		ns   string
		spec func(node string) map[string]any
	}{
		{"validate, a named class the node does not run (worded in Go)", validate, "default", func(node string) map[string]any {
			return map[string]any{"runtimeClassName": "gvisor", "nodeName": node}
		}},
		{"validate, an untrusted pod on a node without a sandbox (worded in Rego)", validate, "tenant-a", func(node string) map[string]any {
			return map[string]any{"nodeName": node}
		}},
		{"validate, a DaemonSet pod pinned to such a node", validate, "tenant-a", func(node string) map[string]any {
			return map[string]any{"affinity": pinnedTo(node)}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 2 { // the second round may come from the memo
				for _, node := range []string{"general-1", "general-2"} {
					r := answer(tc.h, tc.ns, tc.spec(node))
					if r.Allowed || r.Result == nil {
						t.Fatalf("%s: allowed, want a denial", node)
					}
					other := map[string]string{"general-1": "general-2", "general-2": "general-1"}[node]
					if !strings.Contains(r.Result.Message, node) || strings.Contains(r.Result.Message, other) || strings.Contains(r.Result.Message, policy.NodePlaceholder) {
						t.Errorf("%s: %q, want it to name %s only", node, r.Result.Message, node)
					}
				}
			}
		})
	}
}
