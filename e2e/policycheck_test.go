package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/runtimeguard/runtimeguard/e2e/controlplane"
	"github.com/runtimeguard/runtimeguard/e2e/harness"
)

// policyConfigMap is a ConfigMap of the release namespace holding a policy layer.
func policyConfigMap(name string, labels map[string]string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: harness.Namespace, Labels: labels},
		Data:       data,
	}
}

// kubectlApply runs the real kubectl apply on obj and returns its combined output and whether
// it succeeded.
func kubectlApply(t *testing.T, obj any) (string, bool) {
	t.Helper()
	bin := filepath.Join(s.root, "bin", "kubectl")
	if err := controlplane.RequireBinaries(filepath.Dir(bin), "kubectl"); err != nil {
		t.Fatal(err)
	}
	manifest, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--kubeconfig", s.cp.Kubeconfig, "apply", "-f", "-")
	cmd.Stdin = bytes.NewReader(manifest)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

const e2eNoLatest = `package runtimeguard

deny contains msg if {
	some c in input.pod.containers
	endswith(c.image, ":latest")
	msg := sprintf("pod rejected: container %q uses a :latest image", [c.name])
}
`

const e2eNoLatestSuite = `cases:
  - name: a latest image is denied
    pod:
      metadata: {name: a, namespace: default}
      spec:
        containers: [{name: app, image: "nginx:latest"}]
    expect:
      allowed: false
      messageContains: uses a :latest image
`

// Scenario 29. A ConfigMap holding runtimeguard policy (label runtimeguard.io/policy) is checked
// by the chart's policy.runtimeguard.io webhook, served by the running replica: `kubectl apply`
// of one whose Rego does not parse, or whose shipped suite fails, is refused with the key and
// line and not stored; a good one is stored; an unlabelled ConfigMap is never checked.
func TestPolicyConfigMapWithBrokenRegoIsRefusedByKubectlApplyWithFileAndLine(t *testing.T) {
	ensureStandardCluster(t)
	ctx := context.Background()
	name := uniqueName("team-policy")
	t.Cleanup(func() {
		for _, n := range []string{name, name + "-unlabelled"} {
			cm := &corev1.ConfigMap{}
			cm.Name, cm.Namespace = n, harness.Namespace
			if err := s.client.Delete(ctx, cm); client.IgnoreNotFound(err) != nil {
				t.Errorf("deleting ConfigMap %s: %v", n, err)
			}
		}
	})
	layer := map[string]string{"runtimeguard.io/policy": "layer"}
	good := map[string]string{"no_latest.rego": e2eNoLatest, "no-latest.suite.yaml": e2eNoLatestSuite}

	start := time.Now()
	if out, ok := kubectlApply(t, policyConfigMap(name, layer, good)); !ok {
		t.Fatalf("kubectl apply of a good policy layer failed:\n%s", out)
	}
	measure("scenario 29: kubectl apply of a good policy layer (module and suite), checked by the webhook, took %s", time.Since(start).Round(time.Millisecond))

	broken := map[string]string{"no_latest.rego": strings.Replace(e2eNoLatest, "\tmsg := sprintf", "\tmsg := sprintf(", 1), "no-latest.suite.yaml": e2eNoLatestSuite}
	out, ok := kubectlApply(t, policyConfigMap(name, layer, broken))
	if ok {
		t.Fatalf("kubectl apply of broken Rego succeeded:\n%s", out)
	}
	for _, want := range []string{
		`admission webhook "policy.runtimeguard.io" denied the request`,
		fmt.Sprintf("runtimeguard policy ConfigMap %s/%s (runtimeguard.io/policy=layer) is broken", harness.Namespace, name),
		"no_latest.rego:6: rego_parse_error",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("kubectl apply of broken Rego:\n%s", out)

	failing := map[string]string{"no_latest.rego": strings.Replace(e2eNoLatest, ":latest\")", ":edge\")", 1), "no-latest.suite.yaml": e2eNoLatestSuite}
	out, ok = kubectlApply(t, policyConfigMap(name, layer, failing))
	if ok {
		t.Fatalf("kubectl apply of a policy whose suite fails succeeded:\n%s", out)
	}
	for _, want := range []string{"the suites it ships fail", "FAIL no-latest.suite.yaml: a latest image is denied", "at no-latest.suite.yaml:2", "allowed: expected false, got true"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl output lacks %q:\n%s", want, out)
		}
	}

	stored := &corev1.ConfigMap{}
	if err := s.client.Get(ctx, client.ObjectKey{Namespace: harness.Namespace, Name: name}, stored); err != nil {
		t.Fatal(err)
	}
	if stored.Data["no_latest.rego"] != e2eNoLatest {
		t.Errorf("the stored ConfigMap changed although both updates were refused:\n%s", stored.Data["no_latest.rego"])
	}

	// Without the label the webhook is not called (objectSelector): anything may be stored.
	if out, ok := kubectlApply(t, policyConfigMap(name+"-unlabelled", nil, broken)); !ok {
		t.Errorf("an unlabelled ConfigMap was refused:\n%s", out)
	}
}
