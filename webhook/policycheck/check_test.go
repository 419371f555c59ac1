package policycheck

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

const noLatest = `package runtimeguard

deny contains msg if {
	some c in input.pod.containers
	endswith(c.image, ":latest")
	msg := sprintf("pod rejected: container %q uses a :latest image", [c.name])
}
`

// A suite shipped in the ConfigMap, with its cluster fixture (*.cluster.yaml is not data).
const noLatestSuite = `cluster: [rc.cluster.yaml]
cases:
  - name: latest is denied
    pod:
      metadata: {name: a, namespace: default}
      spec:
        containers: [{name: app, image: "nginx:latest"}]
    expect:
      allowed: false
      messageContains: uses a :latest image
  - name: untrusted still gets gvisor
    pod:
      metadata: {name: b, namespace: tenant-a}
      spec:
        containers: [{name: app, image: "nginx:1.27"}]
    expect:
      runtimeClassName: gvisor
`

func review(t *testing.T, labels map[string]string, data map[string]string) admission.Request {
	t.Helper()
	cm := corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: "team-policy", Namespace: "runtimeguard", Labels: labels},
		Data:       data,
	}
	raw, err := json.Marshal(cm)
	if err != nil {
		t.Fatal(err)
	}
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "1", Namespace: "runtimeguard", Name: "team-policy", Operation: admissionv1.Create,
		Object: runtime.RawExtension{Raw: raw},
	}}
}

func fixture(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../policies/examples/cluster/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPolicyConfigMaps(t *testing.T) {
	layer := map[string]string{RoleLabel: RoleLayer}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		data   map[string]string
		want   []string // substrings of the denial; none: allowed
	}{{
		name:   "a layer with a module, data and a passing suite",
		labels: layer,
		data: map[string]string{
			"no_latest.rego": noLatest, "team.yaml": "config:\n  traits:\n    untrusted:\n      requires: {isolation: 1}\n",
			"no-latest.suite.yaml": noLatestSuite, "rc.cluster.yaml": "",
		},
	}, {
		name:   "a layer with broken Rego",
		labels: layer,
		data:   map[string]string{"no_latest.rego": "package runtimeguard\n\ndeny contains msg if {\n"},
		want:   []string{"runtimeguard policy ConfigMap runtimeguard/team-policy (runtimeguard.io/policy=layer) is broken", "no_latest.rego:4: rego_parse_error"},
	}, {
		name:   "a layer whose Rego does not type-check",
		labels: layer,
		data:   map[string]string{"x.rego": "package runtimeguard\n\ndeny contains msg if {\n\tmsg := http.send({})\n}\n"},
		want:   []string{"x.rego:4: rego_type_error: undefined function http.send", "runtimeguard forbids http.send"},
	}, {
		name:   "a layer whose data breaks the schema",
		labels: layer,
		data:   map[string]string{"team.yaml": "config:\n  classes:\n    - name: gvisor\n      isolation: high\n"},
		want:   []string{"team.yaml:4: data.config.classes[0].isolation: Invalid type"},
	}, {
		name:   "a layer with a failing suite",
		labels: layer,
		data: map[string]string{
			"team.yaml":            "config:\n  traits:\n    untrusted:\n      requires: {isolation: 2}\n",
			"no-latest.suite.yaml": noLatestSuite, "no_latest.rego": noLatest, "rc.cluster.yaml": "",
		},
		want: []string{"the suites it ships fail", "FAIL no-latest.suite.yaml: untrusted still gets gvisor", `runtimeClassName: expected "gvisor", got "kata"`, "1 passed, 1 failed"},
	}, {
		name:   "a replace ConfigMap without a decision",
		labels: map[string]string{RoleLabel: RoleReplace},
		data:   map[string]string{"p.rego": "package other\n\nx := 1\n"},
		want:   []string{"no module defines data.runtimeguard.decision"},
	}, {
		name:   "an unknown role",
		labels: map[string]string{RoleLabel: "true"},
		data:   map[string]string{"p.rego": noLatest},
		want:   []string{`label runtimeguard.io/policy="true": want "layer"`, `or "replace"`},
	}, {
		name:   "a module named like a built-in one",
		labels: layer,
		data:   map[string]string{"runtimeguard.rego": noLatest},
		want:   []string{"runtimeguard.rego: the policy already has a module named runtimeguard.rego"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.data {
				if strings.HasSuffix(k, ".cluster.yaml") && v == "" {
					tc.data[k] = fixture(t)
				}
			}
			resp := (&Checker{}).Handle(t.Context(), review(t, tc.labels, tc.data))
			msg := resp.Result.Message
			t.Log(msg)
			if len(tc.want) == 0 {
				if !resp.Allowed {
					t.Fatalf("denied: %s", msg)
				}
				return
			}
			if resp.Allowed {
				t.Fatalf("allowed, want a denial containing %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("denial %q does not contain %q", msg, w)
				}
			}
			if strings.Contains(msg, os.TempDir()) {
				t.Errorf("denial %q shows the checker's temporary directory instead of the ConfigMap's keys", msg)
			}
		})
	}
}
