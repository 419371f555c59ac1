package webhook

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Webhook paths, fixed: the Helm chart and the e2e suite register these.
const (
	MutatePath   = "/mutate-v1-pod"
	ValidatePath = "/validate-v1-pod"
)

// TLSOptions are the webhook's TLS settings: TLS 1.2 at least, and only AEAD ciphers with
// forward secrecy for 1.2 (1.3 suites are not configurable and all fine).
func TLSOptions(c *tls.Config) {
	c.MinVersion = tls.VersionTLS12
	c.CipherSuites = []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

// NewHandler serves an admission.HandlerFunc over HTTP the way runtimeguard's own handlers are
// served (one-pass decoding, panic recovery, the body deadline), with request.object kept raw for
// the face to decode. The benchmarks' hand-coded Go webhook uses it; serve registers
// Pipeline.MutateHandler and Pipeline.ValidateHandler instead.
func NewHandler(face admission.HandlerFunc) http.Handler {
	return bodyDeadline(&funcHandler{webhook: &admission.Webhook{Handler: face, RecoverPanic: ptr.To(true)}})
}

// bodyReadTimeout bounds how long a client may take to send a request body. controller-runtime's
// server bounds headers (32 s) and body size (7 MiB) but not the body's pace, so a slow client
// could hold a connection and a goroutine for ever; the API server sends a review at once.
const bodyReadTimeout = 10 * time.Second

func bodyDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyReadTimeout))
		next.ServeHTTP(w, r)
	})
}

// maxReviewBytes is the body size limit, controller-runtime's: an AdmissionReview holds at most
// two objects of etcd's 1.5 MiB limit plus metadata.
const maxReviewBytes = 7 << 20

var (
	admissionReviewKind        = admissionv1.SchemeGroupVersion.WithKind("AdmissionReview")
	admissionReviewV1beta1Kind = schema.GroupVersionKind{Group: "admission.k8s.io", Version: "v1beta1", Kind: "AdmissionReview"}
)

// funcHandler serves an admission.HandlerFunc: the review is read by the same one-pass reader
// as the pipeline's handlers, then controller-runtime's admission.Webhook.Handle adds panic
// recovery, the UID echo and patch encoding.
type funcHandler struct {
	webhook *admission.Webhook
}

func (h *funcHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rd := readers.Get().(*reader)
	defer rd.release()
	in, ok := rd.read(w, r, false)
	if !ok {
		return
	}
	writeReview(w, h.webhook.Handle(r.Context(), in.req), in.gvk)
}

// writeReview answers with an AdmissionReview; the HTTP status is always 200, the verdict is in
// response.status.code, as the API server expects.
func writeReview(w http.ResponseWriter, resp admission.Response, gvk schema.GroupVersionKind) {
	review := admissionv1.AdmissionReview{Response: &resp.AdmissionResponse}
	review.SetGroupVersionKind(gvk)
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(review); err != nil {
		// The connection is gone or the response unencodable: nothing useful can be sent.
		return
	}
}
