package webhook

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/runtimeguard/runtimeguard/webhook/manifest"
)

// podTemplate is a Pod template naming class (none when "").
func podTemplate(class string) map[string]any {
	spec := map[string]any{"containers": []any{map[string]any{"name": "app", "image": "registry.example.com/app:1"}}}
	if class != "" {
		spec["runtimeClassName"] = class
	}
	return map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "ledger"}}, "spec": spec}
}

// workloadObject is a workload of kind (Deployment, StatefulSet, CronJob...) around template.
func workloadObject(apiVersion, kind, name string, template any) map[string]any {
	spec := map[string]any{"replicas": 2, "template": template}
	if kind == "CronJob" {
		spec = map[string]any{"schedule": "@hourly", "jobTemplate": map[string]any{"spec": map[string]any{"template": template}}}
	}
	return map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": name}, "spec": spec}
}

// workloadReviewBody is the AdmissionReview the API server sends for obj (old: UPDATE).
func workloadReviewBody(t *testing.T, group, resource, namespace string, obj, old map[string]any) []byte {
	t.Helper()
	apiVersion, kind := obj["apiVersion"].(string), obj["kind"].(string)
	version := apiVersion[strings.LastIndex(apiVersion, "/")+1:]
	req := map[string]any{
		"uid":       "7f0b2a1c-workload",
		"kind":      map[string]any{"group": group, "version": version, "kind": kind},
		"resource":  map[string]any{"group": group, "version": version, "resource": resource},
		"name":      obj["metadata"].(map[string]any)["name"],
		"namespace": namespace,
		"operation": "CREATE",
		"userInfo":  map[string]any{"username": "alice"},
		"object":    obj,
	}
	if old != nil {
		req["operation"] = "UPDATE"
		req["oldObject"] = old
	}
	b, err := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWorkloads(t *testing.T) {
	const (
		financialGvisor = `its pods would be rejected: namespace "payments" is runtimeguard.io/tenancy=financial, which needs isolation >= 2 (runtime class "kata" or stronger); spec.runtimeClassName is "gvisor"; remove spec.runtimeClassName to let runtimeguard choose, or set it to "kata"`
		wasmMissing     = `its pods would be rejected: RuntimeClass "wasm" not found; existing runtime classes: gvisor, kata, nvidia, wasm-spin; create it or fix spec.runtimeClassName`
	)
	deployment := func(name, class string) map[string]any {
		return workloadObject("apps/v1", "Deployment", name, podTemplate(class))
	}
	scaled := deployment("ledger", "gvisor")
	scaled["spec"].(map[string]any)["replicas"] = 5
	changed := deployment("ledger", "gvisor")
	changed["spec"].(map[string]any)["template"].(map[string]any)["metadata"] = map[string]any{"labels": map[string]any{"app": "ledger", "v": "2"}}
	cases := []struct {
		name  string
		setup setup
		// group, resource and namespace of the review; old makes it an UPDATE.
		group, resource, namespace string
		obj, old                   map[string]any
		// mutate: what the mutating face answers (nil: not asked).
		mutate, validate *answer
	}{
		{
			name:  "denies a deployment whose template names a class too weak for its namespace, with the pod's reasons",
			group: "apps", resource: "deployments", namespace: "payments", obj: deployment("ledger", "gvisor"),
			mutate: allowed("runtimeguard never mutates workloads; the runtime class is injected into their pods",
				exempt("runtimeguard never mutates workloads; the runtime class is injected into their pods")),
			validate: denied(`deployment "ledger": `+financialGvisor,
				map[string]string{"decision": "denied", "class": "kata", "reasons": `deployment "ledger": ` + financialGvisor}),
		},
		{
			name:  "allows a deployment without class whose pods will get one injected, and never patches it",
			group: "apps", resource: "deployments", namespace: "tenant-a", obj: deployment("web", ""),
			mutate: allowed("runtimeguard never mutates workloads; the runtime class is injected into their pods",
				exempt("runtimeguard never mutates workloads; the runtime class is injected into their pods")),
			validate: allowed(`deployment "web": its pods would be admitted with runtime class "gvisor"`,
				map[string]string{"decision": "allowed", "class": "gvisor", "reasons": `deployment "web": its pods would be admitted with runtime class "gvisor"`}),
		},
		{
			name:  "denies a statefulset naming a RuntimeClass that does not exist",
			group: "apps", resource: "statefulsets", namespace: "default", obj: workloadObject("apps/v1", "StatefulSet", "db", podTemplate("wasm")),
			validate: denied(`statefulset "db": `+wasmMissing, map[string]string{"decision": "denied", "reasons": `statefulset "db": ` + wasmMissing}),
		},
		{
			name:  "reads a cronjob's template under spec.jobTemplate.spec.template",
			group: "batch", resource: "cronjobs", namespace: "payments", obj: workloadObject("batch/v1", "CronJob", "report", podTemplate("gvisor")),
			validate: denied(`cronjob "report": `+financialGvisor,
				map[string]string{"decision": "denied", "class": "kata", "reasons": `cronjob "report": ` + financialGvisor}),
		},
		{
			name:  "admits a deployment naming a strong enough class",
			group: "apps", resource: "deployments", namespace: "payments", obj: deployment("ledger", "kata"),
			validate: allowed(`deployment "ledger": its pods would be admitted with runtime class "kata"`,
				map[string]string{"decision": "allowed", "class": "kata", "reasons": `deployment "ledger": its pods would be admitted with runtime class "kata"`}),
		},
		{
			name:  "allows an UPDATE that leaves the template unchanged without deciding",
			group: "apps", resource: "deployments", namespace: "payments", obj: scaled, old: deployment("ledger", "gvisor"),
			validate: allowed("the pod template is unchanged; not re-decided", exempt("the pod template is unchanged; not re-decided")),
		},
		{
			name:  "decides an UPDATE that changes the template",
			group: "apps", resource: "deployments", namespace: "payments", obj: changed, old: deployment("ledger", "gvisor"),
			validate: denied(`deployment "ledger": `+financialGvisor,
				map[string]string{"decision": "denied", "class": "kata", "reasons": `deployment "ledger": ` + financialGvisor}),
		},
		{
			name:  "warns instead of denying in a warn-mode namespace",
			group: "", resource: "replicationcontrollers", namespace: "tenant-b", obj: workloadObject("v1", "ReplicationController", "old", podTemplate("wasm")),
			validate: allowed("warn mode", map[string]string{"decision": "warned", "class": "gvisor", "reasons": "warn mode"}).withWarnings(
				`runtimeguard warn mode, would deny: replicationcontroller "old": its pods would be rejected: namespace "tenant-b" is runtimeguard.io/tenancy=untrusted, which needs isolation >= 1 (runtime class "gvisor" or stronger); spec.runtimeClassName is "wasm"; remove spec.runtimeClassName to let runtimeguard choose, or set it to "gvisor"; and ` +
					strings.TrimPrefix(wasmMissing, "its pods would be rejected: ")),
		},
		{
			name:  "warns instead of denying with --workload-review=warn",
			setup: setup{workloadReview: WorkloadWarn},
			group: "apps", resource: "daemonsets", namespace: "payments", obj: workloadObject("apps/v1", "DaemonSet", "agent", podTemplate("gvisor")),
			validate: allowed("warn mode", map[string]string{"decision": "warned", "class": "kata", "reasons": "warn mode"}).withWarnings(
				`runtimeguard warn mode, would deny: daemonset "agent": ` + financialGvisor),
		},
		{
			name:  "names a workload created with generateName by its prefix",
			group: "batch", resource: "jobs", namespace: "default",
			obj: map[string]any{"apiVersion": "batch/v1", "kind": "Job", "metadata": map[string]any{"generateName": "backup-"},
				"spec": map[string]any{"template": podTemplate("wasm")}},
			validate: denied(`job "backup-": `+wasmMissing, map[string]string{"decision": "denied", "reasons": `job "backup-": ` + wasmMissing}),
		},
		{
			name:  "admits workloads undecided with --workload-review=off",
			setup: setup{workloadReview: WorkloadOff},
			group: "batch", resource: "jobs", namespace: "payments", obj: workloadObject("batch/v1", "Job", "once", podTemplate("gvisor")),
			validate: allowed("workload review is off (--workload-review=off); their pods are reviewed",
				exempt("workload review is off (--workload-review=off); their pods are reviewed")),
		},
		{
			name:  "exempts kube-system",
			group: "apps", resource: "replicasets", namespace: "kube-system", obj: workloadObject("apps/v1", "ReplicaSet", "dns", podTemplate("wasm")),
			validate: allowed(`namespace "kube-system" is exempt`, exempt(`namespace "kube-system" is exempt`)),
		},
		{
			name:  "exempts a namespace labelled runtimeguard.io/ignore=true",
			group: "apps", resource: "deployments", namespace: "legacy", obj: deployment("old", "wasm"),
			validate: allowed(`namespace "legacy" is labelled runtimeguard.io/ignore=true`, exempt(`namespace "legacy" is labelled runtimeguard.io/ignore=true`)),
		},
		{
			name:  "refuses a template that is not an object, naming the field",
			group: "apps", resource: "deployments", namespace: "payments", obj: workloadObject("apps/v1", "Deployment", "bad", "nginx"),
			validate: errored(http.StatusBadRequest, `deployment "bad": cannot read request.object: spec.template is a JSON string, want an object`,
				errorAudit(`deployment "bad": cannot read request.object: spec.template is a JSON string, want an object`)),
		},
		{
			name:  "refuses a cronjob without a pod template, naming the field",
			group: "batch", resource: "cronjobs", namespace: "payments",
			obj: map[string]any{"apiVersion": "batch/v1", "kind": "CronJob", "metadata": map[string]any{"name": "empty"}, "spec": map[string]any{"jobTemplate": nil}},
			validate: errored(http.StatusBadRequest, `cronjob "empty": cannot read request.object: spec.jobTemplate.spec.template is missing`,
				errorAudit(`cronjob "empty": cannot read request.object: spec.jobTemplate.spec.template is missing`)),
		},
		{
			name:  "refuses a template whose pod spec is malformed, naming the field",
			group: "apps", resource: "deployments", namespace: "payments",
			obj: workloadObject("apps/v1", "Deployment", "bad", map[string]any{"spec": map[string]any{"containers": "app"}}),
			validate: errored(http.StatusBadRequest, "", map[string]string{"decision": "error", "reasons": sameAsMessage}).
				withMessageHas(`deployment "bad": cannot decode the pod template in spec.template: `, "spec.containers"),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mutateURL, validateURL := serve(t, newPipeline(t, tc.setup))
			body := workloadReviewBody(t, tc.group, tc.resource, tc.namespace, tc.obj, tc.old)
			for _, f := range []struct {
				url  string
				want *answer
			}{{mutateURL, tc.mutate}, {validateURL, tc.validate}} {
				if f.want == nil {
					continue
				}
				status, review, raw := post(t, f.url, body)
				if status != http.StatusOK || review.Response == nil {
					t.Fatalf("HTTP %d, answer %s", status, raw)
				}
				got := review.Response
				if got.UID != "7f0b2a1c-workload" {
					t.Errorf("uid %q, want the request's", got.UID)
				}
				if got.Allowed != f.want.allowed || got.Result.Code != f.want.code || got.Result.Reason != f.want.reason {
					t.Errorf("allowed %v code %d reason %q, want %v %d %q\n%s", got.Allowed, got.Result.Code, got.Result.Reason, f.want.allowed, f.want.code, f.want.reason, raw)
				}
				if f.want.messageHas == nil && got.Result.Message != f.want.message {
					t.Errorf("message\n got %s\nwant %s", got.Result.Message, f.want.message)
				}
				rest := got.Result.Message
				for _, m := range f.want.messageHas {
					i := strings.Index(rest, m)
					if i < 0 {
						t.Errorf("message %q lacks %q (in order)", got.Result.Message, m)
						break
					}
					rest = rest[i+len(m):]
				}
				if got.Patch != nil || got.PatchType != nil {
					t.Errorf("a workload was patched: %s", got.Patch)
				}
				if !reflect.DeepEqual(got.Warnings, f.want.warnings) {
					t.Errorf("warnings\n got %q\nwant %q", got.Warnings, f.want.warnings)
				}
				audit := f.want.audit
				if audit["reasons"] == sameAsMessage {
					audit["reasons"] = got.Result.Message
				}
				if !reflect.DeepEqual(got.AuditAnnotations, audit) {
					t.Errorf("audit annotations\n got %v\nwant %v", got.AuditAnnotations, audit)
				}
			}
		})
	}
}

// The unchanged-template comparison is semantic: member order and spacing do not count.
func TestSameJSON(t *testing.T) {
	if !sameJSON([]byte(`{"a":1,"b":{"c":[1,2]}}`), []byte(` { "b" : {"c":[1, 2]}, "a":1.0 }`)) {
		t.Error("reordered members read as a change")
	}
	if sameJSON([]byte(`{"b":{"c":[1,2]}}`), []byte(`{"b":{"c":[2,1]}}`)) {
		t.Error("a reordered list read as unchanged")
	}
}

// eval reads workloads with webhook/manifest, which keeps its own list of the kinds and where
// their Pod template is: it must be this file's, or eval and the webhook would disagree.
func TestManifestWorkloadKindsAreTheWebhooks(t *testing.T) {
	kinds := manifest.WorkloadKinds()
	if len(kinds) != len(workloads) {
		t.Errorf("webhook/manifest knows %d workload kinds, the webhook %d", len(kinds), len(workloads))
	}
	for _, k := range kinds {
		w, ok := workloads[metav1.GroupVersionKind(k.GVK)]
		if !ok {
			t.Errorf("webhook/manifest decodes %s as a workload; the webhook does not review it", k.GVK)
			continue
		}
		if !reflect.DeepEqual(w.template, k.Template) {
			t.Errorf("%s: webhook/manifest reads the template at %v, the webhook at %v", k.GVK, k.Template, w.template)
		}
	}
}
