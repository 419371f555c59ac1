// Package harness runs runtimeguard against a local control plane: it starts the real
// `runtimeguard serve` binary as a separate process, registers it with webhook configurations
// rendered from the Helm chart (so chart and tests cannot drift), and creates the cluster
// objects scenarios need. The e2e suite and `make demo` share it.
package harness

import (
	"bytes"
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
	"syscall"
	"time"

	"github.com/runtimeguard/runtimeguard/e2e/controlplane"
)

// Webhook is a running `runtimeguard serve` process.
type Webhook struct {
	Port        int
	HealthPort  int
	MetricsPort int
	CertDir     string
	LogPath     string
	cmd         *exec.Cmd
	done        chan struct{}
}

// FreePort asks the kernel for an unused loopback port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WebhookOptions configures StartWebhook.
type WebhookOptions struct {
	Binary     string // default <repo>/bin/runtimeguard
	Kubeconfig string
	CertDir    string
	// Port reuses a port (a restarted replica); 0 picks a free one.
	Port    int
	LogPath string
	// Args are extra serve flags (--policies, --enforcement, ...).
	Args []string
	// NoWait returns as soon as the process runs, without waiting for /readyz (WaitReady).
	NoWait bool
}

// StartWebhook starts `runtimeguard serve` and waits until /readyz answers ok.
func StartWebhook(ctx context.Context, o WebhookOptions) (*Webhook, error) {
	if o.Binary == "" {
		root, err := controlplane.RepoRoot()
		if err != nil {
			return nil, err
		}
		o.Binary = filepath.Join(root, "bin", "runtimeguard")
	}
	if err := controlplane.RequireBinaries(filepath.Dir(o.Binary), filepath.Base(o.Binary)); err != nil {
		return nil, fmt.Errorf("%w (or `make build`)", err)
	}
	w := &Webhook{CertDir: o.CertDir, LogPath: o.LogPath, Port: o.Port, done: make(chan struct{})}
	var err error
	if w.Port == 0 {
		if w.Port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	if w.HealthPort, err = FreePort(); err != nil {
		return nil, err
	}
	if w.MetricsPort, err = FreePort(); err != nil {
		return nil, err
	}
	args := []string{"serve",
		"--kubeconfig=" + o.Kubeconfig,
		"--cert-dir=" + o.CertDir,
		"--bind-address=127.0.0.1",
		"--port=" + strconv.Itoa(w.Port),
		"--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(w.HealthPort),
		"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(w.MetricsPort),
		"--webhook-namespace=runtimeguard-system",
	}
	args = append(args, o.Args...)
	w.cmd = exec.Command(o.Binary, args...)
	if o.LogPath != "" {
		f, err := os.OpenFile(o.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		w.cmd.Stdout, w.cmd.Stderr = f, f
	}
	if err := w.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = w.cmd.Wait(); close(w.done) }()
	if o.NoWait {
		return w, nil
	}
	if err := w.WaitReady(ctx, 30*time.Second); err != nil {
		w.Stop()
		return nil, err
	}
	return w, nil
}

// WaitReady waits until /readyz answers ok; it fails at once if the process exits.
func (w *Webhook) WaitReady(ctx context.Context, timeout time.Duration) error {
	return controlplane.Wait(ctx, timeout, func(context.Context) (bool, error) {
		select {
		case <-w.done:
			return false, fmt.Errorf("runtimeguard serve exited early; see %s", w.LogPath)
		default:
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", w.HealthPort))
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Errorf("/readyz answered %d", resp.StatusCode)
	})
}

// Stop sends SIGTERM and waits for the process to drain and exit.
func (w *Webhook) Stop() {
	if w.cmd == nil || w.cmd.Process == nil {
		return
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(40 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.done
	}
}

// Exited reports whether the process has exited.
func (w *Webhook) Exited() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// URL returns the webhook's https URL for path.
func (w *Webhook) URL(path string) string {
	return fmt.Sprintf("https://127.0.0.1:%d%s", w.Port, path)
}

// Metrics returns the text of /metrics.
func (w *Webhook) Metrics() (string, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", w.MetricsPort))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return b.String(), err
}

// ServingSerial returns the serial number of the certificate the webhook serves now.
func (w *Webhook) ServingSerial(ca []byte) (string, error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", w.Port), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}
