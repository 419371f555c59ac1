package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// WorkloadReview says what the validating webhook does with workloads whose Pods the policy
// would reject (--workload-review).
type WorkloadReview string

const (
	// WorkloadEnforce denies the workload, so `kubectl apply` fails instead of its controller.
	WorkloadEnforce WorkloadReview = "enforce"
	// WorkloadWarn admits it with the denials as warnings.
	WorkloadWarn WorkloadReview = "warn"
	// WorkloadOff admits workloads without a decision; their Pods are still reviewed.
	WorkloadOff WorkloadReview = "off"
)

// workload is a kind whose objects hold a Pod template.
type workload struct {
	// name is how answers call it: deployment "ledger".
	name string
	// template is the path of the Pod template in the object.
	template []string
}

var (
	podTemplatePath = []string{"spec", "template"}
	// workloads are the kinds the validating webhook reviews by their Pod template.
	workloads = map[metav1.GroupVersionKind]workload{
		{Group: "apps", Version: "v1", Kind: "Deployment"}:  {"deployment", podTemplatePath},
		{Group: "apps", Version: "v1", Kind: "StatefulSet"}: {"statefulset", podTemplatePath},
		{Group: "apps", Version: "v1", Kind: "DaemonSet"}:   {"daemonset", podTemplatePath},
		{Group: "apps", Version: "v1", Kind: "ReplicaSet"}:  {"replicaset", podTemplatePath},
		{Version: "v1", Kind: "ReplicationController"}:      {"replicationcontroller", podTemplatePath},
		{Group: "batch", Version: "v1", Kind: "Job"}:        {"job", podTemplatePath},
		{Group: "batch", Version: "v1", Kind: "CronJob"}:    {"cronjob", []string{"spec", "jobTemplate", "spec", "template"}},
	}
)

func isWorkload(k metav1.GroupVersionKind) bool {
	_, ok := workloads[k]
	return ok
}

// runWorkload reviews a workload by its Pod template: the template is decided as the Pods the
// controller will create, through the Pod steps, mutation simulated (the mutating webhook will
// inject the class into the Pods, never into the template) and then validated.
func (p *Pipeline) runWorkload(ctx context.Context, req admission.Request, f face) *review {
	r := &review{req: req, mode: p.cfg.Enforcement}
	answer := func(a admission.Response) *review {
		r.answer = &a
		return r
	}
	switch {
	case req.SubResource != "":
		return answer(admission.Allowed("runtimeguard ignores subresources"))
	case req.Operation != admissionv1.Create && req.Operation != admissionv1.Update:
		return answer(admission.Allowed("runtimeguard reviews only CREATE and UPDATE of workloads"))
	case f == mutateFace:
		return answer(admission.Allowed("runtimeguard never mutates workloads; the runtime class is injected into their pods"))
	case p.cfg.WorkloadReview == WorkloadOff:
		return answer(admission.Allowed("workload review is off (--workload-review=off); their pods are reviewed"))
	}
	what, first, early := p.decideTemplate(ctx, req, f)
	if early != nil {
		return early
	}
	r.mode = first.mode
	// The Pod as it would run (class injected): what eval shows, counts and logs for the workload.
	r.pod = first.pod
	if first.answer != nil {
		a := *first.answer
		if !a.Allowed && a.Result != nil {
			a.Result.Message = what + ": " + a.Result.Message
		}
		return answer(a)
	}
	denials, warnings := first.check()
	for i, w := range warnings {
		warnings[i] = what + ": " + w
	}
	var resp admission.Response
	reasons := make([]string, len(denials))
	for i, d := range denials {
		reasons[i] = strings.TrimPrefix(d, "pod rejected: ")
	}
	denied := what + ": its pods would be rejected: " + strings.Join(reasons, "; and ")
	switch {
	case len(denials) == 0:
		msg := "its pods would be admitted"
		if c := first.pod.RuntimeClassName(); c != "" {
			msg = fmt.Sprintf("its pods would be admitted with runtime class %q", c)
		}
		resp = admission.Allowed(what + ": " + msg)
	case r.mode == Warn || p.cfg.WorkloadReview == WorkloadWarn:
		resp = admission.Allowed("warn mode")
		warnings = append(warnings, "runtimeguard warn mode, would deny: "+denied)
	default:
		resp = admission.Denied(denied)
	}
	if len(warnings) > 0 {
		resp = resp.WithWarnings(warnings...)
	}
	if first.decision.Class != "" {
		resp.AuditAnnotations = map[string]string{"class": first.decision.Class}
	}
	return answer(resp)
}

// decideTemplate decides a workload's Pod template as the Pods its controller will create: through
// the Pod steps, with the mutating webhook's injection simulated (into the Pods, never into the
// template), then validated. It returns what the answers call the workload (deployment "ledger")
// and the validating run; early is set instead when the workload is answered without a decision
// (exempt, unreadable). Admission and the audit (recheck.go) share it; f is the validating face
// the caller answers for.
func (p *Pipeline) decideTemplate(ctx context.Context, req admission.Request, f face) (what string, first, early *review) {
	w := workloads[req.Kind]
	r := &review{req: req, mode: p.cfg.Enforcement}
	answer := func(a admission.Response) *review {
		r.answer = &a
		return r
	}
	if r.exempt = p.exemptNamespace(req.Namespace); r.exempt != "" {
		return "", nil, r.exemptAnswer()
	}
	name := workloadName(req)
	what = fmt.Sprintf("%s %q", w.name, name)
	bad := func(err error) (string, *review, *review) {
		return what, nil, answer(admission.Errored(http.StatusBadRequest, fmt.Errorf("%s: %w", what, err)))
	}
	tmpl, err := template(req.Object.Raw, w.template)
	if err != nil {
		return bad(fmt.Errorf("cannot read request.object: %w", err))
	}
	if req.Operation == admissionv1.Update {
		// An UPDATE that leaves the template alone (scale, image-free label edits, status)
		// changes nothing the Pods are decided on.
		if old, err := template(req.OldObject.Raw, w.template); err == nil && sameJSON(old, tmpl) {
			return what, nil, answer(admission.Allowed("the pod template is unchanged; not re-decided"))
		}
	}
	pod, err := policy.DecodePod(tmpl)
	if err != nil {
		return bad(fmt.Errorf("cannot decode the pod template in %s: %w", strings.Join(w.template, "."), err))
	}
	// A template has no apiVersion or kind (decodePod would blame request.kind), and its Pods
	// are created in the workload's namespace whatever its metadata says.
	pod.APIVersion, pod.Kind = "", ""
	pod.Metadata.Namespace = req.Namespace
	podReq := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       req.UID,
		Kind:      podKind,
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: req.Namespace,
		Name:      name,
		Operation: admissionv1.Create,
		UserInfo:  req.UserInfo,
	}}
	first = p.run(ctx, podReq, decodedPod{pod: pod}, false, f)
	if first.answer == nil && first.pod.RuntimeClassName() == "" && first.decision.Class != "" && first.mode != Warn {
		// What the mutating webhook will do to each Pod; the template itself is left alone.
		class := first.decision.Class
		first.pod.Spec.RuntimeClassName = &class
		first = p.run(ctx, podReq, decodedPod{pod: first.pod}, false, f)
	}
	return what, first, nil
}

// workloadName is the request's name, or for a CREATE with generateName, the prefix.
func workloadName(req admission.Request) string {
	if req.Name != "" {
		return req.Name
	}
	for _, field := range []string{"name", "generateName"} {
		if v, err := member(req.Object.Raw, []string{"metadata", field}); err == nil {
			var s string
			if jsontext.Value(v).Kind() == '"' {
				if tok, err := jsontext.NewDecoder(bytes.NewReader(v)).ReadToken(); err == nil {
					s = tok.String()
				}
			}
			if s != "" {
				return s
			}
		}
	}
	return ""
}

// member returns the JSON value at path in the object raw, reading only what leads to it.
// A missing or null member is an error naming the field, as is one of the wrong type.
func member(raw []byte, path []string) (jsontext.Value, error) {
	if len(raw) == 0 {
		return nil, errors.New("the AdmissionReview holds no object")
	}
	dec := jsontext.NewDecoder(bytes.NewReader(raw), policy.DecodeOptions)
	for i, name := range path {
		field := strings.Join(path[:i], ".")
		switch k := dec.PeekKind(); k {
		case '{':
		case 'n':
			return nil, fmt.Errorf("%s is missing", strings.Join(path, "."))
		case 0:
			_, err := dec.ReadToken()
			return nil, err
		default:
			if field == "" {
				field = "the object"
			}
			return nil, fmt.Errorf("%s is a JSON %s, want an object", field, kindName(k))
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, err
		}
		found := false
		for !found && dec.PeekKind() != '}' {
			tok, err := dec.ReadToken()
			if err != nil {
				return nil, err
			}
			if found = tok.String() == name; !found {
				if err := dec.SkipValue(); err != nil {
					return nil, err
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("%s is missing", strings.Join(path, "."))
		}
	}
	v, err := dec.ReadValue()
	if err != nil {
		return nil, err
	}
	if v.Kind() == 'n' {
		return nil, fmt.Errorf("%s is missing", strings.Join(path, "."))
	}
	// v lives in the decoder's buffer: return the same bytes of raw instead of a copy.
	end := dec.InputOffset()
	return jsontext.Value(raw[end-int64(len(v)) : end]), nil
}

// template returns the Pod template at path in the object raw.
func template(raw []byte, path []string) (jsontext.Value, error) {
	v, err := member(raw, path)
	if err == nil && v.Kind() != '{' {
		err = fmt.Errorf("%s is a JSON %s, want an object", strings.Join(path, "."), kindName(v.Kind()))
	}
	return v, err
}

// sameJSON compares two JSON values semantically (member order and spacing aside).
func sameJSON(a, b jsontext.Value) bool {
	if bytes.Equal(a, b) {
		// The API server encodes object and oldObject alike: an unchanged template is
		// byte-identical, and canonicalizing (half the cost of such an UPDATE) is not needed.
		return true
	}
	a, b = a.Clone(), b.Clone()
	if a.Canonicalize() != nil || b.Canonicalize() != nil {
		return false
	}
	return bytes.Equal(a, b)
}

func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "string"
	case '0':
		return "number"
	case 't', 'f':
		return "boolean"
	case '[':
		return "array"
	case '{':
		return "object"
	}
	return "null"
}
