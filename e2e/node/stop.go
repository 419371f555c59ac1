package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Stop stops the kubelet, removes every Pod sandbox, stops containerd, kills by PID any process
// left from the node (a shim, a sandbox), releases the mount namespace, removes the node's
// cgroups and the run directory. It returns an error naming anything it could not remove.
func (n *Node) Stop() error {
	if n == nil {
		return nil
	}
	n.kubelet.stop()
	n.kubelet = nil
	if n.containerd != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		// Stopping the sandboxes through the CRI tears down their containers, shims and cgroups
		// the way the runtimes mean to.
		_ = n.withCRI(func(c *cri) error { return c.removeSandboxes(ctx) })
		cancel()
		n.StopContainerd()
	}
	var holderNS string
	if n.holder != nil {
		holderNS, _ = os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", n.holder.cmd.Process.Pid))
	}
	for range 3 {
		left := n.processes(holderNS)
		if len(left) == 0 {
			break
		}
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(500 * time.Millisecond)
	}
	n.holder.stop()
	n.holder = nil
	n.removeCgroups()
	var errs []error
	if os.Getenv("RUNTIMEGUARD_KEEP_NODE_DIR") == "" {
		if err := os.RemoveAll(n.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	for _, l := range Leftovers(n.Dir, n.Cgroup) {
		errs = append(errs, errors.New(l))
	}
	return errors.Join(errs...)
}

// processes returns the PIDs (other than the namespace holder's) of the processes that belong
// to the node: in its mount namespace (containerd, kubelet, shims), in its cgroup (containers,
// sandboxes), or naming its run directory (runsc's sandbox and gofer).
func (n *Node) processes(holderNS string) []int {
	var holder int
	if n.holder != nil {
		holder = n.holder.cmd.Process.Pid
	}
	var out []int
	for _, pid := range allPIDs() {
		if pid == holder || pid == os.Getpid() {
			continue
		}
		ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid))
		if (holderNS != "" && ns == holderNS) || ownedBy(pid, n.Dir, n.Cgroup) {
			out = append(out, pid)
		}
	}
	return out
}

func allPIDs() []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// ownedBy reports whether pid's command line names dir or it runs in a cgroup under cgroup.
func ownedBy(pid int, dir, cgroup string) bool {
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	for _, arg := range strings.Split(string(cmdline), "\x00") {
		// Whole path components: /tmp/runtimeguard-node-1 must not match another run's -12.
		if arg == dir || strings.Contains(arg, dir+"/") {
			return true
		}
	}
	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	for _, line := range strings.Split(string(cg), "\n") {
		// hierarchy-ID:controllers:path
		if parts := strings.SplitN(line, ":", 3); len(parts) == 3 && (parts[2] == cgroup || strings.HasPrefix(parts[2], cgroup+"/")) {
			return true
		}
	}
	return false
}

// removeCgroups removes the node's cgroups, children first (rmdir only removes empty ones).
func (n *Node) removeCgroups() {
	for _, dir := range nodeCgroups(n.Cgroup) {
		_ = os.Remove(dir)
	}
}

// nodeCgroups lists the cgroup directories under cgroup in every hierarchy, deepest first.
func nodeCgroups(cgroup string) []string {
	hs, _ := cgroupHierarchies()
	var dirs []string
	for _, h := range hs {
		_ = filepath.WalkDir(filepath.Join(h, cgroup), func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
	}
	slices.SortFunc(dirs, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return dirs
}

// Leftovers describes what a node with run directory dir and parent cgroup cgroup left
// behind: processes, mounts (in this mount namespace), cgroups, the run directory. The
// caller checks the host paths a kubelet or containerd would write by default.
func Leftovers(dir, cgroup string) []string {
	var out []string
	for _, pid := range allPIDs() {
		if pid != os.Getpid() && ownedBy(pid, dir, cgroup) {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			out = append(out, fmt.Sprintf("process %d left: %s", pid, strings.ReplaceAll(string(cmdline), "\x00", " ")))
		}
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(mi), "\n") {
			if slices.ContainsFunc(strings.Fields(line), func(f string) bool { return f == dir || strings.HasPrefix(f, dir+"/") }) {
				out = append(out, "mount left: "+line)
			}
		}
	}
	for _, cg := range nodeCgroups(cgroup) {
		out = append(out, "cgroup left: "+cg)
	}
	if _, err := os.Stat(dir); err == nil && os.Getenv("RUNTIMEGUARD_KEEP_NODE_DIR") == "" {
		out = append(out, "run directory left: "+dir)
	}
	return out
}

// HostPaths are where a kubelet or containerd writes by default; the node must create none.
var HostPaths = []string{"/var/lib/kubelet", "/var/log/pods", "/var/log/containers", "/run/containerd", "/etc/containerd"}

// HostState is what a node could change on the host: the kernel tunables the kubelet sets,
// and which of HostPaths exist. Compare it before Start and after Stop.
func HostState() ([]string, error) {
	var out []string
	for _, f := range kubeletTunables {
		b, err := os.ReadFile(filepath.Join("/proc/sys", f))
		if err != nil {
			return nil, err
		}
		out = append(out, f+"="+strings.TrimSpace(string(b)))
	}
	for _, p := range HostPaths {
		if _, err := os.Stat(p); err == nil {
			out = append(out, p+" exists")
		}
	}
	return out, nil
}
