package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/runtimeguard/runtimeguard/e2e/controlplane"
	"github.com/runtimeguard/runtimeguard/e2e/harness"
	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/native"
)

// runNative is `runner native`: what a Pod create costs at the API server with runtimeguard's
// webhook, with the native admission policies instead, and with no policy at all. Creates go
// through a real kube-apiserver one at a time (the client's wall time per create), in rounds
// that visit the three modes in turn; every create in a policy mode is checked to get gvisor.
func runNative(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("native", flag.ContinueOnError)
	c := commonFlags(fs)
	n := fs.Int("requests", 300, "creates per mode per round")
	rounds := fs.Int("rounds", 3, "rounds of [none, webhook, native]")
	if err := fs.Parse(args); err != nil {
		return err
	}
	e, err := c.env()
	if err != nil {
		return err
	}
	cp, err := controlplane.Start(controlplane.Options{BinDir: e.bin})
	if err != nil {
		return err
	}
	defer func() { _ = cp.Stop() }()
	cfg := rest.CopyConfig(cp.Config)
	cfg.QPS, cfg.Burst = -1, 0
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	const ns = "bench-untrusted"
	for name, labels := range map[string]map[string]string{harness.Namespace: nil, ns: {"runtimeguard.io/tenancy": "untrusted"}} {
		if err := harness.EnsureNamespace(ctx, cl, name, labels); err != nil {
			return err
		}
	}
	if err := harness.ApplyClasses(ctx, cl, harness.StandardClasses()); err != nil {
		return err
	}
	for _, node := range append(harness.StandardNodes(), harness.SandboxNode("sandbox-1")) {
		if err := harness.ApplyNode(ctx, cl, node); err != nil {
			return err
		}
	}

	// The webhook: serve --kubeconfig, registered as the chart registers it (failurePolicy Fail).
	if err := os.MkdirAll(filepath.Join(e.out, "logs"), 0o755); err != nil {
		return err
	}
	wh, err := harness.StartWebhook(ctx, harness.WebhookOptions{
		Binary: filepath.Join(e.bin, "runtimeguard"), Kubeconfig: cp.Kubeconfig, CertDir: e.certDir,
		LogPath: filepath.Join(e.out, "logs", "native-webhook.log"),
	})
	if err != nil {
		return err
	}
	defer wh.Stop()
	caBundle, err := os.ReadFile(filepath.Join(e.certDir, "ca.crt"))
	if err != nil {
		return err
	}
	hooks := webhookConfigurations(fmt.Sprintf("https://127.0.0.1:%d", wh.Port), caBundle)

	// The native policies, generated from the embedded default policy's data.
	set, err := (&webhook.Options{}).LoadPolicies()
	if err != nil {
		return err
	}
	bundle, err := native.Generate(set.Data, native.Options{Namespace: harness.Namespace, Available: map[string]bool{"gvisor": true, "kata": true}})
	if err != nil {
		return err
	}
	for _, o := range []client.Object{bundle.Validating, bundle.Mutating, bundle.Params} {
		if err := cl.Create(ctx, o); err != nil {
			return err
		}
	}
	bindings := []client.Object{bundle.ValidatingBindings[0], bundle.ValidatingBindings[1], bundle.MutatingBinding}

	modes := []struct {
		name, class string
		on          []client.Object
	}{
		{"no policy", "", nil},
		{"webhook (runtimeguard serve)", "gvisor", hooks},
		{"native admission policies", "gvisor", bindings},
	}
	lat := make([][]time.Duration, len(modes))
	for r := range *rounds {
		for i, m := range modes {
			for _, o := range m.on {
				o.SetResourceVersion("")
				if err := cl.Create(ctx, o.DeepCopyObject().(client.Object)); err != nil {
					return fmt.Errorf("%s: %w", m.name, err)
				}
			}
			// The API server picks up configurations and policies asynchronously.
			if err := controlplane.Wait(ctx, time.Minute, func(ctx context.Context) (bool, error) {
				p, err := createBenchPod(ctx, cl, ns)
				return err == nil && ptr.Deref(p.Spec.RuntimeClassName, "") == m.class, nil
			}); err != nil {
				return fmt.Errorf("%s: waiting for pods to get class %q: %w", m.name, m.class, err)
			}
			for range *n {
				start := time.Now()
				p, err := createBenchPod(ctx, cl, ns)
				d := time.Since(start)
				if err != nil {
					return fmt.Errorf("%s: %w", m.name, err)
				}
				if got := ptr.Deref(p.Spec.RuntimeClassName, ""); got != m.class {
					return fmt.Errorf("%s: a pod got class %q, want %q", m.name, got, m.class)
				}
				lat[i] = append(lat[i], d)
			}
			for _, o := range m.on {
				if err := cl.Delete(ctx, o); err != nil {
					return err
				}
			}
			fmt.Fprintf(os.Stderr, "native: round %d %s done\n", r+1, m.name)
		}
	}
	fmt.Fprintf(out, "\n### Pod create latency at the API server: webhook vs native admission policies (%d creates per mode, %d interleaved rounds, one at a time)\n\n", *n**rounds, *rounds)
	fmt.Fprintln(out, "| mode | p50 ms | p90 ms | p99 ms | mean ms | added p50 over no policy |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|")
	base := percentile(lat[0], 50)
	for i, m := range modes {
		p50 := percentile(lat[i], 50)
		fmt.Fprintf(out, "| %s | %s | %s | %s | %s | %+.3f ms |\n", m.name, ms(p50), ms(percentile(lat[i], 90)), ms(percentile(lat[i], 99)), ms(mean(lat[i])), float64(p50-base)/float64(time.Millisecond))
	}
	return nil
}

func createBenchPod(ctx context.Context, c client.Client, ns string) (*corev1.Pod, error) {
	p := harness.Pod(ns, "")
	p.GenerateName, p.Name = "bench-", ""
	return p, c.Create(ctx, p)
}

// webhookConfigurations registers the webhook at url as the chart does for Pods.
func webhookConfigurations(url string, caBundle []byte) []client.Object {
	rules := []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
	}}
	exempt := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system", harness.Namespace}},
	}}
	none := admissionregistrationv1.SideEffectClassNone
	fail := admissionregistrationv1.Fail
	mutate, validate := url+"/mutate-v1-pod", url+"/validate-v1-pod"
	return []client.Object{
		&admissionregistrationv1.MutatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "runtimeguard-bench"},
			Webhooks: []admissionregistrationv1.MutatingWebhook{{
				Name: "mutate.runtimeguard.io", ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &mutate, CABundle: caBundle},
				Rules: rules, NamespaceSelector: exempt, SideEffects: &none, FailurePolicy: &fail, AdmissionReviewVersions: []string{"v1"},
			}},
		},
		&admissionregistrationv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "runtimeguard-bench"},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{{
				Name: "validate.runtimeguard.io", ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &validate, CABundle: caBundle},
				Rules: rules, NamespaceSelector: exempt, SideEffects: &none, FailurePolicy: &fail, AdmissionReviewVersions: []string{"v1"},
			}},
		},
	}
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func mean(d []time.Duration) time.Duration {
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return sum / time.Duration(max(len(d), 1))
}
