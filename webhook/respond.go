package webhook

import (
	"context"
	"fmt"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Mutate injects the required RuntimeClass into Pods that name none. It adds exactly
// /spec/runtimeClassName: the API server's RuntimeClass plugin re-runs after a webhook mutation
// and adds the class's overhead, nodeSelector and tolerations itself. It is idempotent: a Pod
// that already has a class (for instance on reinvocation) is left alone.
func (p *Pipeline) Mutate(ctx context.Context, req admission.Request) admission.Response {
	return p.mutate(p.run(ctx, req, decodedPod{}, false, mutateFace))
}

func (p *Pipeline) mutate(r *review) admission.Response {
	if r.answer != nil {
		return p.finish("mutate", *r.answer, r)
	}
	resp := admission.Allowed("")
	switch {
	case r.pod.RuntimeClassName() != "":
		resp.Result.Message = fmt.Sprintf("spec.runtimeClassName is already %q", r.pod.RuntimeClassName())
	case r.decision.Class == "":
		resp.Result.Message = "no runtime class to inject"
	case r.mode == Warn:
		resp.Result.Message = fmt.Sprintf("warn mode: would inject runtime class %q", r.decision.Class)
	default:
		resp = admission.Patched(fmt.Sprintf("injected runtime class %q", r.decision.Class),
			jsonpatch.NewOperation("add", "/spec/runtimeClassName", r.decision.Class))
	}
	return p.finish("mutate", resp, r)
}

// Validate rejects a Pod whose class does not meet its requirements, names a RuntimeClass that
// does not exist, or whose handler no usable node advertises, plus whatever policy deny rules
// say. Policy warn rules become warnings.
func (p *Pipeline) Validate(ctx context.Context, req admission.Request) admission.Response {
	return p.validate(p.run(ctx, req, decodedPod{}, false, validateFace))
}

func (p *Pipeline) validate(r *review) admission.Response {
	if r.answer != nil {
		return p.finish("validate", *r.answer, r)
	}
	denials, warnings := r.check()
	var resp admission.Response
	switch {
	case len(denials) == 0:
		resp = admission.Allowed("")
	case r.mode == Warn:
		resp = admission.Allowed("warn mode")
		for _, d := range denials {
			warnings = append(warnings, "runtimeguard warn mode, would deny: "+strings.TrimPrefix(d, "pod rejected: "))
		}
	default:
		resp = admission.Denied(strings.Join(denials, "; and "))
	}
	if len(warnings) > 0 {
		resp = resp.WithWarnings(warnings...)
	}
	return p.finish("validate", resp, r)
}

// finish adds the audit annotations, counts the outcome and logs a denial or an injection.
// Audit annotations carry the decision and its reasons, never the object.
func (p *Pipeline) finish(webhook string, resp admission.Response, r *review) admission.Response {
	outcome := "allowed"
	switch {
	case resp.Result != nil && resp.Result.Code >= 400 && !resp.Allowed && resp.Result.Reason != metav1.StatusReasonForbidden:
		outcome = "error"
	case !resp.Allowed:
		outcome = "denied"
	case len(resp.Patches) > 0:
		outcome = "mutated"
	case len(resp.Warnings) > 0:
		outcome = "warned"
	}
	if resp.AuditAnnotations == nil {
		resp.AuditAnnotations = map[string]string{}
	}
	resp.AuditAnnotations["decision"] = outcome
	if r.answer == nil { // decided
		if r.decision.Class != "" {
			resp.AuditAnnotations["class"] = r.decision.Class
		}
		resp.AuditAnnotations["reasons"] = strings.Join(r.decision.Reasons, "; ")
		resp.AuditAnnotations["enforcement"] = string(r.mode)
	} else if resp.Result != nil && resp.Result.Message != "" {
		resp.AuditAnnotations["reasons"] = resp.Result.Message
	}
	p.observe(webhook, r, p.newRecord(outcome, resp, r))
	return resp
}
