package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
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

// Scenario 31. A ConfigMap holding runtimeguard policy (label runtimeguard.io/policy) is checked
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
	measure("scenario 31: kubectl apply of a good policy layer (module and suite), checked by the webhook, took %s", time.Since(start).Round(time.Millisecond))

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

// Scenario 32. The real binary started with a broken policy directory does not exit (no crash
// loop): it keeps running NotReady, with /healthz ok and /readyz failing on the "policy" check,
// logs the error with file:line, answers admissions with 503 naming the file, and once the file
// is fixed becomes Ready by itself and decides (an untrusted Pod gets gvisor).
func TestReplicaStartingWithABrokenPolicyStaysNotReadyInsteadOfCrashLooping(t *testing.T) {
	ensureStandardCluster(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "policies")
	if err := copyPolicies(filepath.Join(s.root, "policies"), dir); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "broken.rego")
	if err := os.WriteFile(broken, []byte("package runtimeguard\n\ndeny contains msg if {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := s.webhookCfg
	o.Port = 0
	o.LogPath = filepath.Join(s.logDir, "broken-start.log")
	o.Args = []string{"--policies=" + dir}
	o.NoWait = true
	start := time.Now()
	w, err := harness.StartWebhook(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	health := func(path string) (int, string) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", w.HealthPort, path))
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var last string
	if err := controlplane.Wait(ctx, 30*time.Second, func(context.Context) (bool, error) {
		if w.Exited() {
			return false, fmt.Errorf("runtimeguard serve exited with a broken policy; see %s", o.LogPath)
		}
		hs, _ := health("/healthz")
		rs, rb := health("/readyz")
		last = fmt.Sprintf("healthz %d, readyz %d %q", hs, rs, rb)
		return hs == http.StatusOK && rs == http.StatusInternalServerError && strings.Contains(rb, "[-]policy failed"), nil
	}); err != nil {
		t.Fatalf("the replica is not up and NotReady on the policy check: %v (%s)", err, last)
	}
	measure("scenario 32: a replica started with a broken policy is up and NotReady (readyz: policy failed) %s after start", time.Since(start).Round(time.Millisecond))
	logBytes, err := os.ReadFile(o.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logBytes), "staying NotReady until the policy files are fixed") || !strings.Contains(string(logBytes), "broken.rego:4: rego_parse_error") {
		t.Errorf("the log does not say the policy is broken, with file:line:\n%s", logBytes)
	}
	hc := admissionHTTPClient()
	url := fmt.Sprintf("https://127.0.0.1:%d/mutate-v1-pod", w.Port)
	status, body, err := postAdmissionReview(hc, url, realisticPodReview(nsUntrusted)("broken-start"))
	if err != nil || status != http.StatusServiceUnavailable || !strings.Contains(string(body), "broken.rego:4") {
		t.Errorf("an admission to the NotReady replica: %d %q (%v), want 503 naming broken.rego:4", status, body, err)
	}
	// Still running a few seconds on: no exit, so no restart loop.
	time.Sleep(3 * time.Second)
	if w.Exited() {
		t.Fatalf("the replica exited; see %s", o.LogPath)
	}

	if err := os.Remove(broken); err != nil {
		t.Fatal(err)
	}
	fixed := time.Now()
	if err := w.WaitReady(ctx, 60*time.Second); err != nil {
		t.Fatalf("the replica did not become Ready after the policy was fixed: %v", err)
	}
	measure("scenario 32: Ready %s after the broken file was removed, without a restart", time.Since(fixed).Round(time.Millisecond))
	class, err := mutatedClass(hc, w, realisticPodReview(nsUntrusted))
	if err != nil || class != "gvisor" {
		t.Errorf("after the fix, an untrusted Pod's review: class %q (%v), want gvisor", class, err)
	}
}
