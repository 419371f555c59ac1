// Package node runs one real Kubernetes node for runtimeguard's end-to-end tests: containerd
// (CRI handlers runc, runsc = gVisor, and kata-qemu, configured but with no shim installed) and
// a kubelet registered with the e2e control plane, so a Pod runs in the runtime its class
// names and Node.status.runtimeHandlers is what containerd's config really registers.
//
// It must not change the host (issue 15; the traps are in shared/README.md, "A real node"):
//   - containerd and the kubelet run in one private mount namespace, held by a process of its
//     own: /run is a tmpfs there (containerd always writes /run/containerd), /var/lib and
//     /var/log are bind mounts of run-directory folders (the kubelet writes
//     /var/lib/kubelet/device-plugins and /var/log/containers whatever its flags say), and
//     the kernel tunables the kubelet "fixes" (vm.overcommit_memory, kernel.panic, ...) are
//     regular files bind-mounted over /proc/sys, so its writes land in the run directory. The
//     kubelet's volume mounts are made in that same namespace, so containerd sees them;
//   - cgroups: the kubelet's cgroupRoot is one parent cgroup of our own, removed at Stop;
//   - containerd has restrict_oom_score_adj (no CAP_SYS_RESOURCE here), and the gVisor shim is
//     built with the patch that ignores its failed OOM-score write (e2e/tools/build.sh);
//   - Pods use the host network (no CNI plugin is installed: containerd's CNI config names
//     none it could run, it only has to exist for the runtime to report its network ready);
//   - every process is stopped by its PID, and Stop checks that none is left.
package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/runtimeguard/runtimeguard/e2e/controlplane"
	"github.com/runtimeguard/runtimeguard/e2e/tools"
)

// Executables and Images are the files Start needs in Options.BinDir (`make test-node`
// builds them: e2e/tools/tools.txt, entry test-node).
var (
	Executables = []string{"kubelet", "containerd", "containerd-shim-runc-v2", "ctr", "runc", "runsc",
		"containerd-shim-runsc-v1"}
	// Images are OCI archives imported into containerd: nothing is pulled.
	Images = []string{"pause.oci.tar", "busybox.oci.tar"}
)

// sandboxImage is the pause image's tag in pause.oci.tar (PAUSE_IMAGE in e2e/tools/build.sh).
const sandboxImage = "registry.k8s.io/pause:3.10.2"

// ResolveTools resolves, through r, the executables of a node and of the control plane cp
// (tools.txt must list them for r's entry point), and returns the directory holding them.
func ResolveTools(r *tools.Resolver, cp controlplane.Options) (string, error) {
	return r.Dir(append(cp.Binaries(), Executables...)...)
}

// Kernel tunables the kubelet sets to its defaults (pkg/kubelet/cm setupKernelTunables) unless
// they already match: each is shadowed by a file in the run directory.
var kubeletTunables = []string{"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic",
	"kernel/panic_on_oops", "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"}

// Handler is a CRI runtime handler in containerd's config.
type Handler struct {
	Name string
	// RuntimeType is containerd's runtime_type: io.containerd.runc.v2, io.containerd.runsc.v1,
	// or one whose shim is not installed (io.containerd.kata-qemu.v2).
	RuntimeType string
}

// DefaultHandlers are runc, runsc (gVisor on the systrap platform: no KVM needed) and
// kata-qemu, which containerd reports although its shim is absent: reported is not working.
func DefaultHandlers() []Handler {
	return []Handler{
		{Name: "runc", RuntimeType: "io.containerd.runc.v2"},
		{Name: "runsc", RuntimeType: "io.containerd.runsc.v1"},
		{Name: "kata-qemu", RuntimeType: "io.containerd.kata-qemu.v2"},
	}
}

// Options configures Start.
type Options struct {
	// ControlPlane is the API server the kubelet registers with; it must run the node
	// lifecycle controller (controlplane.Options.NodeLifecycle).
	ControlPlane *controlplane.ControlPlane
	// BinDir holds Executables and Images (ResolveTools).
	BinDir string
	// Name is the Node's name (default: runtimeguard-node).
	Name string
	// Labels are the Node's labels (--node-labels).
	Labels map[string]string
	// Handlers are containerd's CRI runtime handlers (default DefaultHandlers).
	Handlers []Handler
	// Dir is the run directory, created by Start and removed by Stop (default: a new temp dir).
	Dir string
}

// Node is a running containerd + kubelet.
type Node struct {
	Name string
	// Dir is the run directory: configs, state, logs, the namespace's bind-mount sources.
	Dir string
	// Cgroup is the parent cgroup (cgroupfs path) of every Pod cgroup.
	Cgroup string
	// BusyboxImage is the offline image Pods can run (imagePullPolicy Never).
	BusyboxImage string

	opts       Options
	holder     *process // holds the mount namespace
	containerd *process
	kubelet    *process
}

// process is a process started here, stopped by its PID.
type process struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
}

// Start starts containerd and the kubelet and waits until the Node is Ready.
func Start(ctx context.Context, o Options) (n *Node, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("a real node needs root (containerd, the kubelet and runsc manage mounts and cgroups)")
	}
	if o.ControlPlane == nil {
		return nil, errors.New("node.Options.ControlPlane is required")
	}
	var missing []string
	for _, b := range append(slices.Clone(Executables), Images...) {
		if _, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("missing %s in %s: run `make test-node` or `e2e/tools/build.sh --for test-node`", strings.Join(missing, ", "), o.BinDir)
	}
	if o.Name == "" {
		o.Name = "runtimeguard-node"
	}
	if o.Handlers == nil {
		o.Handlers = DefaultHandlers()
	}
	if o.Dir == "" {
		if o.Dir, err = os.MkdirTemp("", "runtimeguard-node-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	n = &Node{Name: o.Name, Dir: o.Dir, opts: o, Cgroup: "/" + filepath.Base(o.Dir)}
	defer func() {
		if err != nil {
			err = errors.Join(err, n.Stop())
		}
	}()
	if err := n.writeFiles(); err != nil {
		return n, err
	}
	if err := n.makeCgroupRoot(); err != nil {
		return n, err
	}
	if err := n.startNamespace(ctx); err != nil {
		return n, err
	}
	if err := n.StartContainerd(ctx); err != nil {
		return n, err
	}
	if err := n.importImages(ctx); err != nil {
		return n, err
	}
	kubeconfig, err := n.kubeletCredentials(ctx)
	if err != nil {
		return n, err
	}
	if err := n.startKubelet(kubeconfig); err != nil {
		return n, err
	}
	if err := n.setAddress(ctx); err != nil {
		return n, err
	}
	return n, n.WaitReady(ctx, 2*time.Minute)
}

// setAddress gives the Node the address its kubelet listens on, 127.0.0.1, once registered.
// The kubelet refuses to report a loopback node IP ("nodeIP can't be loopback address") and
// then reports no address at all, so the API server could not reach it for logs and exec;
// listening elsewhere would expose a kubelet that allows anonymous requests to the network.
// This is the cloud controller's part with --cloud-provider=external: the kubelet, whose
// address setter keeps failing, never overwrites it.
func (n *Node) setAddress(ctx context.Context) error {
	cs, err := kubernetes.NewForConfig(n.opts.ControlPlane.Config)
	if err != nil {
		return err
	}
	// No Hostname address: the API server prefers it, and no DNS resolves the node's name.
	patch := `{"status":{"addresses":[{"type":"InternalIP","address":"127.0.0.1"}]}}`
	return n.wait(ctx, n.kubelet, time.Minute, func() error {
		_, err := cs.CoreV1().Nodes().Patch(ctx, n.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "status")
		return err
	})
}

func (n *Node) path(elem ...string) string { return filepath.Join(append([]string{n.Dir}, elem...)...) }

func (n *Node) sock() string { return n.path("containerd.sock") }

// writeFiles writes the configs and the folders the namespace's bind mounts need.
func (n *Node) writeFiles() error {
	for _, d := range []string{"var-lib/kubelet", "var-log", "pod-logs", "kubelet", "kubelet-pki", "cni", "certs.d", "runc", "runsc", "sysctl"} {
		if err := os.MkdirAll(n.path(d), 0o755); err != nil {
			return err
		}
	}
	for _, t := range kubeletTunables {
		v, err := os.ReadFile(filepath.Join("/proc/sys", t))
		if err != nil {
			return err
		}
		if err := os.WriteFile(n.path("sysctl", strings.ReplaceAll(t, "/", ".")), v, 0o644); err != nil {
			return err
		}
	}
	// The CRI plugin reports its network ready once a CNI config loads. Host-network Pods never
	// call a plugin; any other Pod fails, naming the missing plugin.
	cni := `{"cniVersion": "1.0.0", "name": "host-network-only", "plugins": [{"type": "no-cni-plugin-installed-use-hostNetwork"}]}`
	if err := os.WriteFile(n.path("cni", "10-host-network-only.conflist"), []byte(cni), 0o644); err != nil {
		return err
	}
	runsc := fmt.Sprintf("binary_name = %q\nroot = %q\n[runsc_config]\n  platform = \"systrap\"\n  network = \"none\"\n",
		filepath.Join(n.opts.BinDir, "runsc"), n.path("runsc"))
	if err := os.WriteFile(n.path("runsc.toml"), []byte(runsc), 0o644); err != nil {
		return err
	}
	return n.writeContainerdConfig()
}

func (n *Node) writeContainerdConfig() error {
	var b strings.Builder
	fmt.Fprintf(&b, `version = 3
root = %q
state = %q
[grpc]
  address = %q
[ttrpc]
  address = %q
[plugins.'io.containerd.internal.v1.opt']
  path = %q
[plugins.'io.containerd.nri.v1.nri']
  disable = true
[plugins.'io.containerd.cri.v1.images']
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "`+sandboxImage+`"
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = %q
[plugins.'io.containerd.cri.v1.runtime']
  # This machine cannot lower oom_score_adj (no CAP_SYS_RESOURCE).
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = [%q]
    conf_dir = %q
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
`, n.path("root"), n.path("state"), n.sock(), n.sock()+".ttrpc", n.path("opt"), n.path("certs.d"), n.path("cni"), n.path("cni"))
	for _, h := range n.opts.Handlers {
		p := "plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes." + h.Name
		fmt.Fprintf(&b, "    [%s]\n      runtime_type = %q\n", p, h.RuntimeType)
		switch h.RuntimeType {
		case "io.containerd.runc.v2":
			fmt.Fprintf(&b, "      [%s.options]\n        BinaryName = %q\n        Root = %q\n", p, filepath.Join(n.opts.BinDir, "runc"), n.path("runc"))
		case "io.containerd.runsc.v1":
			fmt.Fprintf(&b, "      [%s.options]\n        TypeUrl = \"io.containerd.runsc.v1.options\"\n        ConfigPath = %q\n", p, n.path("runsc.toml"))
		}
	}
	return os.WriteFile(n.path("containerd.toml"), []byte(b.String()), 0o644)
}

// cgroupHierarchies are the mounted cgroup hierarchies (v1 controllers, and the v2 one of a
// hybrid layout).
func cgroupHierarchies() ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		_, post, ok := strings.Cut(line, " - ")
		f := strings.Fields(line)
		if !ok || len(f) < 5 {
			continue
		}
		if typ := strings.Fields(post)[0]; typ == "cgroup" || typ == "cgroup2" {
			out = append(out, f[4])
		}
	}
	return out, nil
}

// makeCgroupRoot creates the parent cgroup in every hierarchy: the kubelet refuses a cgroupRoot
// that does not exist.
func (n *Node) makeCgroupRoot() error {
	hs, err := cgroupHierarchies()
	if err != nil {
		return err
	}
	for _, h := range hs {
		dir := filepath.Join(h, n.Cgroup)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return fmt.Errorf("creating the node's parent cgroup: %w", err)
		}
		// A v1 cpuset cgroup has no CPUs nor memory nodes until given its parent's.
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if v, err := os.ReadFile(filepath.Join(h, f)); err == nil {
				if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// startNamespace starts the process holding the private mount namespace, and waits until its
// mounts are in place.
func (n *Node) startNamespace(ctx context.Context) error {
	var s strings.Builder
	s.WriteString("set -e\nmount -t tmpfs -o mode=0755 tmpfs /run\n")
	fmt.Fprintf(&s, "mount --bind %q /var/lib\nmount --bind %q /var/log\n", n.path("var-lib"), n.path("var-log"))
	for _, t := range kubeletTunables {
		fmt.Fprintf(&s, "mount --bind %q %q\n", n.path("sysctl", strings.ReplaceAll(t, "/", ".")), filepath.Join("/proc/sys", t))
	}
	fmt.Fprintf(&s, "touch %q\nexec sleep infinity\n", n.path("namespace-ready"))
	var err error
	// unshare and sh exec: the holder's PID is the one started here.
	if n.holder, err = n.start("namespace", "unshare", "-m", "--propagation", "private", "--", "/bin/sh", "-c", s.String()); err != nil {
		return err
	}
	return n.wait(ctx, n.holder, 10*time.Second, func() error {
		_, err := os.Stat(n.path("namespace-ready"))
		return err
	})
}

// start runs name with args, logging to the run directory.
func (n *Node) start(logName, name string, args ...string) (*process, error) {
	log, err := os.OpenFile(n.path(logName+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	// containerd finds the shims (containerd-shim-*-v*) on PATH.
	cmd.Env = append(os.Environ(), "PATH="+n.opts.BinDir+":"+os.Getenv("PATH"))
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("starting %s: %w", logName, err)
	}
	p := &process{name: logName, cmd: cmd, log: log, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// inNamespace runs name in the node's mount namespace (nsenter execs it: same PID).
func (n *Node) inNamespace(logName, name string, args ...string) (*process, error) {
	return n.start(logName, "nsenter", append([]string{"-t", strconv.Itoa(n.holder.cmd.Process.Pid), "-m", "--", name}, args...)...)
}

// wait polls ready until it returns nil, failing early when p exits.
func (n *Node) wait(ctx context.Context, p *process, timeout time.Duration, ready func() error) error {
	return controlplane.Wait(ctx, timeout, func(context.Context) (bool, error) {
		select {
		case <-p.done:
			return false, fmt.Errorf("%s exited: %s", p.name, n.logTail(p.name, 15))
		default:
		}
		err := ready()
		return err == nil, err
	})
}

// logTail returns the last lines of a log of the run directory.
func (n *Node) logTail(name string, lines int) string {
	b, _ := os.ReadFile(n.path(name + ".log"))
	all := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return fmt.Sprintf("%s (%s)", strings.Join(all, "\n"), n.path(name+".log"))
}

// withCRI runs fn with a CRI client of the node's containerd.
func (n *Node) withCRI(fn func(*cri) error) error {
	c, err := dialCRI(n.sock())
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}

// run runs a short command in the node's mount namespace and returns its stdout.
func (n *Node) run(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(n.holder.cmd.Process.Pid), "-m", "--", name}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// StartContainerd starts containerd with the current config and waits for its CRI.
func (n *Node) StartContainerd(ctx context.Context) error {
	var err error
	if n.containerd, err = n.inNamespace("containerd", filepath.Join(n.opts.BinDir, "containerd"), "--config", n.path("containerd.toml")); err != nil {
		return err
	}
	return n.wait(ctx, n.containerd, 30*time.Second, func() error {
		return n.withCRI(func(c *cri) error { return c.ready(ctx) })
	})
}

// StopContainerd stops containerd (Pods keep running in their shims).
func (n *Node) StopContainerd() { n.containerd.stop(); n.containerd = nil }

// SetHandlers rewrites containerd's config with handlers and restarts containerd, as an
// operator removing a runtime from a node would.
func (n *Node) SetHandlers(ctx context.Context, handlers []Handler) error {
	n.opts.Handlers = handlers
	if err := n.writeContainerdConfig(); err != nil {
		return err
	}
	n.StopContainerd()
	return n.StartContainerd(ctx)
}

func (n *Node) importImages(ctx context.Context) error {
	for _, image := range []string{"pause", "busybox"} {
		if _, err := n.run(ctx, filepath.Join(n.opts.BinDir, "ctr"), "--address", n.sock(), "-n", "k8s.io", "images", "import",
			filepath.Join(n.opts.BinDir, image+".oci.tar")); err != nil {
			return err
		}
	}
	// The CRI plugin learns of imported images from containerd's event stream, so its image
	// list can lag the import (a CI run listed it empty): wait for the tags, not for the import.
	return n.wait(ctx, n.containerd, 30*time.Second, func() error {
		var tags []string
		if err := n.withCRI(func(c *cri) (err error) { tags, err = c.imageTags(ctx); return err }); err != nil {
			return err
		}
		pause := false
		for _, tag := range tags {
			if strings.HasPrefix(tag, "localhost/busybox:") {
				n.BusyboxImage = tag
			}
			pause = pause || tag == sandboxImage
		}
		if !pause || n.BusyboxImage == "" {
			return fmt.Errorf("the busybox and pause images imported from %s are not both in containerd's CRI image list (tags: %v)", n.opts.BinDir, tags)
		}
		return nil
	})
}

// kubeletCredentials writes the kubelet's kubeconfig: a client certificate for
// system:node:<name>, bound to the system:node ClusterRole (what the kubelet needs; the API
// server here authorizes with RBAC only, without the Node authorizer).
func (n *Node) kubeletCredentials(ctx context.Context) (string, error) {
	user := "system:node:" + n.Name
	kubeconfig, err := n.opts.ControlPlane.UserKubeconfig(user, "system:nodes")
	if err != nil {
		return "", err
	}
	cs, err := kubernetes.NewForConfig(n.opts.ControlPlane.Config)
	if err != nil {
		return "", err
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "runtimeguard-e2e:" + n.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:node"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	dst := n.path("kubelet.kubeconfig")
	b, err := os.ReadFile(kubeconfig)
	if err != nil {
		return "", err
	}
	return dst, os.WriteFile(dst, b, 0o600)
}

func (n *Node) startKubelet(kubeconfig string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	// Webhook authentication is off and anonymous requests are allowed: the API server only
	// calls the kubelet for logs and exec, on loopback.
	config := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: %s
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://%s
address: 127.0.0.1
port: %d
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
podLogsDir: %s
makeIPTablesUtilChains: false
nodeStatusUpdateFrequency: 2s
evictionHard: {memory.available: 1Mi, nodefs.available: 1%%, imagefs.available: 1%%, nodefs.inodesFree: 1%%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
maxPods: 30
resolvConf: ""
`, n.Cgroup, n.sock(), port, n.path("pod-logs"))
	if err := os.WriteFile(n.path("kubelet.yaml"), []byte(config), 0o644); err != nil {
		return err
	}
	var labels []string
	for k, v := range n.opts.Labels {
		labels = append(labels, k+"="+v)
	}
	slices.Sort(labels)
	args := []string{"--config=" + n.path("kubelet.yaml"), "--kubeconfig=" + kubeconfig,
		"--root-dir=" + n.path("kubelet"), "--cert-dir=" + n.path("kubelet-pki"),
		"--hostname-override=" + n.Name, "--node-ip=127.0.0.1", "--v=2"}
	if len(labels) > 0 {
		args = append(args, "--node-labels="+strings.Join(labels, ","))
	}
	n.kubelet, err = n.inNamespace("kubelet", filepath.Join(n.opts.BinDir, "kubelet"), args...)
	return err
}

// WaitReady waits until the Node is Ready and the node lifecycle controller has lifted the
// not-ready taint the API server gave it at registration (until then nothing schedules there).
func (n *Node) WaitReady(ctx context.Context, timeout time.Duration) error {
	cs, err := kubernetes.NewForConfig(n.opts.ControlPlane.Config)
	if err != nil {
		return err
	}
	return n.wait(ctx, n.kubelet, timeout, func() error {
		node, err := cs.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				if c.Status == corev1.ConditionTrue {
					for _, t := range node.Spec.Taints {
						if t.Key == corev1.TaintNodeNotReady {
							return fmt.Errorf("node %s is Ready but still has the taint %s (is the node lifecycle controller running? controlplane.Options.NodeLifecycle)", n.Name, t.ToString())
						}
					}
					return nil
				}
				return fmt.Errorf("node %s: Ready=%s: %s", n.Name, c.Status, c.Message)
			}
		}
		return fmt.Errorf("node %s has no Ready condition yet", n.Name)
	})
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// stop sends SIGTERM, then SIGKILL after 20 s.
func (p *process) stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.log.Close()
}
