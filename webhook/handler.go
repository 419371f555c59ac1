package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"unicode/utf8"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// MutateHandler serves Mutate over HTTP: what serve registers at MutatePath.
func (p *Pipeline) MutateHandler() http.Handler {
	return bodyDeadline(&pipelineHandler{p: p, face: mutateFace})
}

// ValidateHandler serves Validate over HTTP: what serve registers at ValidatePath.
func (p *Pipeline) ValidateHandler() http.Handler {
	return bodyDeadline(&pipelineHandler{p: p, face: validateFace})
}

type face uint8

const (
	mutateFace face = iota
	validateFace
	// recheckFace validates as validateFace does, and also reads what the audit words its
	// findings with (recheck.go: the requirements and the acceptable classes).
	recheckFace
)

// fields is what of the decision the face reads.
func (f face) fields() policy.Fields {
	switch f {
	case mutateFace:
		return policy.MutateFields
	case validateFace:
		return policy.ValidateFields
	}
	return policy.AllFields
}

// pipelineHandler is the request path: the review is read in one pass with the Pod decoded in
// place (review.go), taken through the pipeline, and answered. An answer that follows from a
// cached decision is encoded once and then only has its uid spliced in (answerMemo).
type pipelineHandler struct {
	p    *Pipeline
	face face
}

func (h *pipelineHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rd := readers.Get().(*reader)
	defer rd.release()
	gvk := admissionReviewKind
	var uid types.UID
	// A panic is answered 500 instead of dropping the connection, as controller-runtime's
	// admission.Webhook does with RecoverPanic.
	defer func() {
		if v := recover(); v != nil {
			log.FromContext(r.Context()).Error(fmt.Errorf("%v", v), "panic while answering an admission review (recovered)")
			resp := admission.Errored(http.StatusInternalServerError, fmt.Errorf("panic: %v [recovered]", v))
			resp.UID = uid
			writeReview(w, resp, gvk)
		}
	}()
	in, ok := rd.read(w, r, true)
	if !ok {
		return
	}
	gvk, uid = in.gvk, in.req.UID
	rv := h.p.run(r.Context(), in.req, in.pod, false, h.face)
	key := memoKey{face: h.face, mode: rv.mode, v1beta1: gvk == admissionReviewV1beta1Kind}
	if rv.answer == nil && rv.decision != nil && !rv.decision.PerNode() {
		key.decision = rv.decision
		key.node = policy.PinnedNode(rv.pod)
		if a := h.p.answers.get(key); a != nil {
			h.p.observe(h.face.String(), rv, a.record)
			a.write(w, uid)
			return
		}
	}
	var resp admission.Response
	if h.face == mutateFace {
		resp = h.p.mutate(rv)
	} else {
		resp = h.p.validate(rv)
	}
	if err := resp.Complete(in.req); err != nil {
		resp = admission.Errored(http.StatusInternalServerError, fmt.Errorf("cannot encode the answer: %w", err))
		resp.UID = uid
	}
	if key.decision == nil {
		writeReview(w, resp, gvk)
		return
	}
	a, err := encodeAnswer(resp, gvk)
	if err != nil {
		writeReview(w, resp, gvk)
		return
	}
	a.record = h.p.newRecord(a.outcome, resp, rv)
	h.p.answers.put(key, a)
	a.write(w, uid)
}

func (f face) String() string {
	if f == mutateFace {
		return "mutate"
	}
	return "validate"
}

// memoKey names one encoded answer: what an answer follows from is in the decision's cache key
// (the Pod's class, its placement, the labels the policy reads) or generation (policy, cluster
// snapshot), plus the enforcement mode (a namespace label the policy need not read), which face
// answered and in which version, and the node the Pod is bound or pinned to: Pods on lookalike
// nodes share a decision (policy.NodePlaceholder), but answers worded in Go name the node.
type memoKey struct {
	decision *policy.Decision
	node     string
	face     face
	mode     Enforcement
	v1beta1  bool
}

// maxMemoAnswers bounds the memo; it is cleared when full, like the decision cache, whose
// decisions it keeps alive until then.
const maxMemoAnswers = 2048

type answerMemo struct {
	mu sync.RWMutex
	m  map[memoKey]*encodedAnswer
}

func (m *answerMemo) get(k memoKey) *encodedAnswer {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.m[k]
}

func (m *answerMemo) put(k memoKey, a *encodedAnswer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil || len(m.m) >= maxMemoAnswers {
		m.m = make(map[memoKey]*encodedAnswer)
	}
	m.m[k] = a
}

// encodedAnswer is an encoded AdmissionReview answer around its uid.
type encodedAnswer struct {
	prefix, suffix []byte
	outcome        string
	// record is counted and logged again for every request the answer is served to.
	record record
}

// uidPlaceholder stands for the uid while an answer is encoded; it needs no JSON escaping.
const uidPlaceholder = "runtimeguard-uid-7c1e0f3a"

// encodeAnswer encodes resp as writeReview would, with the uid left out for write to splice in.
func encodeAnswer(resp admission.Response, gvk schema.GroupVersionKind) (*encodedAnswer, error) {
	resp.UID = uidPlaceholder
	review := admissionv1.AdmissionReview{Response: &resp.AdmissionResponse}
	review.SetGroupVersionKind(gvk)
	b, err := json.Marshal(review)
	if err != nil {
		return nil, err
	}
	i := bytes.Index(b, []byte(uidPlaceholder))
	if i < 0 || bytes.Count(b, []byte(uidPlaceholder)) != 1 {
		return nil, fmt.Errorf("the encoded answer does not hold its uid exactly once")
	}
	return &encodedAnswer{
		prefix:  b[:i],
		suffix:  append(b[i+len(uidPlaceholder):], '\n'),
		outcome: resp.AuditAnnotations["decision"],
	}, nil
}

func (a *encodedAnswer) write(w http.ResponseWriter, uid types.UID) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(a.prefix)
	if plainUID(uid) {
		_, _ = w.Write([]byte(uid))
	} else {
		quoted, _ := json.Marshal(string(uid))
		_, _ = w.Write(quoted[1 : len(quoted)-1])
	}
	_, _ = w.Write(a.suffix)
}

// plainUID says whether uid can be written into a JSON string as it is (the API server's uids
// are UUIDs); anything else is escaped the way encoding/json would.
func plainUID(uid types.UID) bool {
	for i := 0; i < len(uid); i++ {
		c := uid[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}
