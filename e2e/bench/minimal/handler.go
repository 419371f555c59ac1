package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/runtimeguard/runtimeguard/e2e/bench/internal/godecide"
	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// maxBody is the API server's bound on a review (controller-runtime's limit too).
const maxBody = 7 << 20

// reviewIn is everything the decision reads from an AdmissionReview, and nothing else:
// encoding/json skips the rest without building it.
type reviewIn struct {
	APIVersion string `json:"apiVersion"`
	Request    *struct {
		UID         string                  `json:"uid"`
		Kind        metav1.GroupVersionKind `json:"kind"`
		SubResource string                  `json:"subResource"`
		Namespace   string                  `json:"namespace"`
		Operation   string                  `json:"operation"`
		Object      *podIn                  `json:"object"`
	} `json:"request"`
}

type podIn struct {
	Metadata struct {
		Namespace   string            `json:"namespace"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"` // for the mirror-Pod exemption
	} `json:"metadata"`
	Spec struct {
		RuntimeClassName *string           `json:"runtimeClassName"`
		NodeName         string            `json:"nodeName"`
		NodeSelector     map[string]string `json:"nodeSelector"`
		Affinity         *struct {
			NodeAffinity *struct {
				Required *corev1.NodeSelector `json:"requiredDuringSchedulingIgnoredDuringExecution"`
			} `json:"nodeAffinity"`
		} `json:"affinity"`
		Tolerations    []corev1.Toleration `json:"tolerations"`
		Containers     []containerIn       `json:"containers"`
		InitContainers []containerIn       `json:"initContainers"`
		ResourceClaims []cluster.ClaimRef  `json:"resourceClaims"`
	} `json:"spec"`
}

type containerIn struct {
	Name      string `json:"name"`
	Resources struct {
		Requests map[string]string `json:"requests"`
		Limits   map[string]string `json:"limits"`
	} `json:"resources"`
}

// handler answers one webhook path with the Go decision.
type handler struct {
	policy    *godecide.Policy
	view      *cluster.View
	namespace string // exempt, like kube-system
	validate  bool
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		answer(w, "", "", errored(http.StatusBadRequest, fmt.Errorf("contentType=%s, expected application/json", ct)))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		answer(w, "", "", errored(http.StatusBadRequest, fmt.Errorf("reading the request body: %w", err)))
		return
	}
	var in reviewIn
	if err := json.Unmarshal(body, &in); err != nil {
		answer(w, "", "", errored(http.StatusBadRequest, fmt.Errorf("cannot decode the AdmissionReview: %w", err)))
		return
	}
	if in.Request == nil {
		answer(w, in.APIVersion, "", errored(http.StatusBadRequest, errors.New("the AdmissionReview holds no request")))
		return
	}
	answer(w, in.APIVersion, in.Request.UID, h.review(r.Context(), &in))
}

// answer writes the AdmissionReview answer, in the version asked (v1 or v1beta1, same shape).
func answer(w http.ResponseWriter, apiVersion, uid string, resp *admissionv1.AdmissionResponse) {
	if apiVersion != "admission.k8s.io/v1beta1" {
		apiVersion = "admission.k8s.io/v1"
	}
	resp.UID = types.UID(uid)
	b, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: "AdmissionReview"}, Response: resp})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

var podKind = metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}

// review answers like the baseline (e2e/bench/internal/baseline): the same exemptions, the
// same decision, the same patch, denials, warnings and audit annotations.
func (h *handler) review(ctx context.Context, in *reviewIn) *admissionv1.AdmissionResponse {
	req := in.Request
	switch {
	case req.Kind != podKind:
		return h.finish(allowed("the minimal webhook reviews only core/v1 Pods"), nil, false)
	case req.SubResource != "":
		return h.finish(allowed("the minimal webhook ignores subresources"), nil, false)
	case req.Operation != string(admissionv1.Create):
		return h.finish(allowed("the minimal webhook reviews only CREATE"), nil, false)
	case req.Namespace == "kube-system" || (h.namespace != "" && req.Namespace == h.namespace):
		return h.finish(allowed(fmt.Sprintf("namespace %q is exempt", req.Namespace)), nil, false)
	case req.Object == nil:
		return h.finish(errored(http.StatusBadRequest, errors.New("the AdmissionReview holds no Pod in request.object")), nil, false)
	}
	in.Request.Object.Metadata.Namespace = cmp.Or(req.Object.Metadata.Namespace, req.Namespace)
	pod, placement := req.Object.policyPod()
	if _, ok := req.Object.Metadata.Annotations["kubernetes.io/config.mirror"]; ok {
		return h.finish(allowed("mirror pods are exempt"), nil, false)
	}
	if err := placement.Validate(); err != nil {
		return h.finish(errored(http.StatusBadRequest, fmt.Errorf("pod placement is invalid: %w", err)), nil, false)
	}
	if !h.view.Synced() {
		return h.finish(errored(http.StatusServiceUnavailable, errors.New("cluster view not synced")), nil, false)
	}
	ns, _, err := h.view.Namespace(ctx, req.Namespace)
	if err != nil {
		return h.finish(errored(http.StatusInternalServerError, err), nil, false)
	}
	if ns.Labels[webhook.IgnoreLabel] == "true" {
		return h.finish(allowed(fmt.Sprintf("namespace %q is labelled %s=true", req.Namespace, webhook.IgnoreLabel)), nil, false)
	}
	snap, reach := h.view.Reach(placement, pod.RuntimeClassName())
	claims := h.view.Claims().Resolve(ctx, pod.Metadata.Namespace, pod.Spec.ResourceClaims)
	d, err := h.policy.Decide(ns, pod, snap, reach, claims)
	if err != nil {
		return h.finish(errored(http.StatusInternalServerError, err), nil, false)
	}
	warn := ns.Labels[webhook.EnforcementLabel] == string(webhook.Warn)
	named := pod.RuntimeClassName()
	if !h.validate {
		resp := allowed("")
		switch {
		case named != "":
			resp.Result.Message = fmt.Sprintf("spec.runtimeClassName is already %q", named)
		case d.Class == "":
			resp.Result.Message = "no runtime class to inject"
		case warn:
			resp.Result.Message = fmt.Sprintf("warn mode: would inject runtime class %q", d.Class)
		default:
			resp.Result.Message = fmt.Sprintf("injected runtime class %q", d.Class)
			resp.Patch = classPatch(d.Class)
			resp.PatchType = ptr.To(admissionv1.PatchTypeJSONPatch)
		}
		return h.finish(resp, d, warn)
	}
	denials := append([]string(nil), d.Deny...)
	if named != "" {
		rc, ok := snap.Classes[named]
		switch r := reach.Classes[named]; {
		case !ok:
			denials = append(denials, fmt.Sprintf("pod rejected: RuntimeClass %q not found", named))
		case !r.Available:
			denials = append(denials, fmt.Sprintf("pod rejected: RuntimeClass %q (handler %q) cannot run this pod: %s", named, rc.Handler, r.Reason))
		}
	}
	var resp *admissionv1.AdmissionResponse
	switch {
	case len(denials) == 0:
		resp = allowed("")
	case warn:
		resp = allowed("warn mode")
		resp.Warnings = denials
	default:
		resp = &admissionv1.AdmissionResponse{Result: &metav1.Status{Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
			Message: strings.Join(denials, "; and ")}}
	}
	resp.Warnings = append(resp.Warnings, d.Warn...)
	return h.finish(resp, d, warn)
}

// policyPod is the Pod as the Go decision reads it, and where it asks to run.
func (p *podIn) policyPod() (*policy.Pod, *cluster.Placement) {
	pod := &policy.Pod{}
	pod.Metadata.Namespace, pod.Metadata.Labels = p.Metadata.Namespace, p.Metadata.Labels
	pod.Spec.RuntimeClassName, pod.Spec.NodeName, pod.Spec.NodeSelector = p.Spec.RuntimeClassName, p.Spec.NodeName, p.Spec.NodeSelector
	pod.Spec.ResourceClaims = p.Spec.ResourceClaims
	pod.Spec.Containers, pod.Spec.InitContainers = containers(p.Spec.Containers), containers(p.Spec.InitContainers)
	placement := &cluster.Placement{NodeName: p.Spec.NodeName, NodeSelector: p.Spec.NodeSelector, Tolerations: p.Spec.Tolerations}
	if a := p.Spec.Affinity; a != nil && a.NodeAffinity != nil {
		placement.Affinity = a.NodeAffinity.Required
	}
	return pod, placement
}

// containers keeps what the decision reads of a container: its name and its extended resources
// (names with a "/", such as nvidia.com/gpu); cpu and memory never matter.
func containers(in []containerIn) []policy.Container {
	if len(in) == 0 {
		return nil
	}
	out := make([]policy.Container, len(in))
	for i, c := range in {
		out[i].Name = c.Name
		out[i].Resources.Requests = extended(c.Resources.Requests)
		out[i].Resources.Limits = extended(c.Resources.Limits)
	}
	return out
}

func extended(list map[string]string) map[string]policy.Quantity {
	var out map[string]policy.Quantity
	for name, q := range list {
		if strings.Contains(name, "/") {
			if out == nil {
				out = map[string]policy.Quantity{}
			}
			out[name] = policy.Quantity(q)
		}
	}
	return out
}

// finish adds the baseline's audit annotations.
func (h *handler) finish(resp *admissionv1.AdmissionResponse, d *godecide.Decision, warn bool) *admissionv1.AdmissionResponse {
	outcome := "allowed"
	switch {
	case !resp.Allowed:
		outcome = "denied"
	case len(resp.Patch) > 0:
		outcome = "mutated"
	}
	resp.AuditAnnotations = map[string]string{"decision": outcome}
	if d != nil {
		if d.Class != "" {
			resp.AuditAnnotations["class"] = d.Class
		}
		resp.AuditAnnotations["reasons"] = strings.Join(d.Reasons, "; ")
		resp.AuditAnnotations["enforcement"] = "enforce"
		if warn {
			resp.AuditAnnotations["enforcement"] = "warn"
		}
	}
	return resp
}

func allowed(message string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Allowed: true, Result: &metav1.Status{Code: http.StatusOK, Message: message}}
}

func errored(code int32, err error) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Result: &metav1.Status{Code: code, Message: err.Error()}}
}

// classPatch is the JSON patch that sets spec.runtimeClassName.
func classPatch(class string) []byte {
	b, _ := json.Marshal([]struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value string `json:"value"`
	}{{"add", "/spec/runtimeClassName", class}})
	return b
}
