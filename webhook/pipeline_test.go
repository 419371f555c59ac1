package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

// answer is the whole AdmissionResponse a test expects, minus the UID (always the request's).
type answer struct {
	allowed bool
	code    int32
	reason  metav1.StatusReason
	message string
	// messageHas replaces message when the text comes from a library (JSON decoders): every
	// fragment must appear, in order.
	messageHas []string
	// patch is the exact JSON Patch, "" for none.
	patch    string
	warnings []string
	// audit is the whole set of audit annotations; a "reasons" of sameAsMessage stands for the
	// message, when that comes from a library.
	audit map[string]string
}

const sameAsMessage = "<the message>"

func allowed(message string, audit map[string]string) *answer {
	return &answer{allowed: true, code: http.StatusOK, message: message, audit: audit}
}

func denied(message string, audit map[string]string) *answer {
	return &answer{code: http.StatusForbidden, reason: metav1.StatusReasonForbidden, message: message, audit: audit}
}

func errored(code int32, message string, audit map[string]string) *answer {
	return &answer{code: code, message: message, audit: audit}
}

func (a *answer) withPatch(p string) *answer         { a.patch = p; return a }
func (a *answer) withWarnings(w ...string) *answer   { a.warnings = w; return a }
func (a *answer) withMessageHas(m ...string) *answer { a.message = ""; a.messageHas = m; return a }
func exempt(message string) map[string]string {
	return map[string]string{"decision": "allowed", "reasons": message}
}
func errorAudit(message string) map[string]string {
	return map[string]string{"decision": "error", "reasons": message}
}
func decided(decision, class, reasons, mode string) map[string]string {
	m := map[string]string{"decision": decision, "reasons": reasons, "enforcement": mode}
	if class != "" {
		m["class"] = class
	}
	return m
}

// The reasons the default policy gives, joined as the audit annotation carries them.
const (
	untrustedReasons = `trait untrusted: namespace "tenant-a" is runtimeguard.io/tenancy=untrusted; requires isolation >= 1; cheapest available class that provides isolation >= 1: "gvisor"`
	tenantBReasons   = `trait untrusted: namespace "tenant-b" is runtimeguard.io/tenancy=untrusted; requires isolation >= 1; cheapest available class that provides isolation >= 1: "gvisor"`
	financialReasons = `trait financial: namespace "payments" is runtimeguard.io/tenancy=financial; requires isolation >= 2; cheapest available class that provides isolation >= 2: "kata"`
	noTraitReasons   = "no trait requires a sandboxed or GPU runtime"
	gvisorPatch      = `[{"op":"add","path":"/spec/runtimeClassName","value":"gvisor"}]`
)

// registryPolicy is a custom module in package runtimeguard adding a deny and a warn rule to
// the default policy, as policies/README.md tells platform teams to.
const registryPolicy = `package runtimeguard

deny contains msg if {
	some c in input.pod.containers
	startswith(c.image, "docker.io/")
	msg := sprintf("pod rejected: container %q runs %q from docker.io; pull it through registry.example.com instead", [c.name, c.image])
}

warn contains msg if {
	some c in input.pod.initContainers
	startswith(c.image, "docker.io/")
	msg := sprintf("init container %q runs %q from docker.io, which will be denied from 2025-06-01", [c.name, c.image])
}
`

const warnOnlyPolicy = `package runtimeguard

warn contains msg if {
	some c in input.pod.initContainers
	startswith(c.image, "docker.io/")
	msg := sprintf("init container %q runs %q from docker.io, which will be denied from 2025-06-01", [c.name, c.image])
}
`

// undefinedPolicy defines the decision only for Pods labelled tier=gold: for the others it is
// undefined, which must never read as an allow.
const undefinedPolicy = `package runtimeguard

decision := {"class": "", "deny": [], "warn": [], "reasons": []} if input.pod.labels.tier == "gold"
`

const numberClassPolicy = `package runtimeguard

decision := {"class": 1, "deny": [], "warn": [], "reasons": []}
`

type admissionCase struct {
	name string
	// setup selects the Pipeline; review is a file in testdata/reviews, or body is sent as is.
	setup  setup
	review string
	body   []byte
	// What each webhook answers; nil skips that webhook.
	mutate, validate *answer
}

func admissionCases() []admissionCase {
	enforceGvisor := decided("mutated", "gvisor", untrustedReasons, "enforce")
	malformedObject := "cannot decode the Pod in request.object: "
	notSynced := "runtimeguard's cluster view is not synced yet; retry in a few seconds"
	undefinedErr := `runtimeguard could not decide for a pod in namespace "tenant-a": data.runtimeguard.decision is undefined for this input: a policy must always define it`
	return []admissionCase{
		// Injection and idempotence.
		{
			name:   "injects exactly /spec/runtimeClassName into an untrusted namespace's pod that names no class",
			review: "untrusted-no-class.json",
			mutate: allowed(`injected runtime class "gvisor"`, enforceGvisor).withPatch(gvisorPatch),
			// Only reached when the mutating webhook did not run: the pod would slip through.
			validate: denied(`pod rejected: namespace "tenant-a" is runtimeguard.io/tenancy=untrusted, which needs isolation >= 1; spec.runtimeClassName is not set; set it to "gvisor" (runtimeguard's mutating webhook does this when it is registered)`,
				decided("denied", "gvisor", untrustedReasons, "enforce")),
		},
		{
			name:     "leaves a pod that already names its class alone on reinvocation, and validates it",
			review:   "untrusted-gvisor-reinvocation.json",
			mutate:   allowed(`spec.runtimeClassName is already "gvisor"`, decided("allowed", "gvisor", untrustedReasons, "enforce")),
			validate: allowed("", decided("allowed", "gvisor", untrustedReasons, "enforce")),
		},
		{
			name:     "admits a pod naming a stronger class than it needs",
			review:   "untrusted-kata.json",
			mutate:   allowed(`spec.runtimeClassName is already "kata"`, decided("allowed", "gvisor", untrustedReasons, "enforce")),
			validate: allowed("", decided("allowed", "gvisor", untrustedReasons, "enforce")),
		},
		{
			name:   "treats an empty runtimeClassName as none: the add replaces it",
			review: "untrusted-empty-class.json",
			mutate: allowed(`injected runtime class "gvisor"`, enforceGvisor).withPatch(gvisorPatch),
			validate: denied(`pod rejected: namespace "tenant-a" is runtimeguard.io/tenancy=untrusted, which needs isolation >= 1; spec.runtimeClassName is not set; set it to "gvisor" (runtimeguard's mutating webhook does this when it is registered)`,
				decided("denied", "gvisor", untrustedReasons, "enforce")),
		},
		{
			name:   "denies a financial pod naming a class weaker than its namespace needs",
			review: "financial-gvisor.json",
			mutate: allowed(`spec.runtimeClassName is already "gvisor"`, decided("allowed", "kata", financialReasons, "enforce")),
			validate: denied(`pod rejected: namespace "payments" is runtimeguard.io/tenancy=financial, which needs isolation >= 2 (runtime class "kata" or stronger); spec.runtimeClassName is "gvisor"; remove spec.runtimeClassName to let runtimeguard choose, or set it to "kata"`,
				decided("denied", "kata", financialReasons, "enforce")),
		},
		// Product guarantees on the class a pod names.
		{
			name:   "denies a pod naming a RuntimeClass that does not exist, listing the ones that do",
			review: "default-wasm.json",
			mutate: allowed(`spec.runtimeClassName is already "wasm"`, decided("allowed", "", noTraitReasons, "enforce")),
			validate: denied(`pod rejected: RuntimeClass "wasm" not found; existing runtime classes: gvisor, kata, nvidia, wasm-spin; create it or fix spec.runtimeClassName`,
				decided("denied", "", noTraitReasons, "enforce")),
		},
		{
			name:   "denies a pod whose class's handler no node advertises, naming the handler and node counts",
			review: "default-wasm-spin.json",
			validate: denied(`pod rejected: RuntimeClass "wasm-spin" (handler "spin"): no Ready, schedulable node advertises handler "spin" (0 of 3 nodes); `+
				`run the handler on a node (its CRI must report it in status.runtimeHandlers, or label the node runtime.example.com/wasm=true) or choose another runtime class`,
				decided("denied", "", noTraitReasons, "enforce")),
		},
		{
			name:     "admits a pod in an unconstrained namespace naming an available class",
			review:   "default-gvisor.json",
			mutate:   allowed(`spec.runtimeClassName is already "gvisor"`, decided("allowed", "", noTraitReasons, "enforce")),
			validate: allowed("", decided("allowed", "", noTraitReasons, "enforce")),
		},
		{
			name:   "admits with a warning a class whose availability nothing can tell",
			setup:  setup{clusterFile: "testdata/cluster-silent.yaml"},
			review: "default-gvisor.json",
			validate: allowed("", decided("warned", "", noTraitReasons, "enforce")).withWarnings(
				`RuntimeClass "gvisor" (handler "runsc"): cannot tell whether any node runs handler "runsc": no node reports status.runtimeHandlers and the RuntimeClass has no scheduling.nodeSelector (2 nodes); admitted anyway (runtimeguard --require-advertised-handlers would deny)`),
		},
		{
			name:   "denies a class whose availability nothing can tell when RequireAdvertisedHandlers is set",
			setup:  setup{clusterFile: "testdata/cluster-silent.yaml", view: cluster.Options{RequireAdvertisedHandlers: true}},
			review: "default-gvisor.json",
			validate: denied(`pod rejected: RuntimeClass "gvisor" (handler "runsc"): cannot tell whether any node runs handler "runsc": no node reports status.runtimeHandlers and the RuntimeClass has no scheduling.nodeSelector (2 nodes); --require-advertised-handlers is set; `+
				`run the handler on a node (its CRI must report it in status.runtimeHandlers, or label the node and give the RuntimeClass a scheduling.nodeSelector) or choose another runtime class`,
				decided("denied", "", noTraitReasons, "enforce")),
		},
		{
			name:   "denies a pod whose nodeSelector contradicts its class's, saying how to fix it",
			review: "default-gvisor-conflicting-selector.json",
			validate: denied(`pod rejected: conflict: runtimeClass.scheduling.nodeSelector[sandbox.runtimeguard.io/gvisor] = true; pod.spec.nodeSelector[sandbox.runtimeguard.io/gvisor] = false; `+
				`RuntimeClass "gvisor" only runs on nodes labelled sandbox.runtimeguard.io/gvisor=true, so remove sandbox.runtimeguard.io/gvisor from spec.nodeSelector or choose another runtime class`,
				decided("denied", "", noTraitReasons, "enforce")),
		},
		// Warn mode.
		{
			name:   "in global warn mode injects nothing and turns denials into warnings",
			setup:  setup{enforcement: Warn},
			review: "untrusted-no-class.json",
			mutate: allowed(`warn mode: would inject runtime class "gvisor"`, decided("allowed", "gvisor", untrustedReasons, "warn")),
			validate: allowed("warn mode", decided("warned", "gvisor", untrustedReasons, "warn")).withWarnings(
				`runtimeguard warn mode, would deny: namespace "tenant-a" is runtimeguard.io/tenancy=untrusted, which needs isolation >= 1; spec.runtimeClassName is not set; set it to "gvisor" (runtimeguard's mutating webhook does this when it is registered)`),
		},
		{
			name:   "a namespace labelled runtimeguard.io/enforcement=warn is in warn mode under global enforce",
			review: "warn-namespace-no-class.json",
			mutate: allowed(`warn mode: would inject runtime class "gvisor"`, decided("allowed", "gvisor", tenantBReasons, "warn")),
			validate: allowed("warn mode", decided("warned", "gvisor", tenantBReasons, "warn")).withWarnings(
				`runtimeguard warn mode, would deny: namespace "tenant-b" is runtimeguard.io/tenancy=untrusted, which needs isolation >= 1; spec.runtimeClassName is not set; set it to "gvisor" (runtimeguard's mutating webhook does this when it is registered)`),
		},
		{
			name:   "in warn mode a product-guarantee denial is a warning too",
			setup:  setup{enforcement: Warn},
			review: "default-wasm.json",
			validate: allowed("warn mode", decided("warned", "", noTraitReasons, "warn")).withWarnings(
				`runtimeguard warn mode, would deny: RuntimeClass "wasm" not found; existing runtime classes: gvisor, kata, nvidia, wasm-spin; create it or fix spec.runtimeClassName`),
		},
		// Exemptions: each pod carries the untrusted workload label and would otherwise get gvisor.
		{
			name:     "exempts kube-system",
			review:   "kube-system-untrusted.json",
			mutate:   allowed(`namespace "kube-system" is exempt`, exempt(`namespace "kube-system" is exempt`)),
			validate: allowed(`namespace "kube-system" is exempt`, exempt(`namespace "kube-system" is exempt`)),
		},
		{
			name:     "exempts kube-system even before the cluster view syncs",
			setup:    setup{unsynced: true},
			review:   "kube-system-untrusted.json",
			mutate:   allowed(`namespace "kube-system" is exempt`, exempt(`namespace "kube-system" is exempt`)),
			validate: allowed(`namespace "kube-system" is exempt`, exempt(`namespace "kube-system" is exempt`)),
		},
		{
			name:     "exempts runtimeguard's own namespace so the webhook can always restart",
			review:   "own-namespace-untrusted.json",
			mutate:   allowed(`namespace "runtimeguard" is exempt`, exempt(`namespace "runtimeguard" is exempt`)),
			validate: allowed(`namespace "runtimeguard" is exempt`, exempt(`namespace "runtimeguard" is exempt`)),
		},
		{
			name:     "exempts a namespace labelled runtimeguard.io/ignore=true",
			review:   "ignored-namespace-untrusted.json",
			mutate:   allowed(`namespace "legacy" is labelled runtimeguard.io/ignore=true`, exempt(`namespace "legacy" is labelled runtimeguard.io/ignore=true`)),
			validate: allowed(`namespace "legacy" is labelled runtimeguard.io/ignore=true`, exempt(`namespace "legacy" is labelled runtimeguard.io/ignore=true`)),
		},
		{
			name:     "exempts mirror pods, which the kubelet manages",
			review:   "mirror-pod-untrusted.json",
			mutate:   allowed("mirror pods are managed by the kubelet and exempt", exempt("mirror pods are managed by the kubelet and exempt")),
			validate: allowed("mirror pods are managed by the kubelet and exempt", exempt("mirror pods are managed by the kubelet and exempt")),
		},
		// Requests that are not Pod CREATEs.
		{
			name:     "ignores other kinds",
			review:   "configmap-create.json",
			mutate:   allowed("runtimeguard reviews only core/v1 Pods, not v1/ConfigMap", exempt("runtimeguard reviews only core/v1 Pods, not v1/ConfigMap")),
			validate: allowed("runtimeguard reviews only core/v1 Pods, not v1/ConfigMap", exempt("runtimeguard reviews only core/v1 Pods, not v1/ConfigMap")),
		},
		{
			// workload_test.go covers workloads; this is one as the API server sends it.
			name:   "reviews a deployment by its pod template and never mutates it",
			review: "deployment-create.json",
			mutate: allowed("runtimeguard never mutates workloads; the runtime class is injected into their pods",
				exempt("runtimeguard never mutates workloads; the runtime class is injected into their pods")),
			validate: allowed(`deployment "checkout": its pods would be admitted with runtime class "gvisor"`,
				map[string]string{"decision": "allowed", "class": "gvisor", "reasons": `deployment "checkout": its pods would be admitted with runtime class "gvisor"`}),
		},
		{
			name:     "ignores subresources such as ephemeralcontainers",
			review:   "ephemeral-containers-update.json",
			mutate:   allowed("runtimeguard ignores subresources", exempt("runtimeguard ignores subresources")),
			validate: allowed("runtimeguard ignores subresources", exempt("runtimeguard ignores subresources")),
		},
		{
			name:     "ignores UPDATE",
			review:   "pod-update.json",
			mutate:   allowed("runtimeguard reviews only CREATE", exempt("runtimeguard reviews only CREATE")),
			validate: allowed("runtimeguard reviews only CREATE", exempt("runtimeguard reviews only CREATE")),
		},
		{
			name:     "ignores DELETE",
			review:   "pod-delete.json",
			mutate:   allowed("runtimeguard reviews only CREATE", exempt("runtimeguard reviews only CREATE")),
			validate: allowed("runtimeguard reviews only CREATE", exempt("runtimeguard reviews only CREATE")),
		},
		// Malformed requests: an error answer, never a panic and never an allow.
		{
			name:     "answers an empty body with 400",
			body:     []byte{},
			mutate:   errored(http.StatusBadRequest, "request body is empty", nil),
			validate: errored(http.StatusBadRequest, "request body is empty", nil),
		},
		{
			name:     "answers a body that is not JSON with 400",
			body:     []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1",`),
			mutate:   errored(http.StatusBadRequest, "", nil).withMessageHas("cannot decode the AdmissionReview: the JSON is truncated"),
			validate: errored(http.StatusBadRequest, "", nil).withMessageHas("cannot decode the AdmissionReview: the JSON is truncated"),
		},
		{
			name:     "answers an AdmissionReview without request with 400",
			review:   "request-missing.json",
			mutate:   errored(http.StatusBadRequest, "the AdmissionReview holds no request", errorAudit("the AdmissionReview holds no request")),
			validate: errored(http.StatusBadRequest, "the AdmissionReview holds no request", errorAudit("the AdmissionReview holds no request")),
		},
		{
			name:     "answers a Pod CREATE without object with 400",
			review:   "object-missing.json",
			mutate:   errored(http.StatusBadRequest, "the AdmissionReview holds no Pod in request.object", errorAudit("the AdmissionReview holds no Pod in request.object")),
			validate: errored(http.StatusBadRequest, "the AdmissionReview holds no Pod in request.object", errorAudit("the AdmissionReview holds no Pod in request.object")),
		},
		{
			name:     "answers an object that is a string with 400",
			review:   "object-garbage.json",
			mutate:   errored(http.StatusBadRequest, "", errorAudit(sameAsMessage)).withMessageHas(malformedObject, "string"),
			validate: errored(http.StatusBadRequest, "", errorAudit(sameAsMessage)).withMessageHas(malformedObject, "string"),
		},
		{
			name:     "answers an object that is not shaped like a Pod with 400",
			review:   "object-not-a-pod.json",
			mutate:   errored(http.StatusBadRequest, "", errorAudit(sameAsMessage)).withMessageHas(malformedObject, "containers"),
			validate: errored(http.StatusBadRequest, "", errorAudit(sameAsMessage)).withMessageHas(malformedObject, "containers"),
		},
		// Failures of runtimeguard itself.
		{
			name:     "answers 503 until the cluster view is synced",
			setup:    setup{unsynced: true},
			review:   "untrusted-no-class.json",
			mutate:   errored(http.StatusServiceUnavailable, notSynced, errorAudit(notSynced)),
			validate: errored(http.StatusServiceUnavailable, notSynced, errorAudit(notSynced)),
		},
		{
			name:     "a policy whose decision is undefined is a 500 in enforce mode, never an allow",
			setup:    setup{policy: map[string]string{"policy.rego": undefinedPolicy}},
			review:   "untrusted-no-class.json",
			mutate:   errored(http.StatusInternalServerError, undefinedErr, errorAudit(undefinedErr)),
			validate: errored(http.StatusInternalServerError, undefinedErr, errorAudit(undefinedErr)),
		},
		{
			name:   "a policy returning the wrong shape is a 500 in enforce mode",
			setup:  setup{policy: map[string]string{"policy.rego": numberClassPolicy}},
			review: "untrusted-no-class.json",
			mutate: errored(http.StatusInternalServerError,
				`runtimeguard could not decide for a pod in namespace "tenant-a": policy returned the wrong shape: decision.class is a number, want a string`,
				errorAudit(`runtimeguard could not decide for a pod in namespace "tenant-a": policy returned the wrong shape: decision.class is a number, want a string`)),
			validate: errored(http.StatusInternalServerError,
				`runtimeguard could not decide for a pod in namespace "tenant-a": policy returned the wrong shape: decision.class is a number, want a string`,
				errorAudit(`runtimeguard could not decide for a pod in namespace "tenant-a": policy returned the wrong shape: decision.class is a number, want a string`)),
		},
		{
			name:   "a policy that fails is allowed with a warning in warn mode",
			setup:  setup{policy: map[string]string{"policy.rego": undefinedPolicy}, enforcement: Warn},
			review: "untrusted-no-class.json",
			mutate: allowed("policy failed in warn mode", map[string]string{"decision": "warned", "reasons": "policy failed in warn mode"}).withWarnings(
				"runtimeguard could not decide (warn mode, allowed): data.runtimeguard.decision is undefined for this input: a policy must always define it"),
			validate: allowed("policy failed in warn mode", map[string]string{"decision": "warned", "reasons": "policy failed in warn mode"}).withWarnings(
				"runtimeguard could not decide (warn mode, allowed): data.runtimeguard.decision is undefined for this input: a policy must always define it"),
		},
		{
			name:   "a policy that fails is allowed with a warning in a warn-mode namespace",
			setup:  setup{policy: map[string]string{"policy.rego": numberClassPolicy}},
			review: "warn-namespace-no-class.json",
			validate: allowed("policy failed in warn mode", map[string]string{"decision": "warned", "reasons": "policy failed in warn mode"}).withWarnings(
				"runtimeguard could not decide (warn mode, allowed): policy returned the wrong shape: decision.class is a number, want a string"),
		},
		// Custom policy rules.
		{
			name:   "a deny rule from a custom module denies, and its warn rule warns",
			setup:  setup{extra: map[string]string{"registry.rego": registryPolicy}},
			review: "untrusted-gvisor-reinvocation.json",
			mutate: allowed(`spec.runtimeClassName is already "gvisor"`, decided("allowed", "gvisor", untrustedReasons, "enforce")),
			validate: denied(`pod rejected: container "istio-proxy" runs "docker.io/istio/proxyv2:1.24.2" from docker.io; pull it through registry.example.com instead`,
				decided("denied", "gvisor", untrustedReasons, "enforce")).withWarnings(
				`init container "istio-init" runs "docker.io/istio/proxyv2:1.24.2" from docker.io, which will be denied from 2025-06-01`),
		},
		{
			name:   "a custom deny rule and a product guarantee both speak",
			setup:  setup{extra: map[string]string{"registry.rego": registryPolicy}},
			review: "default-wasm.json",
			// registry.example.com images: only the missing class denies.
			validate: denied(`pod rejected: RuntimeClass "wasm" not found; existing runtime classes: gvisor, kata, nvidia, wasm-spin; create it or fix spec.runtimeClassName`,
				decided("denied", "", noTraitReasons, "enforce")),
		},
		{
			name:   "a warn rule alone admits with a warning",
			setup:  setup{extra: map[string]string{"warn.rego": warnOnlyPolicy}},
			review: "untrusted-gvisor-reinvocation.json",
			validate: allowed("", decided("warned", "gvisor", untrustedReasons, "enforce")).withWarnings(
				`init container "istio-init" runs "docker.io/istio/proxyv2:1.24.2" from docker.io, which will be denied from 2025-06-01`),
		},
	}
}

func TestAdmission(t *testing.T) {
	for _, tc := range admissionCases() {
		t.Run(tc.name, func(t *testing.T) {
			a := newPipeline(t, tc.setup)
			mutateURL, validateURL := serve(t, a)
			body := tc.body
			if tc.review != "" {
				body = readReview(t, tc.review)
			}
			for _, hook := range []struct {
				name string
				url  string
				want *answer
			}{{"mutate", mutateURL, tc.mutate}, {"validate", validateURL, tc.validate}} {
				if hook.want == nil {
					continue
				}
				status, review, raw := post(t, hook.url, body)
				if status != http.StatusOK {
					t.Errorf("%s: HTTP %d, want 200 (the outcome goes in response.result.code)", hook.name, status)
				}
				checkAnswer(t, hook.name, body, review, raw, hook.want)
			}
		})
	}
}

// checkAnswer compares the whole response with want.
func checkAnswer(t *testing.T, hook string, body []byte, review *admissionv1.AdmissionReview, raw []byte, want *answer) {
	t.Helper()
	if review.APIVersion != "admission.k8s.io/v1" || review.Kind != "AdmissionReview" {
		t.Errorf("%s: answered %s %s, want admission.k8s.io/v1 AdmissionReview", hook, review.APIVersion, review.Kind)
	}
	if review.Request != nil {
		t.Errorf("%s: the answer echoes the request", hook)
	}
	got := review.Response
	if got == nil {
		t.Fatalf("%s: no response in\n%s", hook, raw)
	}
	var sent struct {
		Request *struct {
			UID types.UID `json:"uid"`
		} `json:"request"`
	}
	_ = json.Unmarshal(body, &sent)
	expected := admissionv1.AdmissionResponse{
		Allowed:          want.allowed,
		Result:           &metav1.Status{Code: want.code, Reason: want.reason, Message: want.message},
		Warnings:         want.warnings,
		AuditAnnotations: want.audit,
	}
	if sent.Request != nil {
		expected.UID = sent.Request.UID
	}
	if want.patch != "" {
		expected.Patch = []byte(want.patch)
		pt := admissionv1.PatchTypeJSONPatch
		expected.PatchType = &pt
	}
	if want.messageHas != nil && got.Result != nil {
		rest := got.Result.Message
		for _, frag := range want.messageHas {
			i := strings.Index(rest, frag)
			if i < 0 {
				t.Errorf("%s: message %q lacks %q", hook, got.Result.Message, frag)
				break
			}
			rest = rest[i+len(frag):]
		}
		expected.Result.Message = got.Result.Message
	}
	if want.audit["reasons"] == sameAsMessage && got.Result != nil {
		expected.AuditAnnotations = map[string]string{}
		for k, v := range want.audit {
			expected.AuditAnnotations[k] = v
		}
		expected.AuditAnnotations["reasons"] = got.Result.Message
	}
	if !reflect.DeepEqual(*got, expected) {
		t.Errorf("%s: response\n got %s\nwant %s", hook, prettyResponse(got), prettyResponse(&expected))
	}
}

// prettyResponse prints a response with its patch decoded, so that diffs read well.
func prettyResponse(r *admissionv1.AdmissionResponse) string {
	type shown struct {
		*admissionv1.AdmissionResponse
		Patch json.RawMessage `json:"patch,omitempty"`
	}
	return prettyJSON(shown{AdmissionResponse: r, Patch: r.Patch})
}

// The patch the mutating webhook answers must apply to the pod it was given and yield a pod
// the validating webhook admits: the API server calls them in that order.
func TestMutateThenValidate(t *testing.T) {
	for _, fixture := range []string{"untrusted-no-class.json", "untrusted-empty-class.json"} {
		t.Run(fixture, func(t *testing.T) {
			a := newPipeline(t, setup{})
			mutateURL, validateURL := serve(t, a)
			body := readReview(t, fixture)
			_, mutated, _ := post(t, mutateURL, body)
			if !mutated.Response.Allowed || len(mutated.Response.Patch) == 0 {
				t.Fatalf("mutate did not patch: %s", prettyResponse(mutated.Response))
			}
			var review map[string]any
			if err := json.Unmarshal(body, &review); err != nil {
				t.Fatal(err)
			}
			podJSON, _ := json.Marshal(review["request"].(map[string]any)["object"])
			patched, err := applyPatch(podJSON, mutated.Response.Patch)
			if err != nil {
				t.Fatalf("the patch does not apply to the pod it was computed for: %v", err)
			}
			var pod map[string]any
			_ = json.Unmarshal(patched, &pod)
			if got := pod["spec"].(map[string]any)["runtimeClassName"]; got != "gvisor" {
				t.Errorf("patched spec.runtimeClassName = %v, want gvisor", got)
			}
			review["request"].(map[string]any)["object"] = pod
			body, _ = json.Marshal(review)
			_, validated, raw := post(t, validateURL, body)
			checkAnswer(t, "validate after mutate", body, validated, raw, allowed("", decided("allowed", "gvisor", untrustedReasons, "enforce")))

			// Reinvocation of the mutating webhook on the patched pod changes nothing more.
			_, again, raw := post(t, mutateURL, body)
			checkAnswer(t, "mutate again", body, again, raw,
				allowed(`spec.runtimeClassName is already "gvisor"`, decided("allowed", "gvisor", untrustedReasons, "enforce")))
		})
	}
}

// A Namespace created a moment ago may not be in the informer yet: the view's getter supplies
// it, and a getter failure is an error answer, not a decision without the namespace's labels.
func TestAdmissionReadsANamespaceTheInformerHasNotSeen(t *testing.T) {
	tenantA := &cluster.Namespace{Name: "tenant-a", Labels: map[string]string{"runtimeguard.io/tenancy": "untrusted"}}
	tests := []struct {
		name   string
		getter func(context.Context, string) (*cluster.Namespace, error)
		want   *answer
	}{
		{
			name:   "the getter's namespace labels decide",
			getter: func(context.Context, string) (*cluster.Namespace, error) { return tenantA, nil },
			want:   allowed(`injected runtime class "gvisor"`, decided("mutated", "gvisor", untrustedReasons, "enforce")).withPatch(gvisorPatch),
		},
		{
			name:   "a namespace that exists nowhere has no labels, so no trait",
			getter: func(context.Context, string) (*cluster.Namespace, error) { return nil, nil },
			want:   allowed("no runtime class to inject", decided("allowed", "", noTraitReasons, "enforce")),
		},
		{
			name: "a getter error is a 500",
			getter: func(context.Context, string) (*cluster.Namespace, error) {
				return nil, errors.New("etcdserver: request timed out")
			},
			want: errored(http.StatusInternalServerError, `reading namespace "tenant-a": etcdserver: request timed out`,
				errorAudit(`reading namespace "tenant-a": etcdserver: request timed out`)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newPipeline(t, setup{view: cluster.Options{NamespaceGetter: tt.getter}})
			a.cfg.View.DeleteNamespace("tenant-a")
			mutateURL, _ := serve(t, a)
			body := readReview(t, "untrusted-no-class.json")
			_, got, raw := post(t, mutateURL, body)
			checkAnswer(t, "mutate", body, got, raw, tt.want)
		})
	}
}

func applyPatch(doc, patch []byte) ([]byte, error) {
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		return nil, err
	}
	return p.Apply(doc)
}
