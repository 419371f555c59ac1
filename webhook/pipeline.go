package webhook

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/go-logr/logr"
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
	// mirrorAnnotation marks a static Pod's mirror; like the kubelet, its presence is what counts.
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

// Config is what a Pipeline decides with.
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
	// WorkloadReview says whether workloads are reviewed by their Pod template, and whether
	// a rejected one is denied or warned about (default WorkloadEnforce).
	WorkloadReview WorkloadReview
	// DecisionLog logs each denial and each injection once, at info level (decisionlog.go);
	// the zero Logger logs nothing.
	DecisionLog logr.Logger

	// recheck marks the pipeline Recheck decides existing objects with (recheck.go): every
	// namespace is decided as if enforced, since the audit's question is what enforce would deny.
	recheck bool
}

// Pipeline reviews Pod CREATEs, and workloads by their Pod template (workload.go). Every entry point runs the same steps, in the order the in-tree
// RuntimeClass admission plugin uses: ignore what is not a Pod CREATE, exempt what must never be
// blocked, build the input, decide (Rego), run the product checks, respond. Mutate and Validate
// are its two webhook faces; Simulate (eval, explain, test) runs both as the API server would.
type Pipeline struct {
	cfg Config
	// answers holds the encoded answers of cached decisions (handler.go).
	answers answerMemo
}

// NewPipeline returns a Pipeline; cfg.Enforcement defaults to Enforce.
func NewPipeline(cfg Config) *Pipeline {
	if cfg.Enforcement == "" {
		cfg.Enforcement = Enforce
	}
	if cfg.WorkloadReview == "" {
		cfg.WorkloadReview = WorkloadEnforce
	}
	return &Pipeline{cfg: cfg}
}

var podKind = metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}

// review is one request on its way through the steps.
type review struct {
	req admission.Request
	pod *policy.Pod
	// podErr says why the Pod decoded with the review could not be.
	podErr    error
	placement *cluster.Placement
	ns        *cluster.Namespace
	snapshot  *cluster.Snapshot
	// reach says where the Pod can run under each class.
	reach  *cluster.PodReach
	claims *cluster.Claims
	mode   Enforcement
	// face is the webhook the review answers for: it says what of the decision is read.
	face     face
	decision *policy.Decision
	// trace is set when the run traces (explain); traceErr says why it could not.
	trace    *policy.Trace
	traceErr error
	// exempt says why the Pod is not reviewed ("" when it is).
	exempt string
	// answer is set by the step that answered early: ignored, exempt, bad input, no decision.
	answer *admission.Response
}

// run takes req through the steps. With tracing, an exempt Pod is still decided and traced
// (explain shows what the policy would say), while its answer stays the exemption.
// Workloads are reviewed by their Pod template (workload.go), only by the validating face f.
func (p *Pipeline) run(ctx context.Context, req admission.Request, pre decodedPod, tracing bool, f face) *review {
	if req.Kind != podKind && req.UID != "" && isWorkload(req.Kind) {
		return p.runWorkload(ctx, req, f)
	}
	r := &review{req: req, pod: pre.pod, podErr: pre.err, mode: p.cfg.Enforcement, face: f}
	if r.answer = ignore(req); r.answer != nil {
		return r
	}
	r.exempt = p.exemptNamespace(req.Namespace)
	if r.exempt != "" && !tracing {
		return r.exemptAnswer()
	}
	if r.answer = r.decodePod(); r.answer != nil {
		return r
	}
	if r.exempt == "" {
		r.exempt = exemptMirror(r.pod)
	}
	if r.exempt != "" && !tracing {
		return r.exemptAnswer()
	}
	if r.answer = p.readCluster(ctx, r); r.answer != nil {
		return r
	}
	if r.exempt == "" {
		r.exempt = exemptLabel(r.ns)
	}
	if r.exempt != "" {
		r.exemptAnswer()
		if !tracing {
			return r
		}
	}
	if answer := p.decide(ctx, r); answer != nil {
		r.answer = answer
		return r
	}
	if tracing {
		r.trace, r.traceErr = p.cfg.Engine.Trace(ctx, r.policyRequest())
	}
	return r
}

// ignore answers what runtimeguard does not review: broken envelopes, other kinds,
// subresources, operations other than CREATE.
func ignore(req admission.Request) *admission.Response {
	answer := func(r admission.Response) *admission.Response { return &r }
	switch {
	case req.UID == "" && req.Kind == (metav1.GroupVersionKind{}) && req.Operation == "":
		return answer(admission.Errored(http.StatusBadRequest, fmt.Errorf("the AdmissionReview holds no request")))
	case req.UID == "": // the API server always sets it
		return answer(admission.Errored(http.StatusBadRequest, fmt.Errorf("the AdmissionReview's request has no uid")))
	case req.Kind != podKind:
		return answer(admission.Allowed(fmt.Sprintf("runtimeguard reviews only core/v1 Pods, not %s", gvkString(req.Kind))))
	case req.SubResource != "":
		return answer(admission.Allowed("runtimeguard ignores subresources"))
	case req.Operation != admissionv1.Create:
		return answer(admission.Allowed("runtimeguard reviews only CREATE"))
	}
	return nil
}

// exemptNamespace: kube-system and runtimeguard's own namespace are never reviewed, so the
// cluster and the webhook itself can always start, even before the view is synced.
func (p *Pipeline) exemptNamespace(ns string) string {
	if ns == "kube-system" || (p.cfg.Namespace != "" && ns == p.cfg.Namespace) {
		return fmt.Sprintf("namespace %q is exempt", ns)
	}
	return ""
}

func exemptMirror(pod *policy.Pod) string {
	if _, ok := pod.Metadata.Annotations[mirrorAnnotation]; ok {
		return "mirror pods are managed by the kubelet and exempt"
	}
	return ""
}

func exemptLabel(ns *cluster.Namespace) string {
	if ns.Labels[IgnoreLabel] == "true" {
		return fmt.Sprintf("namespace %q is labelled %s=true", ns.Name, IgnoreLabel)
	}
	return ""
}

func (r *review) exemptAnswer() *review {
	a := admission.Allowed(r.exempt)
	r.answer = &a
	return r
}

func (r *review) decodePod() *admission.Response {
	fail := func(err error) *admission.Response {
		a := admission.Errored(http.StatusBadRequest, err)
		return &a
	}
	if r.podErr != nil {
		return fail(fmt.Errorf("cannot decode the Pod in request.object: %s", policy.DecodeErrorText(r.podErr)))
	}
	pod := r.pod // decoded with the review (handler.go), or raw for Mutate and Validate
	if pod == nil {
		if len(r.req.Object.Raw) == 0 {
			return fail(fmt.Errorf("the AdmissionReview holds no Pod in request.object"))
		}
		var err error
		if pod, err = policy.DecodePod(r.req.Object.Raw); err != nil {
			return fail(fmt.Errorf("cannot decode the Pod in request.object: %w", err))
		}
	}
	// An object without apiVersion and kind is decoded as a Pod; one that says it is something
	// else is refused rather than decided (and patched) as a Pod.
	if (pod.APIVersion != "" && pod.APIVersion != "v1") || (pod.Kind != "" && pod.Kind != "Pod") {
		return fail(fmt.Errorf("request.kind is v1/Pod but request.object has apiVersion %q and kind %q", pod.APIVersion, pod.Kind))
	}
	if pod.Metadata.Namespace == "" {
		pod.Metadata.Namespace = r.req.Namespace
	}
	// The mutating webhook sees the Pod before the API server validates it: malformed
	// placement is refused here, naming the field, rather than evaluated.
	placement := pod.Placement()
	if err := placement.Validate(); err != nil {
		return fail(fmt.Errorf("pod placement is invalid: %w", err))
	}
	r.pod, r.placement = pod, placement
	return nil
}

// readCluster reads the Pod's Namespace and the cluster snapshot the decision is made on.
func (p *Pipeline) readCluster(ctx context.Context, r *review) *admission.Response {
	if !p.cfg.View.Synced() {
		a := admission.Errored(http.StatusServiceUnavailable, fmt.Errorf("runtimeguard's cluster view is not synced yet; retry in a few seconds"))
		return &a
	}
	ns, _, err := p.cfg.View.Namespace(ctx, r.req.Namespace)
	if err != nil {
		a := admission.Errored(http.StatusInternalServerError, fmt.Errorf("reading namespace %q: %w", r.req.Namespace, err))
		return &a
	}
	r.ns = ns
	if Enforcement(ns.Labels[EnforcementLabel]) == Warn && !p.cfg.recheck {
		r.mode = Warn
	}
	r.snapshot, r.reach = p.cfg.View.Reach(r.placement, r.pod.RuntimeClassName())
	r.claims = p.cfg.View.Claims()
	return nil
}

func (r *review) policyRequest() policy.Request {
	return policy.Request{Operation: string(r.req.Operation), Namespace: r.ns, Pod: r.pod, Cluster: r.snapshot, Reach: r.reach, Claims: r.claims, Fields: r.face.fields()}
}

// decide evaluates the policy. A policy that cannot decide fails closed, except in warn mode.
func (p *Pipeline) decide(ctx context.Context, r *review) *admission.Response {
	start := time.Now()
	d, cacheHit, err := p.cfg.Engine.Decide(ctx, r.policyRequest())
	p.cfg.Metrics.observeDecision(time.Since(start), cacheHit, err)
	if err == nil {
		r.decision = d
		return nil
	}
	var a admission.Response
	if r.mode == Warn {
		a = admission.Allowed("policy failed in warn mode").WithWarnings(fmt.Sprintf("runtimeguard could not decide (warn mode, allowed): %v", err))
	} else {
		a = admission.Errored(http.StatusInternalServerError, fmt.Errorf("runtimeguard could not decide for a pod in namespace %q: %w", r.req.Namespace, err))
	}
	return &a
}

// check returns the policy's verdict plus the product checks (checks.go) on the class the Pod
// names. Only the validating webhook answers with it, so only it pays for it.
func (r *review) check() (denials, warnings []string) {
	denials = append([]string(nil), r.decision.Deny...)
	warnings = append([]string(nil), r.decision.Warn...)
	if class := r.pod.RuntimeClassName(); class != "" {
		d, w := checkClass(class, r.decision, r.snapshot, r.reach)
		denials = append(denials, d...)
		warnings = append(warnings, w...)
	}
	return denials, warnings
}

func gvkString(k metav1.GroupVersionKind) string {
	if k.Group == "" {
		return k.Version + "/" + k.Kind
	}
	return k.Group + "/" + k.Version + "/" + k.Kind
}
