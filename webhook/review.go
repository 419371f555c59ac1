package webhook

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// incoming is one AdmissionReview as read off the wire.
type incoming struct {
	// gvk is the review's own version, which the answer repeats.
	gvk schema.GroupVersionKind
	req admission.Request
	// pod is request.object decoded in place when the review is a Pod CREATE and the reader
	// was asked to; req.Object.Raw then stays empty.
	pod decodedPod
	// hasRequest says whether the review held a request at all.
	hasRequest bool
}

// decodedPod is a Pod decoded with its review, or why it could not be.
type decodedPod struct {
	pod *policy.Pod
	err error
}

// reader reads AdmissionReviews in one pass over the body with a streaming decoder: the
// envelope fields the pipeline uses are read, request.object is decoded straight into the
// policy's Pod (when it is a Pod), and everything else (userInfo, oldObject, options, the
// Pod's env, probes, volumes...) is validated and skipped (a workload's oldObject is kept raw) without being built. readers are
// pooled: a decoder and its buffers are reused across requests.
type reader struct {
	body bytes.Buffer
	src  bytes.Reader
	dec  jsontext.Decoder
}

var readers = sync.Pool{New: func() any { return new(reader) }}

// readBody reads the request body under the size limit, checking what controller-runtime's
// webhook checks; the status says which HTTP code the answer carries.
func (rd *reader) readBody(r *http.Request) (int, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return http.StatusBadRequest, errors.New("request body is empty")
	}
	defer r.Body.Close()
	rd.body.Reset()
	if _, err := rd.body.ReadFrom(io.LimitReader(r.Body, maxReviewBytes+1)); err != nil {
		return http.StatusBadRequest, fmt.Errorf("reading the request body: %w", err)
	}
	if rd.body.Len() > maxReviewBytes {
		return http.StatusRequestEntityTooLarge, fmt.Errorf("request entity is too large; limit is %d bytes", maxReviewBytes)
	}
	if rd.body.Len() == 0 { // over HTTP/2 an empty body is not http.NoBody
		return http.StatusBadRequest, errors.New("request body is empty")
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		return http.StatusBadRequest, fmt.Errorf("contentType=%s, expected application/json", ct)
	}
	return http.StatusOK, nil
}

// read reads and decodes r's review (decodePod: see decode); when it cannot, it answers w
// with the error itself, in v1, and returns false.
func (rd *reader) read(w http.ResponseWriter, r *http.Request, decodePod bool) (incoming, bool) {
	if status, err := rd.readBody(r); err != nil {
		writeReview(w, admission.Errored(int32(status), err), admissionReviewKind)
		return incoming{}, false
	}
	in, err := rd.decode(decodePod)
	if err != nil {
		writeReview(w, admission.Errored(http.StatusBadRequest, err), admissionReviewKind)
		return incoming{}, false
	}
	return in, true
}

// release returns rd to the pool unless a huge body grew its buffer: those are rare, and
// keeping megabytes per pooled reader would pin them.
func (rd *reader) release() {
	if rd.body.Cap() > 256<<10 {
		return
	}
	readers.Put(rd)
}

// decode reads the body as an AdmissionReview; decodePod says whether a Pod object is decoded
// in place (the pipeline's handlers) or kept raw (NewHandler's faces decode it themselves).
func (rd *reader) decode(decodePod bool) (incoming, error) {
	rd.src.Reset(rd.body.Bytes())
	rd.dec.Reset(&rd.src, policy.DecodeOptions)
	in, err := readReviewDoc(&rd.dec, decodePod)
	if err != nil {
		return incoming{}, fmt.Errorf("cannot decode the AdmissionReview: %s", policy.DecodeErrorText(err))
	}
	switch in.gvk {
	case admissionReviewKind, admissionReviewV1beta1Kind:
	case schema.GroupVersionKind{}:
		in.gvk = admissionReviewKind
	default:
		return incoming{}, fmt.Errorf("the body is %s %s, want %s AdmissionReview",
			in.gvk.GroupVersion(), in.gvk.Kind, admissionv1.SchemeGroupVersion)
	}
	return in, nil
}

// readReviewDoc walks the review's top level: apiVersion, kind and request; other members are
// skipped. Duplicate names keep their last value (policy.DecodeOptions).
func readReviewDoc(dec *jsontext.Decoder, decodePod bool) (incoming, error) {
	var in incoming
	if err := openObject(dec, "object"); err != nil {
		return in, err
	}
	var apiVersion, kind string
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return in, err
		}
		switch name.String() {
		case "apiVersion":
			err = json.UnmarshalDecode(dec, &apiVersion)
		case "kind":
			err = json.UnmarshalDecode(dec, &kind)
		case "request":
			if dec.PeekKind() == 'n' {
				_, err = dec.ReadToken()
				in.hasRequest, in.req, in.pod = false, admission.Request{}, decodedPod{}
				break
			}
			in.hasRequest = true
			in.req, in.pod = admission.Request{}, decodedPod{}
			err = readRequest(dec, &in, decodePod)
		default:
			err = dec.SkipValue()
		}
		if err != nil {
			return in, err
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return in, err
	}
	if err := atEnd(dec); err != nil {
		return in, err
	}
	in.gvk = schema.FromAPIVersionAndKind(apiVersion, kind)
	return in, nil
}

// readRequest reads request: the fields the pipeline uses, and the object. The API server writes
// kind before object, so a Pod is decoded where it stands; an object read before its kind is
// kept raw and decoded once the kind is known.
func readRequest(dec *jsontext.Decoder, in *incoming, decodePod bool) error {
	if err := openObject(dec, "object"); err != nil {
		return err
	}
	r := &in.req.AdmissionRequest
	kindSeen := false // the API server writes uid, kind, resource, subResource, ..., operation, object
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return err
		}
		switch name.String() {
		case "uid":
			err = json.UnmarshalDecode(dec, &r.UID)
		case "kind":
			err = json.UnmarshalDecode(dec, &r.Kind)
			kindSeen = true
		case "resource":
			err = json.UnmarshalDecode(dec, &r.Resource)
		case "subResource":
			err = json.UnmarshalDecode(dec, &r.SubResource)
		case "name":
			err = json.UnmarshalDecode(dec, &r.Name)
		case "namespace":
			err = json.UnmarshalDecode(dec, &r.Namespace)
		case "operation":
			err = json.UnmarshalDecode(dec, &r.Operation)
		case "object":
			// Decoded in place only when the pipeline will decide it (a Pod CREATE): what it
			// ignores is not decoded, so it cannot fail to decode.
			if decodePod && kindSeen && r.Kind == podKind && r.Operation == admissionv1.Create && r.SubResource == "" && dec.PeekKind() != 'n' {
				r.Object.Raw = nil
				in.pod, err = decodePodInPlace(dec)
				break
			}
			var raw jsontext.Value
			if raw, err = dec.ReadValue(); err == nil {
				in.pod = decodedPod{}
				r.Object.Raw = bytes.Clone(raw)
				if bytes.Equal(raw, []byte("null")) {
					r.Object.Raw = nil
				}
			}
		case "oldObject":
			// Kept only for workloads, whose UPDATEs are compared template to template; a Pod
			// review never reads it. (The API server writes kind first.)
			if kindSeen && !isWorkload(r.Kind) {
				err = dec.SkipValue()
				break
			}
			var raw jsontext.Value
			if raw, err = dec.ReadValue(); err == nil && !bytes.Equal(raw, []byte("null")) {
				r.OldObject.Raw = bytes.Clone(raw)
			}
		default:
			err = dec.SkipValue()
		}
		if err != nil {
			return err
		}
	}
	if r.OldObject.Raw != nil && !isWorkload(r.Kind) {
		r.OldObject.Raw = nil
	}
	_, err := dec.ReadToken()
	return err
}

// decodePodInPlace decodes the Pod that is the decoder's next value. A Pod of the wrong shape
// is the pipeline's to answer (with the uid and audit annotations), so the rest of it is read
// past and the envelope read on; only broken JSON ends the read.
func decodePodInPlace(dec *jsontext.Decoder) (decodedPod, error) {
	depth, base := dec.StackDepth(), dec.StackPointer()
	pod, err := policy.DecodePodFrom(dec)
	if err == nil {
		return decodedPod{pod: pod}, nil
	}
	var semantic *json.SemanticError
	if !errors.As(err, &semantic) {
		return decodedPod{}, err
	}
	for dec.StackDepth() > depth {
		if _, err := dec.ReadToken(); err != nil {
			return decodedPod{}, err
		}
	}
	// Say where in the Pod, as kubectl would (spec.containers), not where in the review.
	semantic.JSONPointer = jsontext.Pointer(strings.TrimPrefix(string(semantic.JSONPointer), string(base)))
	return decodedPod{err: semantic}, nil
}

// openObject reads the '{' that starts what; null and other types are errors naming the field.
func openObject(dec *jsontext.Decoder, what string) error {
	if k := dec.PeekKind(); k != '{' {
		if k == 0 { // empty or broken input: let the tokenizer say what is wrong
			_, err := dec.ReadToken()
			return err
		}
		return &policy.WrongTypeError{Pointer: dec.StackPointer(), Got: k, Want: what}
	}
	_, err := dec.ReadToken()
	return err
}

// atEnd refuses data after the review, as encoding/json does.
func atEnd(dec *jsontext.Decoder) error {
	if _, err := dec.ReadToken(); err != io.EOF {
		if err == nil {
			return &jsontext.SyntacticError{ByteOffset: dec.InputOffset(), Err: errors.New("invalid data after the top-level value")}
		}
		return err
	}
	return nil
}
