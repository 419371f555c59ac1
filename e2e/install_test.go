package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/runtimeguard/runtimeguard/e2e/controlplane"
	"github.com/runtimeguard/runtimeguard/e2e/harness"
)

// Scenarios 29 and 30.
//
// `helm install` and `helm upgrade` of the chart, for real (Helm's lookup, three-way merge and
// ownership included), while Pods are created in an enforced tenant namespace from two
// goroutines: none of those creates fails. The release has objects of its own
// (fullnameOverride), so the suite's webhook stays registered next to it. The only change to
// what Helm applies is a post-renderer pointing the webhooks' clientConfig at a balancer
// standing in for the Service (the API server runs outside any cluster network); the replicas
// are `runtimeguard serve` processes with the flags of the rendered Deployment, as the chart's
// ServiceAccount, started only after `helm install` has returned, as a kubelet would start them
// after pulling the image. Before this design the configurations were created failing closed:
// every create between the install and the first ready replica with an injected caBundle was
// rejected.
func TestInstallAndUpgradeWithCertManagerNeverLockOutPodCreation(t *testing.T) {
	testInstallAndUpgrade(t, "lockout-cm", true)
}

func TestInstallAndUpgradeWithSelfSignedCertificatesNeverLockOutPodCreation(t *testing.T) {
	testInstallAndUpgrade(t, "lockout-ss", false)
}

func testInstallAndUpgrade(t *testing.T, release string, certManager bool) {
	ensureStandardCluster(t)
	ctx := context.Background()
	values := []string{"--set", "fullnameOverride=" + release, "--set", "extraServingSANs={127.0.0.1}",
		"--set", fmt.Sprintf("certManager.enabled=%v", certManager)}
	r, err := harness.RenderChart(s.ctx, values...)
	if err != nil {
		t.Fatal(err)
	}
	args, err := r.ServeArgs(harness.ServeArgsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !containsPrefix(args, "--failure-policy=Fail") {
		t.Fatalf("the chart's serve args %q lack --failure-policy=Fail", args)
	}
	user, err := r.ServiceAccountUser()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := s.cp.UserKubeconfig(user, "system:serviceaccounts", "system:serviceaccounts:"+harness.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := harness.NewBalancer()
	if err != nil {
		t.Fatal(err)
	}
	helm := newHelmRunner(t, fmt.Sprintf("https://127.0.0.1:%d", lb.Port()))

	var (
		replicas  []*harness.Webhook
		volume    *harness.SecretSync
		cm        *certManagerLite
		installed bool
		issuance  []*unstructured.Unstructured
	)
	// Uninstall first: with the replicas gone, configurations that fail closed would reject
	// every Pod of the enforced namespaces for the scenarios that follow.
	t.Cleanup(func() {
		if installed {
			if out, err := helm.run("uninstall", release, "--namespace", harness.Namespace, "--wait"); err != nil {
				t.Errorf("helm uninstall: %v\n%s", err, out)
			}
		}
		stopAll(replicas)
		if volume != nil {
			volume.Stop()
		}
		if cm != nil {
			cm.stop(t)
		}
		if certManager {
			deleteOwnedByCertificates(t, issuance)
			for _, u := range issuance {
				if name, _, _ := unstructured.NestedString(u.Object, "spec", "secretName"); name != "" {
					sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: u.GetNamespace(), Name: name}}
					if err := s.client.Delete(context.Background(), sec); client.IgnoreNotFound(err) != nil {
						t.Errorf("deleting Secret %s: %v", name, err)
					}
				}
			}
		}
		_ = lb.Close()
	})
	run := uniqueName(release)
	if certManager {
		if issuance, err = r.Objects("Issuer", "ClusterIssuer", "Certificate"); err != nil {
			t.Fatal(err)
		}
		if err := harness.EnsureNamespace(ctx, s.client, "cert-manager", nil); err != nil {
			t.Fatal(err)
		}
		if cm, err = startCertManagerLite(ctx, run); err != nil {
			t.Fatal(err)
		}
	}

	load := startAdmissionLoad(2)
	defer load.stop()
	if err := load.waitOK(minAdmissions, 30*time.Second); err != nil {
		t.Fatalf("before helm install: %v", err)
	}

	// helm install, as an operator would run it (--wait would wait for a Deployment no
	// kubelet runs here; it does not wait for the webhooks either).
	start := time.Now()
	if out, err := helm.run(append([]string{"install", release, filepath.Join(s.root, "charts", "runtimeguard"), "--namespace", harness.Namespace}, values...)...); err != nil {
		t.Fatalf("helm install: %v\n%s", err, out)
	}
	installed = true
	took := time.Since(start)
	if got := failurePolicies(t, release); got != "Ignore Ignore" {
		t.Fatalf("failurePolicy after helm install = %s, want Ignore on both webhooks until a replica serves", got)
	}
	// Pods keep being admitted while the configurations exist and nothing answers them.
	if err := load.waitOK(load.ok.Load()+minAdmissions, 30*time.Second); err != nil {
		t.Fatalf("after helm install, before any replica: %v", err)
	}

	certDir := filepath.Join(s.logDir, run+"-certs")
	if certManager {
		serving, err := servingCertificate(r)
		if err != nil {
			t.Fatal(err)
		}
		secretName, _, _ := unstructured.NestedString(serving.Object, "spec", "secretName")
		// The kubelet stand-in projects the Secret cert-manager issues.
		if volume, err = harness.StartSecretSync(ctx, s.client, types.NamespacedName{Namespace: harness.Namespace, Name: secretName},
			certDir, 60*time.Second, "tls.crt", "tls.key"); err != nil {
			t.Fatal(err)
		}
		certDir = volume.Dir
	}
	startReplica := func(name string, args []string) *harness.Webhook {
		t.Helper()
		w, err := harness.StartWebhook(ctx, harness.WebhookOptions{
			Kubeconfig: kubeconfig, CertDir: certDir, Args: args,
			LogPath: filepath.Join(s.logDir, run+"-"+name+".log"),
		})
		if err != nil {
			t.Fatalf("starting replica %s: %v", name, err)
		}
		replicas = append(replicas, w)
		lb.AddBackend(name, fmt.Sprintf("127.0.0.1:%d", w.Port), fmt.Sprintf("http://127.0.0.1:%d/readyz", w.HealthPort))
		return w
	}
	first := startReplica("replica-1", args)
	err = controlplane.Wait(ctx, 30*time.Second, func(context.Context) (bool, error) {
		return failurePolicies(t, release) == "Fail Fail", nil
	})
	if err != nil {
		t.Fatalf("the replica did not make the webhooks fail closed (failurePolicy %s; see %s): %v", failurePolicies(t, release), first.LogPath, err)
	}
	// The policy check keeps the chart's Ignore: a NotReady replica must still accept the fix.
	if _, check := webhookFailurePolicies(t, release); check != "Ignore" {
		t.Errorf("failurePolicy of %s = %q after the replica set Fail, want the chart's Ignore", policyCheckWebhook, check)
	}
	closed := time.Since(start)
	if err := load.waitOK(load.ok.Load()+minAdmissions, 30*time.Second); err != nil {
		t.Fatalf("after the replica took over: %v", err)
	}
	if n, err := first.MetricSum("runtimeguard_admissions_total", map[string]string{"webhook": "validate"}); err != nil || n == 0 {
		t.Fatalf("the release's replica answered %v validations (%v): its webhooks are not being called", n, err)
	}
	bundles := caBundles(t, release)

	// helm upgrade with a changed Deployment, and the rolling update a kubelet would do: a new
	// replica with the new flags, then the old one leaves. The failurePolicy must not reopen.
	var reopened atomic.Value
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for watchCtx.Err() == nil {
			if got := failurePolicies(t, release); got != "Fail Fail" {
				reopened.CompareAndSwap(nil, got)
			}
			time.Sleep(20 * time.Millisecond) // sampling pace, not a synchronisation
		}
	}()
	upgradeValues := append(values, "--set", "logLevel=debug")
	if out, err := helm.run(append([]string{"upgrade", release, filepath.Join(s.root, "charts", "runtimeguard"), "--namespace", harness.Namespace}, upgradeValues...)...); err != nil {
		t.Fatalf("helm upgrade: %v\n%s", err, out)
	}
	r2, err := harness.RenderChart(s.ctx, upgradeValues...)
	if err != nil {
		t.Fatal(err)
	}
	args2, err := r2.ServeArgs(harness.ServeArgsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	second := startReplica("replica-2", args2)
	lb.RemoveBackend("replica-1")
	first.Stop()
	if err := load.waitOK(load.ok.Load()+minAdmissions, 30*time.Second); err != nil {
		t.Errorf("after the upgrade: %v", err)
	}
	stopWatch()
	<-watched
	ok, failed, firstFailure := load.stop()
	if v := reopened.Load(); v != nil {
		t.Errorf("failurePolicy was %s during helm upgrade, want Fail throughout", v)
	}
	if got := caBundles(t, release); len(got) != 1 || !bytes.Equal(got[0], bundles[0]) || len(got[0]) == 0 {
		t.Errorf("caBundle changed or emptied by helm upgrade")
	}
	if n, err := second.MetricSum("runtimeguard_admissions_total", map[string]string{"webhook": "validate"}); err != nil || n == 0 {
		t.Errorf("the upgraded replica answered %v validations (%v)", n, err)
	}
	if failed > 0 {
		t.Errorf("%d of %d Pod creates failed during helm install and upgrade; first: %v", failed, ok+failed, firstFailure)
	}
	mode := "self-signed"
	if certManager {
		mode = "cert-manager"
	}
	measure("scenario %s lock-out: helm install took %s; webhooks failing closed %s after it started; %d Pod creates during install and upgrade, %d failed",
		mode, took.Round(time.Millisecond), closed.Round(time.Millisecond), ok+failed, failed)
}

// failurePolicies is the failurePolicy of the release's mutating and validating webhook.
// failurePolicies lists the failurePolicy of the release's Pod webhooks (mutating, then
// validating); policyCheck is that of the policy ConfigMap check, which the replica leaves alone.
func failurePolicies(t *testing.T, name string) string {
	pods, _ := webhookFailurePolicies(t, name)
	return pods
}

func webhookFailurePolicies(t *testing.T, name string) (pods, policyCheck string) {
	t.Helper()
	ctx := context.Background()
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := s.client.Get(ctx, client.ObjectKey{Name: name}, m); err != nil {
		return "missing: " + err.Error(), ""
	}
	if err := s.client.Get(ctx, client.ObjectKey{Name: name}, v); err != nil {
		return "missing: " + err.Error(), ""
	}
	var out []string
	for _, w := range m.Webhooks {
		out = append(out, string(*w.FailurePolicy))
	}
	for _, w := range v.Webhooks {
		if w.Name == policyCheckWebhook {
			policyCheck = string(*w.FailurePolicy)
			continue
		}
		out = append(out, string(*w.FailurePolicy))
	}
	return strings.Join(out, " "), policyCheck
}

// policyCheckWebhook is the chart's policy ConfigMap check in its ValidatingWebhookConfiguration.
const policyCheckWebhook = "policy.runtimeguard.io"

// helmRunner runs bin/helm against the suite's control plane as its admin, with throw-away
// Helm directories and this test binary as post-renderer (postRenderEnv).
type helmRunner struct {
	bin, home, self, url string
}

func newHelmRunner(t *testing.T, url string) *helmRunner {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return &helmRunner{bin: s.paths.Helm, home: t.TempDir(), self: self, url: url}
}

func (h *helmRunner) run(args ...string) (string, error) {
	if args[0] == "install" || args[0] == "upgrade" {
		args = append(args, "--post-renderer", h.self)
	}
	cmd := exec.Command(h.bin, append(args, "--kubeconfig", s.cp.Kubeconfig)...)
	cmd.Env = append(os.Environ(), postRenderEnv+"="+h.url,
		"HELM_CACHE_HOME="+filepath.Join(h.home, "cache"), "HELM_CONFIG_HOME="+filepath.Join(h.home, "config"),
		"HELM_DATA_HOME="+filepath.Join(h.home, "data"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// postRenderEnv set makes the test binary a Helm post-renderer (TestMain): it points every
// webhook's clientConfig at the URL in it, keeping the path, the caBundle and annotations.
const postRenderEnv = "RUNTIMEGUARD_E2E_POST_RENDER_URL"

func postRender(baseURL string, in io.Reader, out io.Writer) error {
	b, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	var docs []string
	for _, doc := range strings.Split(string(b), "\n---") {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			return fmt.Errorf("post-renderer: %w", err)
		}
		kind, _ := obj["kind"].(string)
		if kind != "MutatingWebhookConfiguration" && kind != "ValidatingWebhookConfiguration" {
			docs = append(docs, strings.TrimPrefix(doc, "\n"))
			continue
		}
		webhooks, _ := obj["webhooks"].([]any)
		for _, w := range webhooks {
			cc, _ := w.(map[string]any)["clientConfig"].(map[string]any)
			svc, _ := cc["service"].(map[string]any)
			path, _ := svc["path"].(string)
			delete(cc, "service")
			cc["url"] = baseURL + path
		}
		y, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		docs = append(docs, string(y))
	}
	_, err = io.WriteString(out, strings.Join(docs, "\n---\n"))
	return err
}
