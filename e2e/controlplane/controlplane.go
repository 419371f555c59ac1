// Package controlplane starts a real local Kubernetes control plane for runtimeguard's
// end-to-end tests and demo: etcd and kube-apiserver (through controller-runtime's envtest)
// plus kube-controller-manager, so Deployments, ReplicaSets, Jobs and DaemonSets really create
// Pods, and kube-scheduler, so Pods are really bound to Nodes (placement is proved by the real
// scheduler, not by a re-implementation of it). There is no kubelet: Nodes are API objects that
// tests create, and a bound Pod stays Pending.
//
// The binaries are built from the Go module proxy into bin/ by e2e/tools/build.sh and resolved
// through the caller's tools.Resolver (e2e/tools/tools.txt).
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/runtimeguard/runtimeguard/e2e/tools"
)

// Options configures Start.
type Options struct {
	// Tools resolves etcd, kube-apiserver, kube-controller-manager and kube-scheduler for the
	// caller's entry point (tools.txt must list them for it).
	Tools *tools.Resolver
	// BinDir is only for callers without a Resolver (e2e/bench's runner, to be moved to
	// Tools): the binaries are then only checked to exist in it (default <repo>/bin).
	BinDir string
	// ControllerManager starts kube-controller-manager with the deployment, replicaset, job and
	// daemonset controllers. Default false.
	ControllerManager bool
	// NodeLifecycle runs kube-controller-manager's node lifecycle controller (alone unless
	// ControllerManager is set), which lifts the not-ready taint the API server puts on every
	// new Node once its kubelet reports Ready: needed with a real kubelet (e2e/node), not with
	// Nodes the tests write. Default false.
	NodeLifecycle bool
	// Scheduler starts kube-scheduler, which binds Pods to the Nodes in the API. Default false.
	Scheduler bool
	// CRDDirs are installed at start (cert-manager's CRDs, for instance).
	CRDDirs []string
	// LogDir receives the components' logs (default: a temp dir).
	LogDir string
}

// ControlPlane is a running local control plane.
type ControlPlane struct {
	Env    *envtest.Environment
	Config *rest.Config
	// Kubeconfig is the path of an admin kubeconfig file.
	Kubeconfig string
	Dir        string

	kcm   *component
	sched *component
}

// component is a control plane process started here (envtest starts etcd and kube-apiserver).
type component struct {
	cmd *exec.Cmd
	log *os.File
}

// RepoRoot finds the repository root by walking up from the working directory to go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/runtimeguard/runtimeguard\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the runtimeguard repository root (go.mod)")
		}
		dir = parent
	}
}

// RequireBinaries returns an error naming the fix when a binary is missing from binDir. Tools
// go through a tools.Resolver instead; this is for the product binary (`make build`).
func RequireBinaries(binDir string, names ...string) error {
	var missing []string
	for _, n := range names {
		if info, err := os.Stat(filepath.Join(binDir, n)); err != nil || info.IsDir() {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s in %s: run `make tools` (e2e/tools/build.sh) to build them from the Go module proxy",
			strings.Join(missing, ", "), binDir)
	}
	return nil
}

// Binaries are the tools Start runs with these options.
func (o Options) Binaries() []string {
	need := []string{"etcd", "kube-apiserver"}
	if o.ControllerManager || o.NodeLifecycle {
		need = append(need, "kube-controller-manager")
	}
	if o.Scheduler {
		need = append(need, "kube-scheduler")
	}
	return need
}

// Start starts etcd and kube-apiserver, and kube-controller-manager and kube-scheduler when
// asked.
func Start(opts Options) (*ControlPlane, error) {
	var err error
	switch {
	case opts.Tools != nil:
		if opts.BinDir, err = opts.Tools.Dir(opts.Binaries()...); err != nil {
			return nil, err
		}
	default:
		if opts.BinDir == "" {
			root, err := RepoRoot()
			if err != nil {
				return nil, err
			}
			opts.BinDir = filepath.Join(root, "bin")
		}
		if err := RequireBinaries(opts.BinDir, opts.Binaries()...); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "runtimeguard-controlplane-")
	if err != nil {
		return nil, err
	}
	if opts.LogDir == "" {
		opts.LogDir = dir
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    opts.BinDir,
		CRDDirectoryPaths:        opts.CRDDirs,
		ErrorIfCRDPathMissing:    len(opts.CRDDirs) > 0,
		ControlPlaneStartTimeout: 60 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	// KUBEBUILDER_ASSETS would override BinaryAssetsDirectory; make sure it names ours.
	os.Setenv("KUBEBUILDER_ASSETS", opts.BinDir)
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting etcd and kube-apiserver: %w", err)
	}
	cp := &ControlPlane{Env: env, Config: cfg, Dir: dir, Kubeconfig: filepath.Join(dir, "admin.kubeconfig")}
	if err := os.WriteFile(cp.Kubeconfig, env.KubeConfig, 0o600); err != nil {
		_ = cp.Stop()
		return nil, err
	}
	var controllers []string
	if opts.ControllerManager {
		controllers = append(controllers, "deployment", "replicaset", "job", "daemonset", "garbagecollector")
	}
	if opts.NodeLifecycle {
		controllers = append(controllers, "nodelifecycle")
	}
	if len(controllers) > 0 {
		if cp.kcm, err = startComponent(opts.BinDir, opts.LogDir, "kube-controller-manager",
			"--kubeconfig="+cp.Kubeconfig,
			"--controllers="+strings.Join(controllers, ","),
			"--leader-elect=false",
			"--secure-port=0",
			"--concurrent-deployment-syncs=10",
			"--concurrent-replicaset-syncs=10",
		); err != nil {
			_ = cp.Stop()
			return nil, err
		}
	}
	if opts.Scheduler {
		// One scheduler, no leader election (nothing to fail over to); --secure-port=0: no
		// health or metrics listener, so parallel control planes never contend for a port.
		if cp.sched, err = startComponent(opts.BinDir, opts.LogDir, "kube-scheduler",
			"--kubeconfig="+cp.Kubeconfig,
			"--leader-elect=false",
			"--secure-port=0",
		); err != nil {
			_ = cp.Stop()
			return nil, err
		}
	}
	return cp, nil
}

// startComponent starts binDir/name with args, logging to logDir/name.log.
func startComponent(binDir, logDir, name string, args ...string) (*component, error) {
	log, err := os.Create(filepath.Join(logDir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	return &component{cmd: cmd, log: log}, nil
}

// stop interrupts the process and kills it if it has not exited after 10 s.
func (c *component) stop() {
	if c == nil {
		return
	}
	_ = c.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
	c.log.Close()
}

// UserKubeconfig writes a kubeconfig for a user authenticated by a client certificate, with
// no permissions until something binds a role to it. Tests run the webhook as such a user
// bound to exactly the Helm chart's ClusterRole.
func (c *ControlPlane) UserKubeconfig(name string, groups ...string) (string, error) {
	u, err := c.Env.AddUser(envtest.User{Name: name, Groups: groups}, c.Config)
	if err != nil {
		return "", err
	}
	b, err := u.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(c.Dir, strings.NewReplacer(":", "_", "/", "_").Replace(name)+".kubeconfig")
	return path, os.WriteFile(path, b, 0o600)
}

// Stop stops every component and removes the working directory.
func (c *ControlPlane) Stop() error {
	var errs []error
	// The scheduler and the controller manager first: they would log connection errors for
	// as long as they outlive the API server.
	c.sched.stop()
	c.kcm.stop()
	if err := c.Env.Stop(); err != nil {
		errs = append(errs, err)
	}
	if os.Getenv("RUNTIMEGUARD_KEEP_CONTROLPLANE_DIR") == "" {
		_ = os.RemoveAll(c.Dir)
	}
	return errors.Join(errs...)
}

// Wait polls cond every 50ms until it returns true or timeout passes.
func Wait(ctx context.Context, timeout time.Duration, cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		ok, err := cond(ctx)
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("timed out after %s: %w", timeout, last)
			}
			return fmt.Errorf("timed out after %s", timeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
