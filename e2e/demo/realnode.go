package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/runtimeguard/runtimeguard/e2e/controlplane"
	"github.com/runtimeguard/runtimeguard/e2e/harness"
	"github.com/runtimeguard/runtimeguard/e2e/node"
	"github.com/runtimeguard/runtimeguard/e2e/tools"
)

// realNodeControlPlane is what `make demo-node` starts: the node lifecycle controller lifts
// the not-ready taint the API server puts on a new Node.
var realNodeControlPlane = controlplane.Options{Scheduler: true, NodeLifecycle: true}

// realNodeTools resolves every tool `make demo-node` runs (entry demo-node in tools.txt) and
// returns kubectl's path and the node's tool directory.
func realNodeTools(r *tools.Resolver) (kubectl, nodeBin string, err error) {
	if _, err := r.Dir(append(realNodeControlPlane.Binaries(), harness.ChartTool)...); err != nil {
		return "", "", err
	}
	if nodeBin, err = node.ResolveTools(r, realNodeControlPlane); err != nil {
		return "", "", err
	}
	kubectl, err = r.Path("kubectl")
	return kubectl, nodeBin, err
}

// kernelPod prints the kernel it runs on: host network (the node has no CNI plugin), no service
// account token, the busybox image imported offline.
const kernelPod = `apiVersion: v1
kind: Pod
metadata: {name: kernel, namespace: %s}
spec:
  hostNetwork: true
  automountServiceAccountToken: false
  restartPolicy: Never
  containers:
  - {name: kernel, image: %s, imagePullPolicy: Never, command: [cat, /proc/version]}
`

// runRealNode is `make demo-node`: the demo with a real node (kubelet, containerd, runc and
// gVisor) instead of Node objects, so the Pod runtimeguard gives gvisor really runs in gVisor.
func runRealNode(ctx context.Context, root string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("a real node (containerd, kubelet, cgroups, a mount namespace) needs root: run make demo-node as root")
	}
	bin := filepath.Join(root, "bin")
	resolver := tools.New(tools.DemoNode, bin)
	kubectlPath, nodeBin, err := realNodeTools(resolver)
	if err != nil {
		return err
	}
	if err := controlplane.RequireBinaries(bin, "runtimeguard"); err != nil {
		return fmt.Errorf("%w (or `make build`)", err)
	}
	ctx = tools.WithResolver(ctx, resolver)
	step("starting etcd, kube-apiserver, kube-controller-manager and kube-scheduler")
	cpOpts := realNodeControlPlane
	cpOpts.Tools = resolver
	cp, err := controlplane.Start(cpOpts)
	if err != nil {
		return err
	}
	defer cp.Stop()
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	c, err := client.New(cp.Config, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	if err := harness.ApplyClasses(ctx, c, harness.StandardClasses()); err != nil {
		return err
	}
	for name, labels := range map[string]map[string]string{
		"tenant-a": {"runtimeguard.io/tenancy": "untrusted"}, "team-b": nil, harness.Namespace: nil,
	} {
		if err := harness.EnsureNamespace(ctx, c, name, labels); err != nil {
			return err
		}
	}

	step("starting runtimeguard serve and registering the chart's webhook configurations")
	_, _, stopWebhook, err := startWebhook(ctx, c, cp)
	if err != nil {
		return err
	}
	defer stopWebhook()

	step("starting a real node: containerd (handlers runc, runsc = gVisor, kata-qemu without its shim) and a kubelet")
	start := time.Now()
	n, err := node.Start(ctx, node.Options{
		ControlPlane: cp, BinDir: nodeBin, Name: "node-1",
		Labels: map[string]string{harness.GVisorLabel: "true", harness.KataLabel: "true"},
	})
	if err != nil {
		return err
	}
	defer func() {
		step("stopping the node, the webhook and the control plane")
		if err := n.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "demo: stopping the node:", err)
		}
	}()
	fmt.Printf("    node Ready in %s (run directory %s)\n", time.Since(start).Round(100*time.Millisecond), n.Dir)
	kubectl := func(stdin string, args ...string) (string, error) {
		return runKubectl(kubectlPath, cp.Kubeconfig, stdin, args...)
	}
	out, _ := kubectl("", "get", "nodes", "-o", "custom-columns=NAME:.metadata.name,READY:.status.conditions[?(@.type=='Ready')].status,RUNTIME-HANDLERS:.status.runtimeHandlers[*].name")
	fmt.Println(indent(out))

	for _, ns := range []string{"tenant-a", "team-b"} {
		fmt.Printf("\n$ kubectl apply -f - # Pod %s/kernel, no runtimeClassName, prints /proc/version\n", ns)
		out, err := kubectl(fmt.Sprintf(kernelPod, ns, n.BusyboxImage), "apply", "-f", "-")
		fmt.Println(indent(out))
		if err != nil {
			return fmt.Errorf("kubectl apply: %w", err)
		}
	}
	step("waiting for both Pods to run to completion on node-1")
	err = controlplane.Wait(ctx, 2*time.Minute, func(ctx context.Context) (bool, error) {
		done := 0
		for _, ns := range []string{"tenant-a", "team-b"} {
			out, err := kubectl("", "get", "pod", "kernel", "-n", ns, "-o", "jsonpath={.status.phase}")
			if err != nil {
				return false, nil
			}
			if out == "Failed" {
				return false, fmt.Errorf("pod %s/kernel failed: see %s", ns, n.Dir)
			}
			if out == "Succeeded" {
				done++
			}
		}
		return done == 2, nil
	})
	if err != nil {
		return err
	}
	out, _ = kubectl("", "get", "pods", "-A", "-o", "custom-columns=NAMESPACE:.metadata.namespace,NAME:.metadata.name,RUNTIMECLASS:.spec.runtimeClassName,NODE:.spec.nodeName,STATUS:.status.phase")
	fmt.Println(indent(out))
	for _, ns := range []string{"tenant-a", "team-b"} {
		fmt.Printf("\n$ kubectl logs -n %s kernel\n", ns)
		out, err := kubectl("", "logs", "-n", ns, "kernel")
		fmt.Println(indent(out))
		if err != nil {
			return fmt.Errorf("kubectl logs: %w", err)
		}
		if want := ns == "tenant-a"; strings.Contains(out, "gvisor") != want {
			return fmt.Errorf("pod %s/kernel: gVisor's kernel %v, want %v", ns, !want, want)
		}
	}
	fmt.Println("\n    tenant-a's Pod ran in gVisor (its kernel is gVisor's); team-b's ran in runc, on the host's kernel.")
	return nil
}
