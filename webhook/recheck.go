package webhook

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Existing is an object that already exists in the cluster, to be decided again (audit).
type Existing struct {
	// Kind is v1 Pod or one of the workload kinds (Deployment, StatefulSet, DaemonSet,
	// ReplicaSet, ReplicationController, Job, CronJob).
	Kind      metav1.GroupVersionKind
	Namespace string
	Name      string
	// Raw is the object as JSON.
	Raw []byte
}

// The kinds of denial a Verdict names: a bounded set, fit for a metric label.
const (
	// ReasonMissingClass: the Pod names no runtime class although its namespace or traits
	// require one (it was created in warn mode, or before runtimeguard was installed).
	ReasonMissingClass = "missing-class"
	// ReasonWeakClass: the class it names does not meet its requirements.
	ReasonWeakClass = "weak-class"
	// ReasonClassNotFound: the class it names does not exist (any more).
	ReasonClassNotFound = "class-not-found"
	// ReasonClassUnavailable: no node it can reach runs the class's handler (any more).
	ReasonClassUnavailable = "class-unavailable"
	// ReasonSelectorConflict: the class's nodeSelector contradicts the Pod's.
	ReasonSelectorConflict = "selector-conflict"
	// ReasonPolicy: a deny rule of the policy other than the class requirements.
	ReasonPolicy = "policy"
)

// Verdict is what the validating webhook would answer today for an existing object.
type Verdict struct {
	// Exempt says why runtimeguard does not review the object at all ("" when it does).
	Exempt string
	// Class is the runtime class its Pods run under: a Pod's own, or the one a template's
	// Pods would get (injection simulated, as at admission).
	Class string
	// Denials say why it would be denied today, without "pod rejected: "; none: it complies.
	Denials []string
	// Reasons holds the kind of each denial (Reason*), in the same order.
	Reasons []string
	// Warnings are the warnings the webhook would add.
	Warnings []string
	// Enforcement is the namespace's mode: in warn mode the object was (and would be)
	// admitted with warnings despite its denials.
	Enforcement Enforcement
}

// Message words the denials as the validating webhook would (workloads with their prefix).
func (v Verdict) Message() string { return strings.Join(v.Denials, "; and ") }

// Recheck decides an existing object as the validating webhook decides its CREATE: a Pod as it
// is stored (the mutating webhook already had its say, so a Pod without class where one is
// required is denied), a workload by its Pod template with the injection simulated. Every
// namespace is decided as if enforced and --workload-review is ignored: the question is what
// enforcing the current policy would deny now. Decisions are not counted in the admission
// metrics. An object the pipeline cannot decide (broken, the policy failed, the view is not
// synced) is an error.
func (p *Pipeline) Recheck(ctx context.Context, o Existing) (Verdict, error) {
	cfg := p.cfg
	cfg.Enforcement, cfg.WorkloadReview, cfg.Metrics, cfg.recheck = Enforce, WorkloadEnforce, nil, true
	cfg.DecisionLog = logr.Logger{} // an audit is not an admission: no decision records
	a := &Pipeline{cfg: cfg}
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "recheck",
		Kind:      o.Kind,
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: o.Namespace,
		Name:      o.Name,
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: o.Raw},
	}}
	var r *review
	what := ""
	switch {
	case o.Kind == podKind:
		r = a.run(ctx, req, decodedPod{}, false, recheckFace)
	case isWorkload(o.Kind):
		var early *review
		if what, r, early = a.decideTemplate(ctx, req, recheckFace); early != nil {
			r = early
		}
		what += ": "
	default:
		return Verdict{}, fmt.Errorf("runtimeguard does not review %s", gvkString(o.Kind))
	}
	if r.answer != nil {
		msg := resultMessage(*r.answer)
		if r.answer.Allowed {
			return Verdict{Exempt: msg}, nil
		}
		if what != "" && !strings.HasPrefix(msg, what) {
			msg = what + msg
		}
		return Verdict{}, errors.New(msg)
	}
	v := Verdict{Class: r.pod.RuntimeClassName(), Enforcement: p.cfg.Enforcement}
	if Enforcement(r.ns.Labels[EnforcementLabel]) == Warn {
		v.Enforcement = Warn
	}
	denials, warnings := r.check()
	for i, d := range denials {
		v.Denials = append(v.Denials, what+strings.TrimPrefix(d, "pod rejected: "))
		v.Reasons = append(v.Reasons, r.denialReason(i))
	}
	for _, w := range warnings {
		v.Warnings = append(v.Warnings, what+w)
	}
	return v, nil
}

// denialReason is the kind of the i-th denial of check: the policy's deny rules first, then
// checkClass's (which says one thing at a time: not found, conflicts, or unavailable).
func (r *review) denialReason(i int) string {
	d, class := r.decision, r.pod.RuntimeClassName()
	required := d.Requirements.Isolation > 0 || d.Requirements.GPU
	if i < len(d.Deny) {
		switch {
		case class == "" && required:
			return ReasonMissingClass
		case class != "" && required && !slices.Contains(d.Acceptable, class):
			return ReasonWeakClass
		}
		return ReasonPolicy
	}
	switch {
	case r.snapshot.Classes[class] == nil:
		return ReasonClassNotFound
	case len(d.Conflicts) > 0:
		return ReasonSelectorConflict
	}
	return ReasonClassUnavailable
}
