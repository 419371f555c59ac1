package node_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/runtimeguard/runtimeguard/e2e/controlplane"
	"github.com/runtimeguard/runtimeguard/e2e/node"
	"github.com/runtimeguard/runtimeguard/e2e/tools"
)

// EnvVar gates the real-node tests: `make test-node` sets it (and builds the node tools
// first). Without it they skip, since `make test` does not build the node tools; with it, a
// missing tool is a failure.
const EnvVar = "RUNTIMEGUARD_NODE_E2E"

// TestNodeStartsReadyAndLeavesNothingBehind: the harness's own test. The kubelet registers,
// the Node turns Ready reporting containerd's handlers, and after Stop no process, mount,
// cgroup, host file or host sysctl value is left changed.
func TestNodeStartsReadyAndLeavesNothingBehind(t *testing.T) {
	if os.Getenv(EnvVar) == "" {
		t.Skipf("real node: run by `make test-node` (%s=1), which builds the node tools", EnvVar)
	}
	bin, err := tools.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	cpOpts := controlplane.Options{Tools: tools.New(tools.Node, bin), NodeLifecycle: true, LogDir: t.TempDir()}
	if _, err := node.ResolveTools(cpOpts.Tools, cpOpts); err != nil {
		t.Fatal(err)
	}
	cp, err := controlplane.Start(cpOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	before, err := node.HostState()
	if err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	start := time.Now()
	n, err := node.Start(ctx, node.Options{ControlPlane: cp, BinDir: bin, Name: "harness-node"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("measure: node Ready %s after start", time.Since(start).Round(100*time.Millisecond))
	dir, cgroup := n.Dir, n.Cgroup
	cs := kubernetes.NewForConfigOrDie(cp.Config)
	got, err := cs.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var handlers []string
	for _, h := range got.Status.RuntimeHandlers {
		if h.Name != "" { // the kubelet also reports the default handler, unnamed
			handlers = append(handlers, h.Name)
		}
	}
	slices.Sort(handlers)
	if want := []string{"kata-qemu", "runc", "runsc"}; !slices.Equal(handlers, want) {
		t.Errorf("status.runtimeHandlers %v, want %v (containerd's config)", handlers, want)
	}
	if len(got.Spec.Taints) > 0 {
		t.Errorf("the Ready node has taints %v, want none", got.Spec.Taints)
	}
	if a := got.Status.Addresses; len(a) == 0 || a[0] != (corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}) {
		t.Errorf("node addresses %v, want InternalIP 127.0.0.1 first (where the kubelet listens)", a)
	}
	if got.Status.NodeInfo.KubeletVersion != "v1.37.2" {
		t.Errorf("kubelet version %q, want v1.37.2", got.Status.NodeInfo.KubeletVersion)
	}
	// The kubelet "fixed" the kernel tunables it wants: in the run directory's stand-ins.
	if b, err := os.ReadFile(filepath.Join(n.Dir, "sysctl", "kernel.panic")); err != nil || strings.TrimSpace(string(b)) != "10" {
		t.Errorf("the kubelet's kernel.panic stand-in holds %q (%v), want 10: did it write the host's?", b, err)
	}
	if err := n.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if left := node.Leftovers(dir, cgroup); len(left) > 0 {
		t.Errorf("left after Stop:\n%s", strings.Join(left, "\n"))
	}
	if after, err := node.HostState(); err != nil || !slices.Equal(after, before) {
		t.Errorf("the host changed:\nbefore %q\nafter  %q (%v)", before, after, err)
	}
}
