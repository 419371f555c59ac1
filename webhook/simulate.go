package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Outcome is what the API server would end up with for one Pod: the contract of
// `runtimeguard eval -o json` (one object per Pod).
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
}

// Simulate runs a Pod through Mutate and then Validate, applying the patch in between, the
// way the API server calls the two webhooks.
func (a *Admitter) Simulate(ctx context.Context, namespace, name string, raw []byte) (Outcome, error) {
	out := Outcome{Kind: "Pod", Namespace: namespace, Name: name, Patch: []json.RawMessage{}, Reasons: []string{}, Warnings: []string{}}
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       types.UID("eval"),
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: namespace,
		Name:      name,
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: raw},
	}}
	mutated, _ := a.mutate(ctx, req)
	if err := asError(mutated); err != nil {
		return out, fmt.Errorf("pod %s/%s: %w", namespace, name, err)
	}
	if !mutated.Allowed {
		out.Message = resultMessage(mutated)
		return out, nil
	}
	if len(mutated.Patches) > 0 {
		patchJSON, err := json.Marshal(mutated.Patches)
		if err != nil {
			return out, err
		}
		patch, err := jsonpatchapply.DecodePatch(patchJSON)
		if err != nil {
			return out, err
		}
		if raw, err = patch.Apply(raw); err != nil {
			return out, fmt.Errorf("applying runtimeguard's own patch: %w", err)
		}
		out.Mutated = true
		for _, p := range mutated.Patches {
			b, _ := json.Marshal(p)
			out.Patch = append(out.Patch, b)
		}
	}
	req.Object.Raw = raw
	validated, r := a.validate(ctx, req)
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
	case r != nil:
		out.Reasons = append(out.Reasons, r.decision.Reasons...)
	case validated.Allowed && validated.Result != nil && validated.Result.Message != "":
		out.Reasons = append(out.Reasons, validated.Result.Message) // exempt or ignored: say why
	}
	var pod struct {
		Spec struct {
			RuntimeClassName string `json:"runtimeClassName"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(raw, &pod); err == nil {
		out.RuntimeClassName = pod.Spec.RuntimeClassName
	}
	return out, nil
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
