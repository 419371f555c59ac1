package node_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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

// hostPaths are where a kubelet or containerd writes by default: none may appear.
var hostPaths = []string{"/var/lib/kubelet", "/var/log/pods", "/var/log/containers", "/run/containerd", "/etc/containerd"}

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
	r := tools.New(tools.Node, bin)
	cp, err := controlplane.Start(controlplane.Options{Tools: r, LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	before := hostState(t)

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
	if got.Status.NodeInfo.KubeletVersion != "v1.37.2" {
		t.Errorf("kubelet version %q, want v1.37.2", got.Status.NodeInfo.KubeletVersion)
	}
	if err := n.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if left := node.Leftovers(dir, cgroup); len(left) > 0 {
		t.Errorf("left after Stop:\n%s", strings.Join(left, "\n"))
	}
	if after := hostState(t); !slices.Equal(after, before) {
		t.Errorf("the host changed:\nbefore %q\nafter  %q", before, after)
	}
}

// hostState reads the kubelet's kernel tunables and which default paths exist.
func hostState(t *testing.T) []string {
	var out []string
	for _, f := range []string{"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops", "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"} {
		b, err := os.ReadFile(filepath.Join("/proc/sys", f))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f+"="+strings.TrimSpace(string(b)))
	}
	for _, p := range hostPaths {
		if _, err := os.Stat(p); err == nil {
			out = append(out, p+" exists")
		}
	}
	return out
}
