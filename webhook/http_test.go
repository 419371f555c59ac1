package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// TestReviewHandlerAnswersLikeControllerRuntime runs review fixtures through both the
// single-pass reviewHandler serve uses and controller-runtime's admission.Webhook, and requires
// the same AdmissionReview back.
func TestReviewHandlerAnswersLikeControllerRuntime(t *testing.T) {
	a := newPipeline(t, setup{})
	for _, name := range []string{
		"untrusted-no-class.json", "financial-gvisor.json", "default-wasm.json", "kube-system-untrusted.json",
		"mirror-pod-untrusted.json", "pod-update.json", "untrusted-gvisor-reinvocation.json", "object-garbage.json",
		"object-missing.json", "warn-namespace-no-class.json", "deployment-create.json",
	} {
		t.Run(name, func(t *testing.T) {
			body := readReview(t, name)
			for _, face := range []struct {
				name string
				fn   admission.HandlerFunc
			}{{"mutate", a.Mutate}, {"validate", a.Validate}} {
				ours := serveBody(t, NewHandler(face.fn), body)
				theirs := serveBody(t, &admission.Webhook{Handler: face.fn, RecoverPanic: ptr.To(false)}, body)
				if !bytes.Equal(ours, theirs) {
					t.Errorf("%s: reviewHandler answered\n%s\ncontroller-runtime answered\n%s", face.name, ours, theirs)
				}
			}
		})
	}
}

func TestReviewHandlerRejectsWhatIsNotAnAdmissionReviewV1(t *testing.T) {
	a := newPipeline(t, setup{})
	for _, tc := range []struct {
		name, body, contentType, want string
		code                          int32
	}{
		{"empty body", "", "application/json", "request body is empty", 400},
		{"not JSON", "{nope", "application/json", "invalid JSON at byte", 400},
		{"truncated", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1"`, "application/json", "truncated", 400},
		{"wrong content type", `{}`, "text/plain", "contentType=text/plain, expected application/json", 400},
		{"v2", `{"apiVersion":"admission.k8s.io/v2","kind":"AdmissionReview","request":{"uid":"1"}}`, "application/json", "want admission.k8s.io/v1 AdmissionReview", 400},
		{"not a review", `{"apiVersion":"v1","kind":"Pod"}`, "application/json", "the body is v1 Pod", 400},
		{"oversized", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","x":"` + string(bytes.Repeat([]byte("a"), maxReviewBytes)) + `"}`, "application/json", "request entity is too large", 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got struct {
				Response struct {
					Allowed bool `json:"allowed"`
					Status  struct {
						Code    int32  `json:"code"`
						Message string `json:"message"`
					} `json:"status"`
				} `json:"response"`
			}
			req, _ := http.NewRequest(http.MethodPost, "/", bytes.NewBufferString(tc.body))
			if tc.body == "" {
				req.Body = http.NoBody
			}
			req.Header.Set("Content-Type", tc.contentType)
			rec := &recorder{header: http.Header{}}
			NewHandler(a.Mutate).ServeHTTP(rec, req)
			if err := json.Unmarshal(rec.body.Bytes(), &got); err != nil {
				t.Fatalf("answer is not JSON: %v: %s", err, rec.body.String())
			}
			if got.Response.Allowed || got.Response.Status.Code != tc.code || !bytes.Contains([]byte(got.Response.Status.Message), []byte(tc.want)) {
				t.Errorf("got allowed=%v code=%d message %q, want code %d and %q",
					got.Response.Allowed, got.Response.Status.Code, got.Response.Status.Message, tc.code, tc.want)
			}
		})
	}
}

type recorder struct {
	header http.Header
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(int)             {}

func serveBody(t *testing.T, h http.Handler, body []byte) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := &recorder{header: http.Header{}}
	h.ServeHTTP(rec, req)
	return rec.body.Bytes()
}

// BenchmarkHandlerDecoding compares serving the realistic ~8 KB review through reviewHandler and
// through controller-runtime's admission.Webhook (decisions cached in both).
func BenchmarkHandlerDecoding(b *testing.B) {
	a := newPipeline(b, setup{})
	body := readReview(b, "untrusted-no-class.json")
	for _, h := range []struct {
		name    string
		handler http.Handler
	}{
		{"reviewHandler", NewHandler(a.Mutate)},
		{"controller-runtime", &admission.Webhook{Handler: admission.HandlerFunc(a.Mutate), RecoverPanic: ptr.To(true)}},
	} {
		b.Run(h.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				serveOnce(b, h.handler, body)
			}
		})
	}
}
