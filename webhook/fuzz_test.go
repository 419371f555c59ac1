package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
)

// FuzzAdmissionReview sends arbitrary bytes as the HTTP body to both handlers exactly as serve
// registers them (NewHandler: the single-pass decoder, the pipeline; a panic would come back as
// a recovered 500 and fails the target). Whatever the body, the answer is
// HTTP 200 with an AdmissionReview holding a response, or an HTTP error status; a response
// that is allowed is never a recovered panic, and a patch only ever sets the runtime class.
func FuzzAdmissionReview(f *testing.F) {
	entries, err := os.ReadDir(filepath.Join("testdata", "reviews"))
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		f.Add(readReview(f, e.Name()))
	}
	f.Add([]byte{})
	f.Add([]byte("null"))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x","kind":{"version":"v1","kind":"Pod"},"operation":"CREATE","namespace":"tenant-a","object":{"spec":{"runtimeClassName":""}}}}`))
	a := newPipeline(f, setup{})
	mutate, validate := handlers(a)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, h := range []struct {
			name string
			h    http.Handler
		}{{"mutate", mutate}, {"validate", validate}} {
			req := httptest.NewRequest(http.MethodPost, ValidatePath, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				if rec.Code < 400 {
					t.Fatalf("%s: HTTP %d", h.name, rec.Code)
				}
				continue
			}
			var review admissionv1.AdmissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &review); err != nil {
				t.Fatalf("%s: the answer is not an AdmissionReview: %v\n%s", h.name, err, rec.Body)
			}
			r := review.Response
			if r == nil || r.Result == nil {
				t.Fatalf("%s: no response or result: %s", h.name, rec.Body)
			}
			if strings.Contains(r.Result.Message, "[recovered]") {
				t.Fatalf("%s: a recovered panic: %s", h.name, r.Result.Message)
			}
			if r.Allowed != (r.Result.Code < 400) {
				t.Fatalf("%s: allowed=%v with code %d", h.name, r.Allowed, r.Result.Code)
			}
			if len(r.Patch) > 0 {
				var ops []map[string]any
				if err := json.Unmarshal(r.Patch, &ops); err != nil || len(ops) != 1 ||
					ops[0]["op"] != "add" || ops[0]["path"] != "/spec/runtimeClassName" || h.name != "mutate" {
					t.Fatalf("%s: unexpected patch %s", h.name, r.Patch)
				}
			}
		}
	})
}
