package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/runtimeguard/runtimeguard/e2e/controlplane"
	"github.com/runtimeguard/runtimeguard/e2e/harness"
	"github.com/runtimeguard/runtimeguard/webhook/native"
)

var nativeKinds = []string{"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"}

// Scenario 36. The chart's native admission policies decide without the webhook: on a control
// plane of its own (the suite's has the webhook registered for every namespace), in native.mode
// both with the Pod webhooks registered but unreachable (no Service behind them, as with the
// Deployment scaled to zero), and in native.mode native with none. `serve --native-params`, as
// the chart runs it, keeps the classes' availability current: a node losing its handler
// changes the injected class within seconds.
func TestNativePoliciesDecideWhileTheWebhookIsDown(t *testing.T) {
	ctx := context.Background()
	cp, err := controlplane.Start(controlplane.Options{Tools: s.tools, LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cp.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	for ns, labels := range map[string]map[string]string{
		harness.Namespace: nil,
		nsUntrusted:       {"runtimeguard.io/tenancy": "untrusted"},
		nsFinancial:       {"runtimeguard.io/tenancy": "financial"},
	} {
		if err := harness.EnsureNamespace(ctx, c, ns, labels); err != nil {
			t.Fatal(err)
		}
	}
	if err := harness.ApplyClasses(ctx, c, harness.StandardClasses()); err != nil {
		t.Fatal(err)
	}
	sandbox := harness.SandboxNode("sandbox-1")
	for _, n := range append(harness.StandardNodes(), sandbox) {
		if err := harness.ApplyNode(ctx, c, n); err != nil {
			t.Fatal(err)
		}
	}
	keeper, err := harness.StartWebhook(ctx, harness.WebhookOptions{
		Kubeconfig: cp.Kubeconfig, CertDir: s.certDir, LogPath: filepath.Join(s.logDir, "native-params.log"),
		Args: []string{"--native-params", "--native-params-lease-name=runtimeguard-native-params"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(keeper.Stop)

	for _, mode := range []string{"both", "native"} {
		t.Run(mode, func(t *testing.T) {
			r, err := harness.RenderChart(s.ctx, "--set", "native.mode="+mode)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.ApplyKinds(ctx, c, nativeKinds...); err != nil {
				t.Fatal(err)
			}
			// The chart's webhook configurations as rendered: a Service that does not exist.
			if err := r.Apply(ctx, c); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.Delete(ctx, c) })
			if mode == "native" && r.Mutating != nil {
				t.Fatal("native mode rendered a MutatingWebhookConfiguration")
			}
			if mode == "both" && ptr.Deref(r.Mutating.Webhooks[0].FailurePolicy, "") != "Ignore" {
				t.Fatalf("both mode: the mutating webhook's failurePolicy is %v, want Ignore", r.Mutating.Webhooks[0].FailurePolicy)
			}

			// Policies compile asynchronously in the API server, and the keeper writes the
			// parameters once its view synced: wait for the injection, not for a time.
			waitInjected(t, c, "gvisor")
			// The validating policy becomes active on its own, not with the mutating one: a
			// financial Pod naming gvisor may be admitted until it is (seen once in CI).
			want := `which needs isolation >= 2 (runtime class "kata" or stronger); spec.runtimeClassName is "gvisor"`
			var last error
			err = controlplane.Wait(ctx, time.Minute, func(ctx context.Context) (bool, error) {
				_, last = createNativePod(ctx, c, nsFinancial, "gvisor")
				return last != nil && strings.Contains(last.Error(), want) && strings.Contains(last.Error(), native.PolicyName), nil
			})
			if err != nil {
				t.Errorf("a financial pod naming gvisor: %v, want denied by %s with %q", last, native.PolicyName, want)
			}
			if p, err := createNativePod(ctx, c, "kube-system", ""); err != nil || p.Spec.RuntimeClassName != nil {
				t.Errorf("kube-system pod: class %q, error %v; want it untouched", ptr.Deref(p.Spec.RuntimeClassName, ""), err)
			}
			if mode != "both" {
				return
			}
			// The only node running runsc stops reporting it.
			gone := sandbox
			gone.Handlers = []string{"runc"}
			if err := harness.ApplyNode(ctx, c, gone); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			waitInjected(t, c, "kata")
			t.Logf("measure: native policies followed a node losing runsc in %s", time.Since(start).Round(10*time.Millisecond))
			if err := harness.ApplyNode(ctx, c, sandbox); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func createNativePod(ctx context.Context, c client.Client, ns, class string) (*corev1.Pod, error) {
	p := harness.Pod(ns, "")
	p.GenerateName, p.Name = "native-", ""
	if class != "" {
		p.Spec.RuntimeClassName = &class
	}
	return p, c.Create(ctx, p)
}

// waitInjected waits until an untrusted Pod without class is created with class.
func waitInjected(t *testing.T, c client.Client, class string) {
	t.Helper()
	var last string
	err := controlplane.Wait(context.Background(), time.Minute, func(ctx context.Context) (bool, error) {
		p, err := createNativePod(ctx, c, nsUntrusted, "")
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = fmt.Sprintf("created with class %q", ptr.Deref(p.Spec.RuntimeClassName, ""))
		return ptr.Deref(p.Spec.RuntimeClassName, "") == class, nil
	})
	if err != nil {
		t.Fatalf("waiting for untrusted pods to get %s: %v (last: %s)", class, err, last)
	}
}
