// Command demo is `make demo`: it starts a local control plane (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler), runs `runtimeguard serve` registered through the Helm chart's
// webhook configurations, creates RuntimeClasses, Nodes and a namespace per tenancy, applies
// example workloads with the real kubectl, and prints what happened to each. Then it stops
// everything, unless DEMO_KEEP=1 asks it to keep running for you to play with.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/runtimeguard/runtimeguard/certs"
	"github.com/runtimeguard/runtimeguard/e2e/controlplane"
	"github.com/runtimeguard/runtimeguard/e2e/harness"
	"github.com/runtimeguard/runtimeguard/e2e/tools"
)

func main() {
	realNode := flag.Bool("real-node", false, "run the Pods on a real node (kubelet, containerd, runc, gVisor; root): make demo-node")
	flag.Parse()
	run := run
	if *realNode {
		run = func() error {
			root, err := controlplane.RepoRoot()
			if err != nil {
				return err
			}
			return runRealNode(context.Background(), root)
		}
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// demoControlPlane is the control plane the demo starts.
var demoControlPlane = controlplane.Options{ControllerManager: true, Scheduler: true}

// demoTools resolves every tool the demo runs before it starts anything, so that one `make
// demo` does not build fails at once; it returns kubectl's path. Its dry run is checked against
// what `make demo` builds (TestMakeDemoBuildsEveryToolTheDemoResolves).
func demoTools(r *tools.Resolver) (kubectl string, err error) {
	if _, err := r.Dir(append(demoControlPlane.Binaries(), harness.ChartTool)...); err != nil {
		return "", err
	}
	return r.Path("kubectl")
}

func step(format string, args ...any) { fmt.Printf("\n==> "+format+"\n", args...) }

func run() error {
	ctx := context.Background()
	root, err := controlplane.RepoRoot()
	if err != nil {
		return err
	}
	bin := filepath.Join(root, "bin")
	resolver := tools.New(tools.Demo, bin)
	kubectlPath, err := demoTools(resolver)
	if err != nil {
		return err
	}
	if err := controlplane.RequireBinaries(bin, "runtimeguard"); err != nil {
		return fmt.Errorf("%w (or `make build`)", err)
	}
	ctx = tools.WithResolver(ctx, resolver)
	step("starting etcd, kube-apiserver, kube-controller-manager and kube-scheduler (built from the Go module proxy)")
	start := time.Now()
	cpOpts := demoControlPlane
	cpOpts.Tools = resolver
	cp, err := controlplane.Start(cpOpts)
	if err != nil {
		return err
	}
	defer cp.Stop()
	fmt.Printf("    control plane up in %s\n", time.Since(start).Round(100*time.Millisecond))

	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	c, err := client.New(cp.Config, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}

	step("creating RuntimeClasses, Nodes and a namespace per tenancy")
	classes := append(harness.StandardClasses(), &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "wasm"}, Handler: "spin"})
	if err := harness.ApplyClasses(ctx, c, classes); err != nil {
		return err
	}
	for _, n := range harness.StandardNodes() {
		if err := harness.ApplyNode(ctx, c, n); err != nil {
			return err
		}
	}
	for name, labels := range map[string]map[string]string{
		"tenant-a": {"runtimeguard.io/tenancy": "untrusted"}, "payments": {"runtimeguard.io/tenancy": "financial"},
		"ml": nil, harness.Namespace: nil,
	} {
		if err := harness.EnsureNamespace(ctx, c, name, labels); err != nil {
			return err
		}
	}
	kubectl := func(stdin string, args ...string) (string, error) {
		return runKubectl(kubectlPath, cp.Kubeconfig, stdin, args...)
	}
	out, _ := kubectl("", "get", "runtimeclasses,nodes", "-o", "custom-columns=KIND:.kind,NAME:.metadata.name,HANDLER:.handler,POOL:.metadata.labels.pool,RUNTIME-HANDLERS:.status.runtimeHandlers[*].name")
	fmt.Println(indent(out))
	out, _ = kubectl("", "get", "namespaces", "-L", "runtimeguard.io/tenancy")
	fmt.Println(indent(out))

	step("starting runtimeguard serve (TLS, dev certificates) and registering the chart's webhook configurations")
	w, logPath, stop, err := startWebhook(ctx, c, cp)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Printf("    webhook ready on https://127.0.0.1:%d (log: %s)\n", w.Port, logPath)

	step("applying example workloads with kubectl")
	workloads, err := os.ReadFile(filepath.Join(root, "e2e", "demo", "workloads.yaml"))
	if err != nil {
		return err
	}
	for _, doc := range strings.Split(string(workloads), "\n---\n") {
		var meta struct {
			Kind     string            `json:"kind"`
			Metadata metav1.ObjectMeta `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil || meta.Kind == "" {
			continue
		}
		fmt.Printf("\n$ kubectl apply -f - # %s %s/%s\n", meta.Kind, meta.Metadata.Namespace, meta.Metadata.Name)
		out, err := kubectl(doc, "apply", "-f", "-")
		fmt.Println(indent(out))
		if err != nil {
			continue
		}
		if meta.Kind == "Pod" {
			p := &corev1.Pod{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: meta.Metadata.Namespace, Name: meta.Metadata.Name}, p); err != nil {
				return err
			}
			fmt.Println(indent(describe(p)))
		}
	}
	step("pods that kube-controller-manager created for Deployment tenant-a/tenant-web")
	_ = controlplane.Wait(ctx, 30*time.Second, func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		err := c.List(ctx, &pods, client.InNamespace("tenant-a"), client.MatchingLabels{"app": "tenant-web"})
		return err == nil && len(pods.Items) == 2, err
	})
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace("tenant-a"), client.MatchingLabels{"app": "tenant-web"}); err != nil {
		return err
	}
	for i := range pods.Items {
		fmt.Printf("    %s: %s\n", pods.Items[i].Name, describe(&pods.Items[i]))
	}

	step("where kube-scheduler bound the admitted Pods (there is no kubelet: bound Pods stay Pending)")
	// Binding takes the scheduler milliseconds; wait for it rather than print a moment too
	// early (a Pod the scheduler cannot place would show <none> after the timeout).
	_ = controlplane.Wait(ctx, 30*time.Second, func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		if err := c.List(ctx, &pods); err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if p.Spec.NodeName == "" {
				return false, nil
			}
		}
		return true, nil
	})
	out, _ = kubectl("", "get", "pods", "-A", "--sort-by=.metadata.namespace",
		"-o", "custom-columns=NAMESPACE:.metadata.namespace,NAME:.metadata.name,RUNTIMECLASS:.spec.runtimeClassName,NODE:.spec.nodeName,NODE-SELECTOR:.spec.nodeSelector")
	fmt.Println(indent(out))

	if os.Getenv("DEMO_KEEP") != "" {
		step("still running. Try:\n    export KUBECONFIG=%s\n    %s/kubectl run try --image=busybox -n tenant-a -o jsonpath='{.spec.runtimeClassName}'\nCtrl-C stops everything.", cp.Kubeconfig, bin)
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
	}
	step("stopping the webhook and the control plane")
	return nil
}

// startWebhook runs `runtimeguard serve` with dev certificates against cp and registers it
// through the chart's webhook configurations; stop stops it and removes its directory.
func startWebhook(ctx context.Context, c client.Client, cp *controlplane.ControlPlane) (w *harness.Webhook, logPath string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "runtimeguard-demo-")
	if err != nil {
		return nil, "", nil, err
	}
	stop = func() { os.RemoveAll(dir) }
	defer func() {
		if err != nil {
			stop()
		}
	}()
	dev, err := certs.WriteDevCerts(filepath.Join(dir, "certs"), []string{"127.0.0.1", "localhost"}, 24*time.Hour)
	if err != nil {
		return nil, "", nil, err
	}
	rendered, err := harness.RenderChart(ctx)
	if err != nil {
		return nil, "", nil, err
	}
	logPath = filepath.Join(dir, "runtimeguard.log")
	w, err = harness.StartWebhook(ctx, harness.WebhookOptions{Kubeconfig: cp.Kubeconfig, CertDir: filepath.Join(dir, "certs"), LogPath: logPath})
	if err != nil {
		return nil, "", nil, err
	}
	stop = func() { w.Stop(); os.RemoveAll(dir) }
	rendered.PointAt(fmt.Sprintf("https://127.0.0.1:%d", w.Port), dev.CAPEM)
	if err := rendered.Apply(ctx, c); err != nil {
		return nil, "", nil, err
	}
	return w, logPath, stop, nil
}

// runKubectl runs kubectl against kubeconfig with stdin, returning its trimmed output.
func runKubectl(path, kubeconfig, stdin string, args ...string) (string, error) {
	cmd := exec.Command(path, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

func describe(p *corev1.Pod) string {
	class := ptr.Deref(p.Spec.RuntimeClassName, "")
	if class == "" {
		return "runtimeClassName: (none, the node's default runtime)"
	}
	var parts []string
	parts = append(parts, "runtimeClassName: "+class)
	if p.Spec.Overhead != nil {
		parts = append(parts, fmt.Sprintf("overhead: cpu=%s memory=%s", p.Spec.Overhead.Cpu(), p.Spec.Overhead.Memory()))
	}
	if len(p.Spec.NodeSelector) > 0 {
		parts = append(parts, fmt.Sprintf("nodeSelector: %v", p.Spec.NodeSelector))
	}
	return strings.Join(parts, "; ")
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}
