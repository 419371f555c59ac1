// Package baseline is the hand-coded Go webhook the benchmarks compare runtimeguard with. It is
// served exactly like `runtimeguard serve` (controller-runtime manager and webhook server,
// webhook.NewHandler handlers, webhook.TLSOptions, the same paths, the same cluster view
// loaded from the same fixture files, the same Pod decoding) and answers the same way (patch,
// audit annotations, a Prometheus counter per admission); only the decision differs: package
// godecide in plain Go instead of the Rego policy through OPA, and no decision cache.
package baseline

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/runtimeguard/runtimeguard/e2e/bench/internal/godecide"
	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// Options configures Serve; the flags mirror `runtimeguard serve`.
type Options struct {
	Port                   int
	BindAddress            string
	CertDir                string
	ClusterFiles           []string
	MetricsBindAddress     string
	HealthProbeBindAddress string
	Namespace              string
}

// Handler answers admissions with the Go policy.
type Handler struct {
	Policy     *godecide.Policy
	View       *cluster.View
	Namespace  string
	admissions *prometheus.CounterVec
	decisions  prometheus.Histogram
}

// NewHandler returns a handler; reg may be nil.
func NewHandler(p *godecide.Policy, v *cluster.View, namespace string, reg prometheus.Registerer) *Handler {
	h := &Handler{Policy: p, View: v, Namespace: namespace,
		admissions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baseline_admissions_total", Help: "Admissions by webhook and outcome."}, []string{"webhook", "outcome"}),
		decisions: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "baseline_decision_duration_seconds", Help: "Decision time.",
			Buckets: []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1}}),
	}
	if reg != nil {
		reg.MustRegister(h.admissions, h.decisions)
	}
	return h
}

var podKind = metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}

type review struct {
	pod      *policy.Pod
	snapshot *cluster.Snapshot
	reach    *cluster.PodReach
	decision *godecide.Decision
	warn     bool
}

// prepare mirrors webhook.Pipeline's: exemptions, decoding, namespace, enforcement, decision.
func (h *Handler) prepare(ctx context.Context, req admission.Request) (*review, *admission.Response) {
	respond := func(r admission.Response) (*review, *admission.Response) { return nil, &r }
	switch {
	case req.Kind != podKind:
		return respond(admission.Allowed("baseline reviews only core/v1 Pods"))
	case req.SubResource != "":
		return respond(admission.Allowed("baseline ignores subresources"))
	case req.Operation != admissionv1.Create:
		return respond(admission.Allowed("baseline reviews only CREATE"))
	case req.Namespace == "kube-system" || (h.Namespace != "" && req.Namespace == h.Namespace):
		return respond(admission.Allowed(fmt.Sprintf("namespace %q is exempt", req.Namespace)))
	}
	if len(req.Object.Raw) == 0 {
		return respond(admission.Errored(http.StatusBadRequest, errors.New("the AdmissionReview holds no Pod in request.object")))
	}
	pod, err := policy.DecodePod(req.Object.Raw)
	if err != nil {
		return respond(admission.Errored(http.StatusBadRequest, fmt.Errorf("cannot decode the Pod in request.object: %w", err)))
	}
	if _, ok := pod.Metadata.Annotations["kubernetes.io/config.mirror"]; ok {
		return respond(admission.Allowed("mirror pods are exempt"))
	}
	placement := pod.Placement()
	if err := placement.Validate(); err != nil {
		return respond(admission.Errored(http.StatusBadRequest, fmt.Errorf("pod placement is invalid: %w", err)))
	}
	if !h.View.Synced() {
		return respond(admission.Errored(http.StatusServiceUnavailable, errors.New("cluster view not synced")))
	}
	ns, _, err := h.View.Namespace(ctx, req.Namespace)
	if err != nil {
		return respond(admission.Errored(http.StatusInternalServerError, err))
	}
	if ns.Labels[webhook.IgnoreLabel] == "true" {
		return respond(admission.Allowed(fmt.Sprintf("namespace %q is labelled %s=true", req.Namespace, webhook.IgnoreLabel)))
	}
	if pod.Metadata.Namespace == "" {
		pod.Metadata.Namespace = req.Namespace
	}
	start := time.Now()
	// Where the Pod can run under each class: the same index lookup the pipeline makes.
	snap, reach := h.View.Reach(placement, pod.RuntimeClassName())
	claims := h.View.Claims().Resolve(ctx, pod.Metadata.Namespace, pod.Spec.ResourceClaims)
	d, err := h.Policy.Decide(ns, pod, snap, reach, claims)
	h.decisions.Observe(time.Since(start).Seconds())
	if err != nil {
		return respond(admission.Errored(http.StatusInternalServerError, err))
	}
	return &review{pod: pod, snapshot: snap, reach: reach, decision: d, warn: ns.Labels[webhook.EnforcementLabel] == string(webhook.Warn)}, nil
}

// Mutate injects the class, like webhook.Pipeline.Mutate.
func (h *Handler) Mutate(ctx context.Context, req admission.Request) admission.Response {
	r, done := h.prepare(ctx, req)
	if done != nil {
		return h.finish("mutate", *done, nil)
	}
	resp := admission.Allowed("")
	switch {
	case r.pod.RuntimeClassName() != "":
		resp.Result.Message = fmt.Sprintf("spec.runtimeClassName is already %q", r.pod.RuntimeClassName())
	case r.decision.Class == "":
		resp.Result.Message = "no runtime class to inject"
	case r.warn:
		resp.Result.Message = fmt.Sprintf("warn mode: would inject runtime class %q", r.decision.Class)
	default:
		resp = admission.Patched(fmt.Sprintf("injected runtime class %q", r.decision.Class),
			jsonpatch.NewOperation("add", "/spec/runtimeClassName", r.decision.Class))
	}
	return h.finish("mutate", resp, r)
}

// Validate denies what the policy denies plus classes that do not exist or cannot run.
func (h *Handler) Validate(ctx context.Context, req admission.Request) admission.Response {
	r, done := h.prepare(ctx, req)
	if done != nil {
		return h.finish("validate", *done, nil)
	}
	denials := append([]string(nil), r.decision.Deny...)
	if class := r.pod.RuntimeClassName(); class != "" {
		rc, ok := r.snapshot.Classes[class]
		reach := r.reach.Classes[class]
		switch {
		case !ok:
			denials = append(denials, fmt.Sprintf("pod rejected: RuntimeClass %q not found", class))
		case !reach.Available:
			denials = append(denials, fmt.Sprintf("pod rejected: RuntimeClass %q (handler %q) cannot run this pod: %s", class, rc.Handler, reach.Reason))
		}
	}
	var resp admission.Response
	switch {
	case len(denials) == 0:
		resp = admission.Allowed("")
	case r.warn:
		resp = admission.Allowed("warn mode").WithWarnings(denials...)
	default:
		resp = admission.Denied(strings.Join(denials, "; and "))
	}
	if len(r.decision.Warn) > 0 {
		resp.Warnings = append(resp.Warnings, r.decision.Warn...) // as the pipeline returns decision.warn
	}
	return h.finish("validate", resp, r)
}

func (h *Handler) finish(name string, resp admission.Response, r *review) admission.Response {
	outcome := "allowed"
	switch {
	case !resp.Allowed:
		outcome = "denied"
	case len(resp.Patches) > 0:
		outcome = "mutated"
	}
	resp.AuditAnnotations = map[string]string{"decision": outcome}
	if r != nil {
		if r.decision.Class != "" {
			resp.AuditAnnotations["class"] = r.decision.Class
		}
		resp.AuditAnnotations["reasons"] = strings.Join(r.decision.Reasons, "; ")
		resp.AuditAnnotations["enforcement"] = map[bool]string{true: "warn", false: "enforce"}[r.warn]
	}
	h.admissions.WithLabelValues(name, outcome).Inc()
	return resp
}

// Serve runs the baseline webhook until ctx ends.
func Serve(ctx context.Context, o Options) error {
	p, err := godecide.Load()
	if err != nil {
		return err
	}
	view, err := cluster.LoadFiles(cluster.Options{}, o.ClusterFiles...)
	if err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	mgr, err := manager.New(&rest.Config{Host: "https://127.0.0.1:1"}, manager.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: o.MetricsBindAddress},
		HealthProbeBindAddress:  o.HealthProbeBindAddress,
		GracefulShutdownTimeout: ptr.To(5 * time.Second),
		WebhookServer: ctrlwebhook.NewServer(ctrlwebhook.Options{
			Host: o.BindAddress, Port: o.Port, CertDir: o.CertDir,
			TLSOpts: []func(*tls.Config){webhook.TLSOptions},
		}),
	})
	if err != nil {
		return err
	}
	h := NewHandler(p, view, o.Namespace, metrics.Registry)
	server := mgr.GetWebhookServer()
	server.Register(webhook.MutatePath, webhook.NewHandler(h.Mutate))
	server.Register(webhook.ValidatePath, webhook.NewHandler(h.Validate))
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("webhook", server.StartedChecker()); err != nil {
		return err
	}
	return mgr.Start(ctx)
}
