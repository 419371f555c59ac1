package webhook

import (
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// record is what an answer says for the admissions counter and the decision log, apart from
// the request's identity: the same for every request the answer memo (handler.go) serves it to.
type record struct {
	outcome string
	// class is the runtime_class label: the class the Pod runs under if admitted (injected or
	// its own; a workload's Pods'), bounded by the classes in the policy data.
	class string
	// logged says whether the answer is a decision record (a denial or an injection); the
	// fields below are only set then.
	logged bool
	// decided is "denied" or "injected".
	decided string
	// podClass is the class itself, unbounded (the log is not a metric).
	podClass string
	// policyClass is the class the policy picked, when it decided.
	policyClass string
	reasons     []string
}

// newRecord describes resp, the answer to r.
func (p *Pipeline) newRecord(outcome string, resp admission.Response, r *review) record {
	rec := record{outcome: outcome}
	if len(resp.Patches) > 0 && r.decision != nil {
		rec.podClass = r.decision.Class // what Mutate injects: the only patch it makes
	} else if r.pod != nil {
		rec.podClass = r.pod.RuntimeClassName()
	}
	rec.class = p.classLabel(rec.podClass)
	switch outcome {
	case "denied":
		rec.logged, rec.decided = true, "denied"
		if resp.Result != nil {
			rec.reasons = strings.Split(resp.Result.Message, "; and ")
		}
	case "mutated":
		rec.logged, rec.decided = true, "injected"
		if r.decision != nil {
			rec.reasons = r.decision.Reasons
		}
	}
	if rec.logged && r.decision != nil {
		rec.policyClass = r.decision.Class
	}
	return rec
}

// classLabel bounds the runtime_class label to the classes the policy data lists, so a Pod
// naming arbitrary classes cannot grow the metric without bound.
func (p *Pipeline) classLabel(class string) string {
	switch {
	case class == "":
		return ""
	case p.cfg.Engine != nil && p.cfg.Engine.KnownClass(class):
		return class
	}
	return "other"
}

// observe counts the answer and, for a denial or an injection, logs its decision record once.
// The record holds no Pod spec: the request's identity, the class and the reasons.
func (p *Pipeline) observe(webhook string, r *review, rec record) {
	p.cfg.Metrics.observeAdmission(webhook, rec.outcome, rec.class)
	if !rec.logged || !p.cfg.DecisionLog.Enabled() {
		return
	}
	req := r.req
	// The API server sets request.name whenever the object has a name; without one, the
	// object is created with metadata.generateName.
	nameKey, name := "name", req.Name
	if name == "" {
		nameKey = "generateName"
		if isWorkload(req.Kind) {
			name = workloadName(req)
		} else if r.pod != nil {
			name = r.pod.Metadata.GenerateName
		}
	}
	kv := []any{"webhook", webhook, "decision", rec.decided, "kind", req.Kind.Kind, "namespace", req.Namespace, nameKey, name,
		"class", rec.podClass, "reasons", rec.reasons, "uid", req.UID}
	if rec.policyClass != "" && rec.policyClass != rec.podClass {
		kv = append(kv, "policyClass", rec.policyClass)
	}
	p.cfg.DecisionLog.Info("admission decision", kv...)
}
