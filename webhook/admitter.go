package webhook

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// Labels and annotations runtimeguard reads.
const (
	IgnoreLabel      = "runtimeguard.io/ignore"
	EnforcementLabel = "runtimeguard.io/enforcement"
	mirrorAnnotation = "kubernetes.io/config.mirror"
)

// Enforcement says what happens to a Pod the policy rejects.
type Enforcement string

const (
	// Enforce denies the Pod.
	Enforce Enforcement = "enforce"
	// Warn admits the Pod with warnings and injects nothing, for trying a policy out.
	Warn Enforcement = "warn"
)

// Config is what an Admitter decides with.
type Config struct {
	Engine *policy.Engine
	View   *cluster.View
	// Enforcement is the default mode; a namespace label runtimeguard.io/enforcement=warn
	// overrides it for that namespace.
	Enforcement Enforcement
	// Namespace is the namespace runtimeguard runs in; exempt like kube-system so the webhook
	// can always be (re)started.
	Namespace string
	// Metrics may be nil.
	Metrics *Metrics
}

// Admitter reviews Pod CREATEs. Mutate and Validate are its two faces.
type Admitter struct {
	cfg Config
}

// NewAdmitter returns an Admitter; cfg.Enforcement defaults to Enforce.
func NewAdmitter(cfg Config) *Admitter {
	if cfg.Enforcement == "" {
		cfg.Enforcement = Enforce
	}
	return &Admitter{cfg: cfg}
}

var podKind = metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}

// review is one Pod CREATE with everything needed to answer it.
type review struct {
	pod      *policy.Pod
	snapshot *cluster.Snapshot
	decision *policy.Decision
	mode     Enforcement
}

// prepare does the work both handlers share. When it returns a response the request is
// answered (ignored, exempt or broken) and there is nothing to decide.
func (a *Admitter) prepare(ctx context.Context, req admission.Request) (*review, *admission.Response) {
	respond := func(r admission.Response) (*review, *admission.Response) { return nil, &r }
	switch {
	case req.UID == "" && req.Kind == (metav1.GroupVersionKind{}) && req.Operation == "":
		return respond(admission.Errored(http.StatusBadRequest, fmt.Errorf("the AdmissionReview holds no request")))
	case req.UID == "": // the API server always sets it
		return respond(admission.Errored(http.StatusBadRequest, fmt.Errorf("the AdmissionReview's request has no uid")))
	case req.Kind != podKind:
		return respond(admission.Allowed(fmt.Sprintf("runtimeguard reviews only core/v1 Pods, not %s", gvkString(req.Kind))))
	case req.SubResource != "":
		return respond(admission.Allowed("runtimeguard ignores subresources"))
	case req.Operation != admissionv1.Create:
		return respond(admission.Allowed("runtimeguard reviews only CREATE"))
	case req.Namespace == "kube-system" || (a.cfg.Namespace != "" && req.Namespace == a.cfg.Namespace):
		return respond(admission.Allowed(fmt.Sprintf("namespace %q is exempt", req.Namespace)))
	}
	if len(req.Object.Raw) == 0 {
		return respond(admission.Errored(http.StatusBadRequest, fmt.Errorf("the AdmissionReview holds no Pod in request.object")))
	}
	pod, err := policy.DecodePod(req.Object.Raw)
	if err != nil {
		return respond(admission.Errored(http.StatusBadRequest, fmt.Errorf("cannot decode the Pod in request.object: %w", err)))
	}
	// An object without apiVersion and kind is decoded as a Pod; one that says it is something
	// else is refused rather than decided (and patched) as a Pod.
	if (pod.APIVersion != "" && pod.APIVersion != "v1") || (pod.Kind != "" && pod.Kind != "Pod") {
		return respond(admission.Errored(http.StatusBadRequest, fmt.Errorf("request.kind is v1/Pod but request.object has apiVersion %q and kind %q",
			pod.APIVersion, pod.Kind)))
	}
	if _, ok := pod.Metadata.Annotations[mirrorAnnotation]; ok {
		return respond(admission.Allowed("mirror pods are managed by the kubelet and exempt"))
	}
	if !a.cfg.View.Synced() {
		return respond(admission.Errored(http.StatusServiceUnavailable, fmt.Errorf("runtimeguard's cluster view is not synced yet; retry in a few seconds")))
	}
	ns, _, err := a.cfg.View.Namespace(ctx, req.Namespace)
	if err != nil {
		return respond(admission.Errored(http.StatusInternalServerError, fmt.Errorf("reading namespace %q: %w", req.Namespace, err)))
	}
	if ns.Labels[IgnoreLabel] == "true" {
		return respond(admission.Allowed(fmt.Sprintf("namespace %q is labelled %s=true", req.Namespace, IgnoreLabel)))
	}
	if pod.Metadata.Namespace == "" {
		pod.Metadata.Namespace = req.Namespace
	}
	mode := a.cfg.Enforcement
	if Enforcement(ns.Labels[EnforcementLabel]) == Warn {
		mode = Warn
	}
	snap := a.cfg.View.Snapshot()
	start := time.Now()
	d, cached, err := a.cfg.Engine.DecideTraced(ctx, policy.Request{
		Operation: string(req.Operation), Namespace: ns, Pod: pod, Cluster: snap,
	})
	a.cfg.Metrics.observeDecision(time.Since(start), cached, err)
	if err != nil {
		if mode == Warn {
			r := admission.Allowed("policy failed in warn mode").WithWarnings(fmt.Sprintf("runtimeguard could not decide (warn mode, allowed): %v", err))
			return respond(r)
		}
		return respond(admission.Errored(http.StatusInternalServerError, fmt.Errorf("runtimeguard could not decide for a pod in namespace %q: %w", req.Namespace, err)))
	}
	return &review{pod: pod, snapshot: snap, decision: d, mode: mode}, nil
}

// Mutate injects the required RuntimeClass into Pods that name none. It adds exactly
// /spec/runtimeClassName: the API server's RuntimeClass plugin re-runs after a webhook mutation
// and adds the class's overhead, nodeSelector and tolerations itself. It is idempotent: a Pod
// that already has a class (for instance on reinvocation) is left alone.
func (a *Admitter) Mutate(ctx context.Context, req admission.Request) admission.Response {
	resp, _ := a.mutate(ctx, req)
	return resp
}

func (a *Admitter) mutate(ctx context.Context, req admission.Request) (admission.Response, *review) {
	r, done := a.prepare(ctx, req)
	if done != nil {
		return a.finish("mutate", *done, nil), nil
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
	return a.finish("mutate", resp, r), r
}

// Validate rejects a Pod whose class does not meet its requirements, names a RuntimeClass that
// does not exist, or whose handler no usable node advertises, plus whatever policy deny rules
// say. Policy warn rules become warnings.
func (a *Admitter) Validate(ctx context.Context, req admission.Request) admission.Response {
	resp, _ := a.validate(ctx, req)
	return resp
}

func (a *Admitter) validate(ctx context.Context, req admission.Request) (admission.Response, *review) {
	r, done := a.prepare(ctx, req)
	if done != nil {
		return a.finish("validate", *done, nil), nil
	}
	denials := append([]string(nil), r.decision.Deny...)
	warnings := append([]string(nil), r.decision.Warn...)
	if class := r.pod.RuntimeClassName(); class != "" {
		d, w := checkClass(class, r.pod, r.snapshot)
		denials = append(denials, d...)
		warnings = append(warnings, w...)
	}
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
	return a.finish("validate", resp, r), r
}

// checkClass holds the checks that are product guarantees rather than policy: the class
// exists, some usable node can run it, and the Pod's nodeSelector does not contradict it.
func checkClass(class string, pod *policy.Pod, snap *cluster.Snapshot) (denials, warnings []string) {
	rc, ok := snap.Classes[class]
	if !ok {
		return []string{fmt.Sprintf("pod rejected: RuntimeClass %q not found; existing runtime classes: %s; create it or fix spec.runtimeClassName",
			class, listOrNone(snap.ClassNames()))}, nil
	}
	av := rc.Availability
	switch {
	case !av.Available:
		denials = append(denials, fmt.Sprintf("pod rejected: RuntimeClass %q (handler %q): %s; run the handler on a node (its CRI must report it in status.runtimeHandlers, or label the node %s) or choose another runtime class",
			class, rc.Handler, av.Reason, selectorOrHint(rc.NodeSelector)))
	case !av.Known:
		warnings = append(warnings, fmt.Sprintf("RuntimeClass %q (handler %q): %s; admitted anyway (runtimeguard --require-advertised-handlers would deny)",
			class, rc.Handler, av.Reason))
	}
	keys := make([]string, 0, len(rc.NodeSelector))
	for k := range rc.NodeSelector {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if podValue, ok := pod.Spec.NodeSelector[k]; ok && podValue != rc.NodeSelector[k] {
			denials = append(denials, fmt.Sprintf("pod rejected: conflict: runtimeClass.scheduling.nodeSelector[%s] = %s; pod.spec.nodeSelector[%s] = %s; RuntimeClass %q only runs on nodes labelled %s=%s, so remove %s from spec.nodeSelector or choose another runtime class",
				k, rc.NodeSelector[k], k, podValue, class, k, rc.NodeSelector[k], k))
		}
	}
	return denials, warnings
}

func selectorOrHint(sel map[string]string) string {
	if len(sel) == 0 {
		return "and give the RuntimeClass a scheduling.nodeSelector"
	}
	keys := make([]string, 0, len(sel))
	for k, v := range sel {
		keys = append(keys, k+"="+v)
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// finish adds the audit annotations and counts the outcome. Audit annotations carry the
// decision and its reasons, never the object.
func (a *Admitter) finish(webhook string, resp admission.Response, r *review) admission.Response {
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
	if r != nil {
		if r.decision.Class != "" {
			resp.AuditAnnotations["class"] = r.decision.Class
		}
		resp.AuditAnnotations["reasons"] = strings.Join(r.decision.Reasons, "; ")
		resp.AuditAnnotations["enforcement"] = string(r.mode)
	} else if resp.Result != nil && resp.Result.Message != "" {
		resp.AuditAnnotations["reasons"] = resp.Result.Message
	}
	a.cfg.Metrics.observeAdmission(webhook, outcome)
	return resp
}

func gvkString(k metav1.GroupVersionKind) string {
	if k.Group == "" {
		return k.Version + "/" + k.Kind
	}
	return k.Group + "/" + k.Version + "/" + k.Kind
}
