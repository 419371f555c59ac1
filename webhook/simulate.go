package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// Outcome is what the API server would end up with for one Pod or workload: the contract of
// `runtimeguard eval -o json` (one object per Pod, workload or skipped object).
type Outcome struct {
	Kind             string            `json:"kind"`
	Namespace        string            `json:"namespace"`
	Name             string            `json:"name"`
	Allowed          bool              `json:"allowed"`
	RuntimeClassName string            `json:"runtimeClassName"`
	Mutated          bool              `json:"mutated"`
	Patch            []json.RawMessage `json:"patch"`
	Reasons          []string          `json:"reasons"`
	Warnings         []string          `json:"warnings"`
	Message          string            `json:"message"`
	Source           string            `json:"source,omitempty"`
	// Exempt says why runtimeguard does not review the Pod at all ("" when it does).
	Exempt string `json:"exempt,omitempty"`
	// Skipped says why eval does not decide the object at all: it is neither a Pod nor a
	// workload, so the API server would not even call runtimeguard's webhooks for it.
	Skipped string `json:"skipped,omitempty"`
	// Trace is the decision traced class by class, when asked for (explain, eval --trace).
	Trace *policy.Trace `json:"trace,omitempty"`
}

// Simulate runs a Pod through Mutate and then Validate, applying the patch in between, the
// way the API server calls the two webhooks. With tracing, the mutating run (the Pod as
// written) is also traced; the policy set must then define the trace (policy.Set.WithTrace).
func (p *Pipeline) Simulate(ctx context.Context, namespace, name string, raw []byte, tracing bool) (Outcome, error) {
	out := Outcome{Kind: "Pod", Namespace: namespace, Name: name, Patch: []json.RawMessage{}, Reasons: []string{}, Warnings: []string{}}
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       types.UID("eval"),
		Kind:      podKind,
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: namespace,
		Name:      name,
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: raw},
	}}
	first := p.run(ctx, req, decodedPod{}, tracing, mutateFace)
	out.Exempt = first.exempt
	mutated := p.mutate(first)
	if err := asError(mutated); err != nil {
		return out, fmt.Errorf("pod %s/%s: %w", namespace, name, err)
	}
	if tracing {
		if first.traceErr != nil {
			return out, fmt.Errorf("pod %s/%s: %w", namespace, name, first.traceErr)
		}
		out.Trace = first.trace
	}
	if !mutated.Allowed {
		out.Message = resultMessage(mutated)
		return out, nil
	}
	if len(mutated.Patches) > 0 {
		var err error
		if raw, err = applyPatches(raw, mutated); err != nil {
			return out, err
		}
		out.Mutated = true
		for _, op := range mutated.Patches {
			b, _ := json.Marshal(op)
			out.Patch = append(out.Patch, b)
		}
	}
	req.Object.Raw = raw
	second := p.run(ctx, req, decodedPod{}, false, validateFace)
	validated := p.validate(second)
	if err := asError(validated); err != nil {
		return out, fmt.Errorf("pod %s/%s: %w", namespace, name, err)
	}
	out.Allowed = validated.Allowed
	out.Warnings = append(out.Warnings, mutated.Warnings...)
	out.Warnings = append(out.Warnings, validated.Warnings...)
	if !validated.Allowed {
		out.Message = resultMessage(validated)
	}
	switch {
	case second.decision != nil && second.answer == nil:
		out.Reasons = append(out.Reasons, second.decision.Reasons...)
	case validated.Allowed && validated.Result != nil && validated.Result.Message != "":
		out.Reasons = append(out.Reasons, validated.Result.Message) // exempt or ignored: say why
	}
	if pod := second.pod; pod != nil {
		out.RuntimeClassName = pod.RuntimeClassName()
	} else if pod, err := policy.DecodePod(raw); err == nil { // exempt before decoding
		out.RuntimeClassName = pod.RuntimeClassName()
	}
	return out, nil
}

// SimulateWorkload decides a workload (a Deployment, Job...; raw is its JSON) exactly as the
// validating webhook decides its CREATE: by its Pod template, never mutating it. name is
// metadata.name ("" when the object has only a generateName).
func (p *Pipeline) SimulateWorkload(ctx context.Context, kind metav1.GroupVersionKind, namespace, name string, raw []byte) (Outcome, error) {
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       types.UID("eval"),
		Kind:      kind,
		Resource:  metav1.GroupVersionResource{Group: kind.Group, Version: kind.Version, Resource: strings.ToLower(kind.Kind) + "s"},
		Namespace: namespace,
		Name:      name,
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: raw},
	}}
	out := Outcome{Kind: kind.Kind, Namespace: namespace, Name: workloadName(req), Patch: []json.RawMessage{}, Reasons: []string{}, Warnings: []string{}}
	if !isWorkload(kind) {
		return out, fmt.Errorf("%s is not a workload kind runtimeguard reviews", gvkString(kind))
	}
	r := p.run(ctx, req, decodedPod{}, false, validateFace)
	resp := p.validate(r)
	if err := asError(resp); err != nil {
		return out, err
	}
	out.Exempt = r.exempt
	out.Allowed = resp.Allowed
	out.Warnings = append(out.Warnings, resp.Warnings...)
	switch {
	case !resp.Allowed:
		out.Message = resultMessage(resp)
	case resp.Result != nil && resp.Result.Message != "":
		out.Reasons = append(out.Reasons, resp.Result.Message)
	}
	if r.pod != nil {
		out.RuntimeClassName = r.pod.RuntimeClassName()
	}
	return out, nil
}

func applyPatches(raw []byte, r admission.Response) ([]byte, error) {
	patchJSON, err := json.Marshal(r.Patches)
	if err != nil {
		return nil, err
	}
	patch, err := jsonpatchapply.DecodePatch(patchJSON)
	if err != nil {
		return nil, err
	}
	if raw, err = patch.Apply(raw); err != nil {
		return nil, fmt.Errorf("applying runtimeguard's own patch: %w", err)
	}
	return raw, nil
}

// asError returns the error of a response that is neither an admission nor a denial (the
// policy failed, the input was broken): offline, that is bad input, not a decision.
func asError(r admission.Response) error {
	if r.Allowed || r.Result == nil || r.Result.Code == http.StatusForbidden {
		return nil
	}
	return fmt.Errorf("runtimeguard could not decide (HTTP %d): %s", r.Result.Code, r.Result.Message)
}

func resultMessage(r admission.Response) string {
	if r.Result == nil {
		return ""
	}
	return r.Result.Message
}
