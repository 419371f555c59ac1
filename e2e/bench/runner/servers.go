package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/runtimeguard/runtimeguard/webhook"
)

// server is one webhook process under test.
type server struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	url  string // where the load generator posts (the mutating webhook)
	// validateURL is the validating webhook ("" when the server has none).
	validateURL string
	ready       string // URL that answers 200 when ready
	log         string
	start       time.Time
	// readyAfter is the time from process start to the first ready answer.
	readyAfter time.Duration
}

func (s *server) pid() int { return s.cmd.Process.Pid }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var out []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// env is where binaries, certificates and logs are.
type env struct {
	root    string // repository root
	bin     string // binaries
	out     string // working directory for this run (fixtures, logs)
	certDir string
	pool    *x509.CertPool
}

func newEnv(root, bin, out, certDir string) (*env, error) {
	pem, err := os.ReadFile(filepath.Join(certDir, "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("reading the dev CA (run `runtimeguard dev-certs --dir %s`): %w", certDir, err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &env{root: root, bin: bin, out: out, certDir: certDir, pool: pool}, nil
}

// startRuntimeguard starts `runtimeguard serve` with fixture files (clusterFile) or against an
// API server (kubeconfig).
func (e *env) startRuntimeguard(ctx context.Context, clusterFile, kubeconfig string, environ ...string) (*server, error) {
	p, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "--cert-dir=" + e.certDir, "--bind-address=127.0.0.1", "--port=" + strconv.Itoa(p[0]),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", p[1]), fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", p[2]),
		"--namespace=runtimeguard-system"}
	if clusterFile != "" {
		args = append(args, "--cluster="+clusterFile)
	}
	if kubeconfig != "" {
		args = append(args, "--kubeconfig="+kubeconfig)
	}
	return e.start(ctx, "runtimeguard", filepath.Join(e.bin, "runtimeguard"), args,
		fmt.Sprintf("https://127.0.0.1:%d/mutate-v1-pod", p[0]), fmt.Sprintf("http://127.0.0.1:%d/readyz", p[1]), environ...)
}

// startBaseline starts the hand-coded Go webhook.
func (e *env) startBaseline(ctx context.Context, clusterFile string) (*server, error) {
	p, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	args := []string{"--cert-dir=" + e.certDir, "--bind-address=127.0.0.1", "--port=" + strconv.Itoa(p[0]),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", p[1]), fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", p[2]),
		"--namespace=runtimeguard-system", "--cluster=" + clusterFile}
	return e.start(ctx, "baseline", filepath.Join(e.bin, "bench-baseline"), args,
		fmt.Sprintf("https://127.0.0.1:%d/mutate-v1-pod", p[0]), fmt.Sprintf("http://127.0.0.1:%d/readyz", p[1]))
}

// startMinimal starts the minimal hand-written webhook (net/http, one json.Unmarshal, the Go
// decision).
func (e *env) startMinimal(ctx context.Context, clusterFile string) (*server, error) {
	p, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	args := []string{"--cert-dir=" + e.certDir, "--bind-address=127.0.0.1", "--port=" + strconv.Itoa(p[0]),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", p[1]), "--namespace=runtimeguard-system", "--cluster=" + clusterFile}
	return e.start(ctx, "minimal", filepath.Join(e.bin, "bench-minimal"), args,
		fmt.Sprintf("https://127.0.0.1:%d/mutate-v1-pod", p[0]), fmt.Sprintf("http://127.0.0.1:%d/readyz", p[1]))
}

// startServer starts the server named name (runtimeguard, baseline, minimal or opa) on the
// fixture cluster; opaData is the same cluster as OPA data.
func (e *env) startServer(ctx context.Context, name, clusterFile, opaData string, rgEnv []string) (*server, error) {
	switch name {
	case "runtimeguard":
		return e.startRuntimeguard(ctx, clusterFile, "", rgEnv...)
	case "baseline":
		return e.startBaseline(ctx, clusterFile)
	case "minimal":
		return e.startMinimal(ctx, clusterFile)
	case "opa":
		if opaData == "" {
			return nil, fmt.Errorf("server opa is not part of this benchmark")
		}
		return e.startOPA(ctx, opaData)
	}
	return nil, fmt.Errorf("unknown server %q (runtimeguard, baseline, minimal, opa)", name)
}

// startOPA starts `opa run --server` with the kube-mgmt style adapter around the default
// policy; POST / answers with data.system.main.
func (e *env) startOPA(ctx context.Context, opaData string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"run", "--server", "--addr=127.0.0.1:" + strconv.Itoa(port),
		"--tls-cert-file=" + filepath.Join(e.certDir, "tls.crt"), "--tls-private-key-file=" + filepath.Join(e.certDir, "tls.key"),
		"--set=default_decision=/system/main", "--log-level=error", "--skip-version-check",
		filepath.Join(e.root, "e2e/bench/opa/admission.rego"), filepath.Join(e.root, "policies/runtimeguard.rego"),
		filepath.Join(e.root, "policies/data.yaml"), opaData}
	return e.start(ctx, "opa", filepath.Join(e.bin, "opa"), args,
		fmt.Sprintf("https://127.0.0.1:%d/", port), fmt.Sprintf("https://127.0.0.1:%d/health", port))
}

func (e *env) start(ctx context.Context, name, binary string, args []string, url, ready string, environ ...string) (*server, error) {
	log := filepath.Join(e.out, "logs", fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano()))
	if err := os.MkdirAll(filepath.Dir(log), 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := &server{name: name, url: url, ready: ready, log: log, done: make(chan struct{})}
	if strings.HasSuffix(url, webhook.MutatePath) {
		s.validateURL = strings.TrimSuffix(url, webhook.MutatePath) + webhook.ValidatePath
	}
	s.cmd = exec.Command(binary, args...)
	s.cmd.Stdout, s.cmd.Stderr = f, f
	s.cmd.Env = append(os.Environ(), environ...)
	s.start = time.Now()
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.pool}}}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-s.done:
			b, _ := os.ReadFile(log)
			return nil, fmt.Errorf("%s exited before it was ready:\n%s", name, tail(b, 2000))
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		default:
		}
		if resp, err := client.Get(ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.readyAfter = time.Since(s.start)
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("%s not ready after 60s; log: %s", name, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM, then SIGKILL after 10 s, to this server's own process only.
func (s *server) stop() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
