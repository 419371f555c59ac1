package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/runtimeguard/runtimeguard/e2e/controlplane"
	"github.com/runtimeguard/runtimeguard/e2e/harness"
)

var podSeq atomic.Int64

func uniqueName(prefix string) string { return fmt.Sprintf("%s-%d", prefix, podSeq.Add(1)) }

// createPod creates p and returns the stored Pod.
func createPod(t *testing.T, p *corev1.Pod) (*corev1.Pod, error) {
	t.Helper()
	if p.Name == "" {
		p.Name = uniqueName("pod")
	}
	err := s.client.Create(context.Background(), p)
	return p, err
}

func mustCreatePod(t *testing.T, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	got, err := createPod(t, p)
	if err != nil {
		t.Fatalf("creating pod %s/%s: %v", p.Namespace, p.Name, err)
	}
	return got
}

func wantDenied(t *testing.T, err error, substrings ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("pod admitted, want a denial containing %q", substrings)
	}
	for _, sub := range substrings {
		if !strings.Contains(err.Error(), sub) {
			t.Errorf("denial %q\ndoes not contain %q", err.Error(), sub)
		}
	}
}

func className(p *corev1.Pod) string { return ptr.Deref(p.Spec.RuntimeClassName, "") }

// Scenario 1.
func TestUntrustedPodGetsGVisorWithOverheadAndScheduling(t *testing.T) {
	ensureStandardCluster(t)
	p := mustCreatePod(t, harness.Pod(nsUntrusted, ""))
	if className(p) != "gvisor" {
		t.Fatalf("runtimeClassName = %q, want gvisor", className(p))
	}
	if got := p.Spec.Overhead.Cpu().String(); got != "250m" {
		t.Errorf("overhead cpu = %s, want 250m (from the RuntimeClass, added by the API server's plugin)", got)
	}
	if got := p.Spec.NodeSelector[harness.GVisorLabel]; got != "true" {
		t.Errorf("nodeSelector[%s] = %q, want true", harness.GVisorLabel, got)
	}
	found := false
	for _, tol := range p.Spec.Tolerations {
		found = found || tol.Key == harness.GVisorLabel
	}
	if !found {
		t.Errorf("tolerations %v lack the RuntimeClass's toleration for %s", p.Spec.Tolerations, harness.GVisorLabel)
	}
}

// Scenario 2.
func TestDeploymentPodsCreatedByControllerManagerGetTheClass(t *testing.T) {
	ensureStandardCluster(t)
	ctx := context.Background()
	// A name of its own per run: a Deployment of an earlier run (-count) may still be being
	// garbage collected, with its Pods.
	name := uniqueName("e2e-deploy")
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: nsUntrusted, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/app:1"}}},
			},
		},
	}
	if err := s.client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.client.Delete(ctx, d) })
	var pods corev1.PodList
	err := controlplane.Wait(ctx, 60*time.Second, func(ctx context.Context) (bool, error) {
		if err := s.client.List(ctx, &pods, client.InNamespace(nsUntrusted), client.MatchingLabels(labels)); err != nil {
			return false, err
		}
		return len(pods.Items) == 3, nil
	})
	if err != nil {
		t.Fatalf("kube-controller-manager did not create 3 pods: %v", err)
	}
	for _, p := range pods.Items {
		if className(&p) != "gvisor" || p.Spec.Overhead == nil {
			t.Errorf("pod %s: runtimeClassName %q overhead %v, want gvisor with overhead", p.Name, className(&p), p.Spec.Overhead)
		}
	}
}

// Scenario 3.
func TestFinancialPodAskingForGVisorIsRejected(t *testing.T) {
	ensureStandardCluster(t)
	p := harness.Pod(nsFinancial, "")
	p.Spec.RuntimeClassName = ptr.To("gvisor")
	_, err := createPod(t, p)
	wantDenied(t, err, `admission webhook "validate.runtimeguard.io" denied the request: `,
		`pod rejected: namespace "financial-e2e" is runtimeguard.io/tenancy=financial, which needs isolation >= 2 (runtime class "kata" or stronger); spec.runtimeClassName is "gvisor"`)
}

// Scenario 4.
func TestHandlerAdvertisedLaterIsAdmittedOnceANodeReportsIt(t *testing.T) {
	ensureStandardCluster(t)
	ctx := context.Background()
	rc := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "wasm"}, Handler: "spin"}
	if err := harness.ApplyClasses(ctx, s.client, []*nodev1.RuntimeClass{rc}); err != nil {
		t.Fatal(err)
	}
	node := harness.NodeSpec{Name: "wasm-1", Handlers: []string{"runc"}}
	if err := harness.ApplyNode(ctx, s.client, node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The Node first, and wait until the webhook has seen it go (class wasm left without a
		// usable node), then the class, and wait until the webhook's view is the standard one:
		// both deletions observed.
		if err := s.client.Delete(ctx, node.Object()); client.IgnoreNotFound(err) != nil {
			t.Errorf("deleting Node %s: %v", node.Name, err)
		}
		if err := harness.WaitForView(ctx, s.webhook, viewTimeout, "Node wasm-1 deleted", func(v harness.ClusterView) bool {
			c, ok := v["wasm"]
			return !ok || c.Usable == 0
		}); err != nil {
			t.Error(err)
		}
		if err := s.client.Delete(ctx, rc); client.IgnoreNotFound(err) != nil {
			t.Errorf("deleting RuntimeClass %s: %v", rc.Name, err)
		}
		waitStandardView(t)
	})
	pod := func() *corev1.Pod {
		p := harness.Pod(nsPlain, uniqueName("wasm"))
		p.Spec.RuntimeClassName = ptr.To("wasm")
		return p
	}
	// The webhook may not have seen the new class yet; wait for the handler verdict.
	var lastErr error
	err := controlplane.Wait(ctx, 10*time.Second, func(ctx context.Context) (bool, error) {
		lastErr = s.client.Create(ctx, pod(), client.DryRunAll)
		return lastErr != nil && strings.Contains(lastErr.Error(), `no Ready, schedulable node advertises handler "spin"`), nil
	})
	if err != nil {
		t.Fatalf("want a denial naming handler spin, got %v", lastErr)
	}
	wantDenied(t, lastErr, `RuntimeClass "wasm" (handler "spin")`, "0 of ")

	node.Handlers = []string{"runc", "spin"}
	changed := time.Now()
	if err := harness.ApplyNode(ctx, s.client, node); err != nil {
		t.Fatal(err)
	}
	err = controlplane.Wait(ctx, 10*time.Second, func(ctx context.Context) (bool, error) {
		lastErr = s.client.Create(ctx, pod(), client.DryRunAll)
		return lastErr == nil, nil
	})
	if err != nil {
		t.Fatalf("pod still rejected after node wasm-1 reported handler spin: %v", lastErr)
	}
	measure("scenario 4: webhook admitted the pod %s after the node's status.runtimeHandlers update (includes one dry-run create round trip)",
		time.Since(changed).Round(time.Millisecond))
	mustCreatePod(t, pod())
}

// Scenario 5.
func TestNotReadyThenCordonedNodeMakesClassUnavailableAndUntrustedFallsBackToKata(t *testing.T) {
	ensureStandardCluster(t)
	ctx := context.Background()
	sandbox := harness.StandardNodes()[0]
	// Restore sandbox-1, kata-1 and gpu-1, and wait until the webhook has seen them Ready and
	// schedulable again.
	t.Cleanup(func() { restoreNodes(t, "sandbox-1", "kata-1", "gpu-1") })
	for _, step := range []struct {
		name   string
		change func(*harness.NodeSpec)
		want   string
	}{
		{"NotReady", func(n *harness.NodeSpec) { n.NotReady = true }, "1 advertise it but are NotReady"},
		{"cordoned", func(n *harness.NodeSpec) { n.NotReady = false; n.Cordoned = true }, "1 advertise it but are cordoned"},
	} {
		t.Run(step.name, func(t *testing.T) {
			step.change(&sandbox)
			if err := harness.ApplyNode(ctx, s.client, sandbox); err != nil {
				t.Fatal(err)
			}
			named := func() *corev1.Pod {
				p := harness.Pod(nsPlain, uniqueName("gv"))
				p.Spec.RuntimeClassName = ptr.To("gvisor")
				return p
			}
			var lastErr error
			if err := controlplane.Wait(ctx, 10*time.Second, func(ctx context.Context) (bool, error) {
				lastErr = s.client.Create(ctx, named(), client.DryRunAll)
				return lastErr != nil && strings.Contains(lastErr.Error(), step.want), nil
			}); err != nil {
				t.Fatalf("want a denial containing %q, got %v", step.want, lastErr)
			}
			wantDenied(t, lastErr, `RuntimeClass "gvisor" (handler "runsc"): no Ready, schedulable node advertises handler "runsc"`)
			p := mustCreatePod(t, harness.Pod(nsUntrusted, ""))
			if className(p) != "kata" {
				t.Errorf("untrusted pod got %q, want the kata fallback", className(p))
			}
		})
	}
	t.Run("no sandbox left", func(t *testing.T) {
		// gvisor-nvidia also isolates, at the price of a GPU node: it is the last resort, so
		// take the GPU node away too.
		for _, n := range harness.StandardNodes()[1:3] {
			n.NotReady = true
			if err := harness.ApplyNode(ctx, s.client, n); err != nil {
				t.Fatal(err)
			}
		}
		var lastErr error
		_ = controlplane.Wait(ctx, 10*time.Second, func(ctx context.Context) (bool, error) {
			lastErr = s.client.Create(ctx, harness.Pod(nsUntrusted, uniqueName("none")), client.DryRunAll)
			// Wait for the webhook to have seen every node change, not just the first denial.
			return lastErr != nil && strings.Contains(lastErr.Error(), "no runtime class that provides it is available"), nil
		})
		wantDenied(t, lastErr, `namespace "untrusted-e2e" is runtimeguard.io/tenancy=untrusted, which needs isolation >= 1, but no runtime class that provides it is available`,
			`gvisor: no Ready, schedulable node advertises handler "runsc"`, `kata: no Ready, schedulable node advertises handler "kata-qemu"`)
	})
}

// Scenario 6.
func TestGPUPodsGetNvidiaAndUntrustedGPUPodsGetGVisorNvidia(t *testing.T) {
	ensureStandardCluster(t)
	for ns, want := range map[string]string{nsPlain: "nvidia", nsUntrusted: "gvisor-nvidia"} {
		p := harness.Pod(ns, "")
		p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}
		got := mustCreatePod(t, p)
		if className(got) != want {
			t.Errorf("GPU pod in %s got %q, want %q", ns, className(got), want)
		}
	}
}

// Scenario 7.
func TestKubeSystemAndIgnoredNamespacesAreUntouched(t *testing.T) {
	ensureStandardCluster(t)
	for _, ns := range []string{"kube-system", nsIgnored} {
		p := harness.Pod(ns, "")
		p.Labels = map[string]string{"runtimeguard.io/workload": "untrusted"}
		got := mustCreatePod(t, p)
		if className(got) != "" {
			t.Errorf("pod in %s got runtimeClassName %q, want none", ns, className(got))
		}
	}
}

// Scenario 8.
func TestWarnModeAdmitsAndKubectlPrintsTheWarning(t *testing.T) {
	ensureStandardCluster(t)
	kubectl := s.paths.Kubectl
	name := uniqueName("warned") // a name of its own per run: kubectl apply must create it
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: %s
spec:
  runtimeClassName: gvisor
  containers:
  - name: app
    image: registry.example.com/app:1
`, name, nsWarn)
	cmd := exec.Command(kubectl, "--kubeconfig", s.cp.Kubeconfig, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "pod/"+name+" created") {
		t.Errorf("kubectl stdout %q, want pod/%s created", stdout.String(), name)
	}
	want := `Warning: runtimeguard warn mode, would deny: namespace "warn-e2e" is runtimeguard.io/tenancy=financial, which needs isolation >= 2`
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("kubectl stderr %q\nlacks %q", stderr.String(), want)
	}
}

// Scenario 9.
func TestWebhookDownFailsClosedButKubeSystemStillWorks(t *testing.T) {
	ensureStandardCluster(t)
	s.webhook.Stop()
	t.Cleanup(func() {
		ensureWebhook(t)
		waitStandardView(t)
	})
	_, err := createPod(t, harness.Pod(nsUntrusted, ""))
	wantDenied(t, err, `failed calling webhook "mutate.runtimeguard.io"`)
	if _, err := createPod(t, harness.Pod("kube-system", "")); err != nil {
		t.Errorf("kube-system pod rejected while the webhook is down: %v", err)
	}
	if _, err := createPod(t, harness.Pod(harness.Namespace, "")); err != nil {
		t.Errorf("pod in the release namespace rejected while the webhook is down: %v", err)
	}
}

// Scenario 10.
func TestServingCertificateRotatedOnDiskWithoutFailedAdmissions(t *testing.T) {
	ensureStandardCluster(t)
	before, err := s.webhook.ServingSerial(s.certs.CAPEM)
	if err != nil {
		t.Fatal(err)
	}
	// Pod creates through the API server from 4 goroutines: admitted before the rotation,
	// through it, and with the new certificate after it.
	load := startAdmissionLoad(4)
	defer load.stop()
	if err := load.waitOK(minAdmissions, 30*time.Second); err != nil {
		t.Fatalf("before the rotation: %v", err)
	}
	rotated := time.Now()
	if err := s.certs.Rotate(s.certDir, []string{"127.0.0.1", "localhost"}, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	var after string
	werr := controlplane.Wait(context.Background(), 30*time.Second, func(context.Context) (bool, error) {
		after, err = s.webhook.ServingSerial(s.certs.CAPEM)
		return err == nil && after != before, err
	})
	pickedUp := time.Since(rotated)
	if werr != nil {
		t.Fatalf("the webhook still serves the old certificate: %v", werr)
	}
	// The API server keeps its connections: admissions must go on after the new certificate
	// is served (on connections made before and after it).
	afterErr := load.waitOK(load.ok.Load()+minAdmissions, 30*time.Second)
	ok, failed, first := load.stop()
	if afterErr != nil {
		t.Errorf("after the rotation: %v", afterErr)
	}
	if failed > 0 {
		t.Errorf("%d of %d admissions failed during rotation; first: %v", failed, failed+ok, first)
	}
	if ok < 2*minAdmissions {
		t.Errorf("only %d admissions succeeded during the test, want at least %d: the test proves nothing", ok, 2*minAdmissions)
	}
	measure("scenario 10: new serving certificate served %s after rotation on disk; %d admissions during the test, %d failed",
		pickedUp.Round(time.Millisecond), ok+failed, failed)
}

// Scenario 11.
func TestCustomPolicyDirectoryWithDenyRuleIsLoadedLive(t *testing.T) {
	ensureStandardCluster(t)
	ctx := context.Background()
	rule := filepath.Join(s.policyDir, "no-latest.rego")
	broken := filepath.Join(s.policyDir, "broken.rego")
	latest := func() *corev1.Pod {
		p := harness.Pod(nsPlain, uniqueName("latest"))
		p.Spec.Containers[0].Image = "registry.example.com/app:latest"
		return p
	}
	// Without the rule, a :latest image is admitted; with it, the wait below proves the rule.
	if err := s.client.Create(ctx, latest(), client.DryRunAll); err != nil {
		t.Fatalf("a :latest image is denied before the rule is written: %v", err)
	}
	t.Cleanup(func() {
		for _, f := range []string{rule, broken} {
			if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
				t.Errorf("removing %s: %v", f, err)
			}
		}
		// The policy set is back to the suite's once the webhook has reloaded it: a good set
		// serving (not stale) that admits a :latest image again.
		var lastErr error
		if err := controlplane.Wait(ctx, 30*time.Second, func(ctx context.Context) (bool, error) {
			stale, err := s.webhook.MetricSum("runtimeguard_policy_stale", nil)
			if err != nil || stale != 0 {
				lastErr = fmt.Errorf("runtimeguard_policy_stale %v (%v)", stale, err)
				return false, nil
			}
			lastErr = s.client.Create(ctx, latest(), client.DryRunAll)
			return lastErr == nil, nil
		}); err != nil {
			t.Errorf("the webhook did not reload the policy set without the test's files: %v (%v)", err, lastErr)
		}
	})
	err := os.WriteFile(rule, []byte(`package runtimeguard

deny contains msg if {
	some c in input.pod.containers
	endswith(c.image, ":latest")
	msg := sprintf("pod rejected: container %q uses a :latest image; pin a version", [c.name])
}
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	var lastErr error
	if err := controlplane.Wait(ctx, 15*time.Second, func(ctx context.Context) (bool, error) {
		lastErr = s.client.Create(ctx, latest(), client.DryRunAll)
		return lastErr != nil, nil
	}); err != nil {
		t.Fatalf("the custom deny rule was not loaded: %v", err)
	}
	measure("scenario 11: policy directory change enforced %s after the file was written", time.Since(written).Round(time.Millisecond))
	wantDenied(t, lastErr, `container "app" uses a :latest image`)

	// A broken file is rejected; the last good set keeps serving. (The counter is read first:
	// an earlier run in the same process may have counted errors already.)
	errorsBefore, err := s.webhook.MetricSum("runtimeguard_policy_reloads_total", map[string]string{"result": "error"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(broken, []byte("package runtimeguard\n\ndeny contains msg if {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := controlplane.Wait(ctx, 15*time.Second, func(ctx context.Context) (bool, error) {
		n, err := s.webhook.MetricSum("runtimeguard_policy_reloads_total", map[string]string{"result": "error"})
		stale, serr := s.webhook.MetricSum("runtimeguard_policy_stale", nil)
		return err == nil && serr == nil && n > errorsBefore && stale == 1, errors.Join(err, serr)
	}); err != nil {
		t.Fatalf("reload error not reported in metrics (runtimeguard_policy_reloads_total{result=\"error\"} above %v, runtimeguard_policy_stale 1): %v", errorsBefore, err)
	}
	_, err = createPod(t, latest())
	wantDenied(t, err, `uses a :latest image`)
	mustCreatePod(t, harness.Pod(nsPlain, ""))
}

// Scenario 12.
func TestLatencyAddedByTheWebhookOverAThousandPodCreates(t *testing.T) {
	ensureStandardCluster(t)
	ctx := context.Background()
	const n = 1000
	run := func(ns string) []time.Duration {
		lat := make([]time.Duration, 0, n)
		for i := 0; i < n; i++ {
			p := harness.Pod(ns, uniqueName("lat")) // unique across runs (-count)
			start := time.Now()
			if err := s.client.Create(ctx, p); err != nil {
				t.Fatalf("create %d: %v", i, err)
			}
			lat = append(lat, time.Since(start))
		}
		return lat
	}
	if err := harness.EnsureNamespace(ctx, s.client, "latency-with", map[string]string{"runtimeguard.io/tenancy": "untrusted"}); err != nil {
		t.Fatal(err)
	}
	if err := harness.EnsureNamespace(ctx, s.client, "latency-without", map[string]string{"runtimeguard.io/tenancy": "untrusted"}); err != nil {
		t.Fatal(err)
	}
	with := run("latency-with")
	if err := s.rendered.Delete(ctx, s.client); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { restoreSuiteWebhook(t) })
	// The API server drops the configurations asynchronously: wait until it calls neither
	// webhook, i.e. a Pod is not mutated and a Pod naming a class the validating webhook
	// denies in an untrusted namespace (nvidia: no isolation) is admitted.
	var lastErr error
	if err := controlplane.Wait(ctx, 30*time.Second, func(ctx context.Context) (bool, error) {
		p := harness.Pod("latency-without", uniqueName("lat-probe"))
		if lastErr = s.client.Create(ctx, p, client.DryRunAll); lastErr != nil {
			return false, nil
		}
		if className(p) != "" {
			lastErr = fmt.Errorf("pod still mutated (%q)", className(p))
			return false, nil
		}
		named := harness.Pod("latency-without", uniqueName("lat-probe"))
		named.Spec.RuntimeClassName = ptr.To("nvidia")
		lastErr = s.client.Create(ctx, named, client.DryRunAll)
		return lastErr == nil, nil
	}); err != nil {
		t.Fatalf("the API server still calls the webhook after its configurations were deleted: %v (%v)", err, lastErr)
	}
	without := run("latency-without")
	p50w, p99w := percentiles(with)
	p50o, p99o := percentiles(without)
	measure("scenario 12: %d pod creates, untrusted namespace: with runtimeguard p50 %s p99 %s; without p50 %s p99 %s; added p50 %s p99 %s",
		n, p50w, p99w, p50o, p99o, p50w-p50o, p99w-p99o)
	if p50w <= 0 || p50o <= 0 {
		t.Fatalf("no latency measured")
	}
	var pods corev1.PodList
	if err := s.client.List(ctx, &pods, client.InNamespace("latency-with")); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if className(&p) != "gvisor" {
			t.Fatalf("pod %s was not mutated (%q): the 'with' run did not go through the webhook", p.Name, className(&p))
		}
	}
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	sorted := append([]time.Duration(nil), d...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	return sorted[len(sorted)/2].Round(10 * time.Microsecond), sorted[len(sorted)*99/100].Round(10 * time.Microsecond)
}
