package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/runtimeguard/runtimeguard/webhook/cluster"
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
