package webhook

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// NewHandler serves one face of a Pipeline (Pipeline.Mutate or Pipeline.Validate) over HTTP,
// as serve registers it: the review is decoded in one pass, a panic becomes a 500 answer
// instead of a dropped connection, and the client has bodyReadTimeout to send the body.
func NewHandler(face admission.HandlerFunc) http.Handler {
	return bodyDeadline(&reviewHandler{webhook: &admission.Webhook{Handler: face, RecoverPanic: ptr.To(true)}})
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

// reviewHandler serves one face of the Pipeline over HTTP. It does what controller-runtime's
// admission.Webhook.ServeHTTP does (empty-body, size and content-type checks, and, through
// Webhook.Handle, panic recovery, UID echo and patch encoding) except the decoding: the
// apimachinery deserializer parses the body twice (kind sniffing, then decoding) and was most of
// the server's CPU on cache hits (docs/benchmarks.md), so the review is decoded here with
// encoding/json in one pass. Like controller-runtime it takes admission.k8s.io/v1 and v1beta1
// (same shape) and a review that names no version (read as v1), and answers in the version asked.
type reviewHandler struct {
	webhook *admission.Webhook
}

func (h *reviewHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, gvk, status, err := decodeReview(r)
	if err != nil {
		writeReview(w, admission.Errored(int32(status), err), admissionReviewKind)
		return
	}
	writeReview(w, h.webhook.Handle(r.Context(), req), gvk)
}

// decodeReview reads and decodes the AdmissionReview; errors say what was wrong with it, never
// what it held.
func decodeReview(r *http.Request) (admission.Request, schema.GroupVersionKind, int, error) {
	req, status, err := decodeReviewBody(r)
	if err != nil {
		return admission.Request{}, schema.GroupVersionKind{}, status, err
	}
	return req.request, req.gvk, http.StatusOK, nil
}

type decodedReview struct {
	request admission.Request
	gvk     schema.GroupVersionKind
}

func decodeReviewBody(r *http.Request) (decodedReview, int, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return decodedReview{}, http.StatusBadRequest, errors.New("request body is empty")
	}
	defer r.Body.Close()
	limited := &io.LimitedReader{R: r.Body, N: maxReviewBytes + 1}
	body, err := io.ReadAll(limited)
	if err != nil {
		return decodedReview{}, http.StatusBadRequest, fmt.Errorf("reading the request body: %w", err)
	}
	if int64(len(body)) > maxReviewBytes {
		return decodedReview{}, http.StatusRequestEntityTooLarge, fmt.Errorf("request entity is too large; limit is %d bytes", maxReviewBytes)
	}
	if len(body) == 0 { // over HTTP/2 an empty body is not http.NoBody
		return decodedReview{}, http.StatusBadRequest, errors.New("request body is empty")
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		return decodedReview{}, http.StatusBadRequest, fmt.Errorf("contentType=%s, expected application/json", ct)
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		return decodedReview{}, http.StatusBadRequest, fmt.Errorf("cannot decode the AdmissionReview: %s", jsonErrorText(err))
	}
	out := decodedReview{gvk: review.GroupVersionKind()}
	switch out.gvk {
	case admissionReviewKind, admissionReviewV1beta1Kind:
	case schema.GroupVersionKind{}:
		out.gvk = admissionReviewKind
	default:
		return decodedReview{}, http.StatusBadRequest, fmt.Errorf("the body is %s %s, want %s AdmissionReview",
			out.gvk.GroupVersion(), out.gvk.Kind, admissionv1.SchemeGroupVersion)
	}
	if review.Request != nil {
		out.request.AdmissionRequest = *review.Request
	}
	return out, http.StatusOK, nil
}

// jsonErrorText describes a decoding error by position and type only: encoding/json's messages
// can quote the offending value, and values must not reach responses or logs.
func jsonErrorText(err error) string {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax) && syntax.Error() == "unexpected end of JSON input":
		return "the JSON is truncated"
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON at byte %d: %s", syntax.Offset, syntax.Error())
	case errors.As(err, &typeErr):
		return fmt.Sprintf("field %q has the wrong type (%s, want %s)", typeErr.Field, typeErr.Value, typeErr.Type)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON is truncated"
	}
	return err.Error()
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
