package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/runtimeguard/runtimeguard/e2e/controlplane"
	"github.com/runtimeguard/runtimeguard/e2e/harness"
	"github.com/runtimeguard/runtimeguard/e2e/node"
	"github.com/runtimeguard/runtimeguard/e2e/tools"
)

// nodeE2EEnv gates the real-node scenarios: `make test-node` sets it after building the node
// tools. `make e2e` and `make test` do not build them (a cold `make test` would go over its
// 70-minute budget), so without it the scenarios skip; with it, a missing tool fails them.
const nodeE2EEnv = "RUNTIMEGUARD_NODE_E2E"

// realNode is the state of the real-node scenarios: a control plane of their own (the suite's
// has Nodes that are only API objects, which kube-scheduler could bind to), the chart's webhook
// configurations calling a runtimeguard serve of its own, and one real node.
type realNode struct {
	cp      *controlplane.ControlPlane
	c       client.Client
	cs      *kubernetes.Clientset
	webhook *harness.Webhook
	node    *node.Node
	warned  *warningRecorder
	// hostBefore is node.HostState before the node started.
	hostBefore []string
}

// Scenarios 37-40 and a cleanup check: a real node in the loop (issue 15). containerd runs runc, runsc (gVisor)
// and kata-qemu (configured, shim absent); the kubelet registers and reports them; the webhook
// decides from what the kubelet reports, kube-scheduler binds, the kubelet runs the Pod in
// the runtime the class names.
func TestRealNode(t *testing.T) {
	if os.Getenv(nodeE2EEnv) == "" {
		t.Skipf("real node: run by `make test-node` (%s=1), which builds the node tools", nodeE2EEnv)
	}
	rn := startRealNode(t)
	ctx := context.Background()

	t.Run("37 the node reports containerd's handlers and runtimeguard's view is that", func(t *testing.T) {
		got := &corev1.Node{}
		if err := rn.c.Get(ctx, client.ObjectKey{Name: rn.node.Name}, got); err != nil {
			t.Fatal(err)
		}
		if h := handlerNames(got); !slices.Equal(h, []string{"kata-qemu", "runc", "runsc"}) {
			t.Errorf("status.runtimeHandlers %v, want kata-qemu runc runsc (containerd's config)", h)
		}
		want := harness.ClusterView{
			"gvisor": {Handler: "runsc", Usable: 1, Available: true}, "kata": {Handler: "kata-qemu", Usable: 1, Available: true},
			"nvidia": {Handler: "nvidia"}, "gvisor-nvidia": {Handler: "runsc-nvidia"},
		}
		if err := harness.WaitForView(ctx, rn.webhook, viewTimeout, "the real node", want.Equal); err != nil {
			t.Fatal(err)
		}
		// `runtimeguard inventory` reads the same: advertised by status, not by labels.
		out, err := exec.Command(filepath.Join(s.root, "bin", "runtimeguard"), "inventory", "--kubeconfig", rn.cp.Kubeconfig, "-o", "json").Output()
		if err != nil {
			t.Fatalf("runtimeguard inventory: %v", err)
		}
		var inv struct {
			Reporting int `json:"reportingHandlers"`
			Classes   []struct {
				Name         string `json:"name"`
				ByStatus     int    `json:"advertisedByStatus"`
				Usable       int    `json:"usable"`
				Availability struct {
					Available bool `json:"available"`
				} `json:"availability"`
			} `json:"runtimeClasses"`
		}
		if err := json.Unmarshal(out, &inv); err != nil {
			t.Fatalf("runtimeguard inventory -o json: %v\n%s", err, out)
		}
		var rows []string
		for _, c := range inv.Classes {
			rows = append(rows, fmt.Sprintf("%s status=%d usable=%d available=%t", c.Name, c.ByStatus, c.Usable, c.Availability.Available))
		}
		wantRows := []string{"gvisor status=1 usable=1 available=true", "gvisor-nvidia status=0 usable=0 available=false",
			"kata status=1 usable=1 available=true", "nvidia status=0 usable=0 available=false"}
		if slices.Sort(rows); inv.Reporting != 1 || !slices.Equal(rows, wantRows) {
			t.Errorf("runtimeguard inventory: %d nodes reporting handlers, classes %q; want 1 and %q", inv.Reporting, rows, wantRows)
		}
	})

	t.Run("38 an untrusted pod gets gvisor and runs in gVisor, a plain one in runc", func(t *testing.T) {
		sandboxed := rn.runPod(t, nsUntrusted, "", "Succeeded")
		if c := ptr.Deref(sandboxed.Spec.RuntimeClassName, ""); c != "gvisor" {
			t.Errorf("untrusted pod: class %q, want gvisor injected", c)
		}
		kernel := rn.log(t, sandboxed)
		if !strings.Contains(kernel, "gvisor") {
			t.Errorf("untrusted pod's /proc/version %q, want gVisor's kernel", kernel)
		}
		t.Logf("untrusted pod on %s: %s", sandboxed.Spec.NodeName, kernel)
		plain := rn.runPod(t, nsPlain, "", "Succeeded")
		host, err := os.ReadFile("/proc/version")
		if err != nil {
			t.Fatal(err)
		}
		if got := rn.log(t, plain); got != strings.TrimSpace(string(host)) {
			t.Errorf("plain pod's /proc/version %q, want the host's %q", got, host)
		} else {
			t.Logf("plain pod (class %q): %s", ptr.Deref(plain.Spec.RuntimeClassName, ""), got)
		}
	})

	t.Run("38 volumes: a tmpfs the kubelet mounts is the container's", func(t *testing.T) {
		// The kubelet and containerd share one mount namespace: a mount the kubelet makes for
		// a volume (a memory emptyDir here; Secrets and token volumes are tmpfs too) is what
		// runc bind-mounts into the container.
		p := realNodePod(nsPlain, "")
		p.Spec.Containers[0].Image = rn.node.BusyboxImage
		p.Spec.Containers[0].Command = []string{"sh", "-c", "grep ' /scratch ' /proc/mounts"}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}
		p.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}}}
		p = rn.createAndWait(t, p, corev1.PodSucceeded)
		if got := rn.log(t, p); !strings.HasPrefix(got, "tmpfs /scratch tmpfs") {
			t.Errorf("the container's mount of the memory emptyDir: %q, want a tmpfs at /scratch", got)
		}
	})

	t.Run("39 a class the node cannot run: warn mode admits and the kubelet fails, enforce mode rejects", func(t *testing.T) {
		// kata-qemu is reported (containerd lists every configured handler) but its shim is
		// not installed: runtimeguard cannot tell, the Pod is admitted and fails at sandbox
		// creation in both modes.
		kata := rn.runPod(t, nsPlain, "kata", "")
		rn.waitSandboxFailure(t, kata, "kata-qemu")
		// kata-clh is not in containerd's config, so the node does not report it; its class
		// selects the label kata-deploy puts on every Kata node (which this node has): enforce
		// mode rejects at admission; warn mode admits with the same message as a warning,
		// kube-scheduler binds to the node, and the kubelet's event says what containerd has to
		// say.
		clh := &nodev1.RuntimeClass{
			ObjectMeta: metav1.ObjectMeta{Name: "kata-clh"}, Handler: "kata-clh",
			Scheduling: &nodev1.Scheduling{NodeSelector: map[string]string{harness.KataLabel: "true"}},
		}
		if err := harness.ApplyClasses(ctx, rn.c, []*nodev1.RuntimeClass{clh}); err != nil {
			t.Fatal(err)
		}
		if err := harness.WaitForView(ctx, rn.webhook, viewTimeout, "RuntimeClass kata-clh", func(v harness.ClusterView) bool {
			_, ok := v["kata-clh"]
			return ok
		}); err != nil {
			t.Fatal(err)
		}
		p := realNodePod(nsPlain, "kata-clh")
		p.Spec.Containers[0].Image = rn.node.BusyboxImage
		_, err := rn.cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), `RuntimeClass "kata-clh" (handler "kata-clh")`) {
			t.Errorf("enforce mode: creating a pod naming kata-clh: %v, want runtimeguard's denial naming the class", err)
		} else {
			t.Logf("enforce mode: %v", err)
		}
		warned := rn.runPod(t, nsWarn, "kata-clh", "")
		if w := rn.warned.all(); !slices.ContainsFunc(w, func(s string) bool {
			return strings.Contains(s, "runtimeguard warn mode") && strings.Contains(s, `RuntimeClass "kata-clh" (handler "kata-clh")`)
		}) {
			t.Errorf("warn mode: warnings %q, want runtimeguard's naming kata-clh", w)
		}
		rn.waitSandboxFailure(t, warned, "kata-clh")
	})

	t.Run("40 runsc removed from containerd: the node stops reporting it, runtimeguard follows", func(t *testing.T) {
		start := time.Now()
		if err := rn.node.SetHandlers(ctx, []node.Handler{node.DefaultHandlers()[0], node.DefaultHandlers()[2]}); err != nil {
			t.Fatal(err)
		}
		if err := controlplane.Wait(ctx, time.Minute, func(ctx context.Context) (bool, error) {
			got := &corev1.Node{}
			err := rn.c.Get(ctx, client.ObjectKey{Name: rn.node.Name}, got)
			return err == nil && slices.Equal(handlerNames(got), []string{"kata-qemu", "runc"}), err
		}); err != nil {
			t.Fatalf("the node still reports runsc: %v", err)
		}
		t.Logf("measure: node stopped reporting runsc %s after containerd's restart began", time.Since(start).Round(100*time.Millisecond))
		if err := harness.WaitForView(ctx, rn.webhook, viewTimeout, "runsc gone", func(v harness.ClusterView) bool {
			return !v["gvisor"].Available && v["kata"].Available
		}); err != nil {
			t.Fatal(err)
		}
		t.Logf("measure: runtimeguard's view followed %s after containerd's restart began", time.Since(start).Round(100*time.Millisecond))
		// Untrusted Pods fall back to the next class the node reports.
		p := realNodePod(nsUntrusted, "")
		if err := rn.c.Create(ctx, p); err != nil {
			t.Fatalf("untrusted pod with gvisor gone: %v", err)
		}
		if c := ptr.Deref(p.Spec.RuntimeClassName, ""); c != "kata" {
			t.Errorf("untrusted pod with gvisor gone: class %q, want kata", c)
		}
		// And are rejected with the reason once no isolating class is left.
		if err := rn.node.SetHandlers(ctx, node.DefaultHandlers()[:1]); err != nil {
			t.Fatal(err)
		}
		if err := harness.WaitForView(ctx, rn.webhook, viewTimeout, "kata-qemu gone", func(v harness.ClusterView) bool {
			return !v["gvisor"].Available && !v["kata"].Available
		}); err != nil {
			t.Fatal(err)
		}
		err := rn.c.Create(ctx, realNodePod(nsUntrusted, ""))
		if err == nil || !strings.Contains(err.Error(), "untrusted") {
			t.Errorf("untrusted pod with no sandbox handler on any node: %v, want runtimeguard's denial naming the tenancy", err)
		} else {
			t.Logf("with no sandbox runtime left: %v", err)
		}
	})

	t.Run("the node leaves nothing behind", func(t *testing.T) {
		dir, cgroup := rn.node.Dir, rn.node.Cgroup
		if err := rn.node.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
		rn.node = nil
		if left := node.Leftovers(dir, cgroup); len(left) > 0 {
			t.Errorf("left after Stop:\n%s", strings.Join(left, "\n"))
		}
		if after, err := node.HostState(); err != nil || !slices.Equal(after, rn.hostBefore) {
			t.Errorf("the host changed:\nbefore %q\nafter  %q (%v)", rn.hostBefore, after, err)
		}
	})
}

// startRealNode starts the control plane (with kube-scheduler), the webhook as the chart's
// ServiceAccount registered with the chart's webhook configurations, and the node.
func startRealNode(t *testing.T) *realNode {
	t.Helper()
	ctx := context.Background()
	cpOpts := controlplane.Options{Tools: tools.New(tools.Node, filepath.Join(s.root, "bin")), Scheduler: true, NodeLifecycle: true, LogDir: t.TempDir()}
	bin, err := node.ResolveTools(cpOpts.Tools, cpOpts)
	if err != nil {
		t.Fatal(err)
	}
	rn := &realNode{warned: &warningRecorder{}}
	if rn.cp, err = controlplane.Start(cpOpts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rn.cp.Stop() })
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if rn.c, err = client.New(rn.cp.Config, client.Options{Scheme: scheme}); err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(rn.cp.Config)
	cfg.WarningHandler = rn.warned
	if rn.cs, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	for ns, labels := range map[string]map[string]string{
		harness.Namespace: nil,
		nsUntrusted:       {"runtimeguard.io/tenancy": "untrusted"},
		nsPlain:           nil,
		nsWarn:            {"runtimeguard.io/enforcement": "warn"},
	} {
		if err := harness.EnsureNamespace(ctx, rn.c, ns, labels); err != nil {
			t.Fatal(err)
		}
	}
	if err := harness.ApplyClasses(ctx, rn.c, harness.StandardClasses()); err != nil {
		t.Fatal(err)
	}
	rendered, err := harness.RenderChart(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rendered.ApplyKinds(ctx, rn.c, "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"); err != nil {
		t.Fatal(err)
	}
	user, err := rendered.ServiceAccountUser()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := rn.cp.UserKubeconfig(user, "system:serviceaccounts", "system:serviceaccounts:"+harness.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	if rn.webhook, err = harness.StartWebhook(ctx, harness.WebhookOptions{
		Kubeconfig: kubeconfig, CertDir: s.certDir, LogPath: filepath.Join(s.logDir, "real-node-runtimeguard.log"),
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rn.webhook.Stop)
	rendered.PointAt(fmt.Sprintf("https://127.0.0.1:%d", rn.webhook.Port), s.certs.CAPEM)
	if err := rendered.Apply(ctx, rn.c); err != nil {
		t.Fatal(err)
	}

	if rn.hostBefore, err = node.HostState(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rn.node, err = node.Start(ctx, node.Options{
		ControlPlane: rn.cp, BinDir: bin, Name: "real-node-1",
		// The node runs gVisor and (it says) Kata: the classes' nodeSelectors match it.
		Labels: map[string]string{harness.GVisorLabel: "true", harness.KataLabel: "true"},
	})
	if err != nil {
		t.Fatal(err)
	}
	measure("real node: containerd + kubelet started, Node Ready in %s", time.Since(start).Round(100*time.Millisecond))
	t.Cleanup(func() {
		if err := rn.node.Stop(); err != nil {
			t.Errorf("stopping the node: %v", err)
		}
	})
	return rn
}

// realNodePod is a Pod the real node can run offline: host network (no CNI plugin), no
// service account token, the imported busybox image printing the kernel it runs on.
func realNodePod(ns, class string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: uniqueName("real")},
		Spec: corev1.PodSpec{
			HostNetwork:                  true,
			AutomountServiceAccountToken: ptr.To(false),
			RestartPolicy:                corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "kernel", Image: "busybox-image-set-at-create", ImagePullPolicy: corev1.PullNever,
				Command: []string{"cat", "/proc/version"},
			}},
		},
	}
	if class != "" {
		p.Spec.RuntimeClassName = &class
	}
	return p
}

// runPod creates a Pod naming class (none: runtimeguard decides) and, when phase is set, waits
// until it reaches it.
func (rn *realNode) runPod(t *testing.T, ns, class string, phase corev1.PodPhase) *corev1.Pod {
	t.Helper()
	p := realNodePod(ns, class)
	p.Spec.Containers[0].Image = rn.node.BusyboxImage
	return rn.createAndWait(t, p, phase)
}

// createAndWait creates p and, when phase is set, waits until it reaches it.
func (rn *realNode) createAndWait(t *testing.T, p *corev1.Pod, phase corev1.PodPhase) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	ns := p.Namespace
	p, err := rn.cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a pod in %s: %v", ns, err)
	}
	if phase == "" {
		return p
	}
	err = controlplane.Wait(ctx, 2*time.Minute, func(ctx context.Context) (bool, error) {
		got, err := rn.cs.CoreV1().Pods(ns).Get(ctx, p.Name, metav1.GetOptions{})
		if err == nil {
			p = got
		}
		return err == nil && got.Status.Phase == phase, err
	})
	if err != nil {
		t.Fatalf("pod %s/%s (class %q, node %q) is %s, want %s: %v; kubelet log: %s", ns, p.Name,
			ptr.Deref(p.Spec.RuntimeClassName, ""), p.Spec.NodeName, p.Status.Phase, phase, err, rn.node.Dir)
	}
	return p
}

// log returns the Pod's log as the API server gets it from the kubelet.
func (rn *realNode) log(t *testing.T, p *corev1.Pod) string {
	t.Helper()
	b, err := rn.cs.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(context.Background())
	if err != nil {
		t.Fatalf("logs of pod %s/%s: %v: %s", p.Namespace, p.Name, err, b)
	}
	return strings.TrimSpace(string(b))
}

// waitSandboxFailure waits for the kubelet's FailedCreatePodSandBox event about p, naming
// handler.
func (rn *realNode) waitSandboxFailure(t *testing.T, p *corev1.Pod, handler string) {
	t.Helper()
	var msgs []string
	err := controlplane.Wait(context.Background(), time.Minute, func(ctx context.Context) (bool, error) {
		var list corev1.EventList
		if err := rn.c.List(ctx, &list, client.InNamespace(p.Namespace)); err != nil {
			return false, err
		}
		msgs = nil
		for _, e := range list.Items {
			if e.InvolvedObject.Name == p.Name && e.Reason == "FailedCreatePodSandBox" {
				msgs = append(msgs, e.Message)
			}
		}
		return slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, handler) }), nil
	})
	if err != nil {
		t.Fatalf("no FailedCreatePodSandBox event naming %q for pod %s/%s: %v (events: %q)", handler, p.Namespace, p.Name, err, msgs)
	}
	t.Logf("kubelet, pod %s (class %q): %s", p.Name, ptr.Deref(p.Spec.RuntimeClassName, ""), msgs[0])
}

// handlerNames are the named handlers a Node reports, sorted (the kubelet also reports the
// default handler, unnamed).
func handlerNames(n *corev1.Node) []string {
	var out []string
	for _, h := range n.Status.RuntimeHandlers {
		if h.Name != "" {
			out = append(out, h.Name)
		}
	}
	slices.Sort(out)
	return out
}
