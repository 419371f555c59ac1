package serve

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/runtimeguard/runtimeguard/certs"
	"github.com/runtimeguard/runtimeguard/webhook"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// A replica whose policy files are broken when it starts does not exit (which would
// crash-loop): it serves /healthz, fails /readyz on the "policy" check, logs the error with
// file:line, answers admissions with 503, and becomes Ready once the files are fixed, without a
// restart. Run is called once per test binary (it registers the process-wide metrics).
func TestAReplicaStartingWithABrokenPolicyStaysUpNotReadyAndRecovers(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "policies")
	writePolicy(t, dir, func(s string) string { return s })
	broken := filepath.Join(dir, "broken.rego")
	if err := os.WriteFile(broken, []byte("package runtimeguard\n\ndeny contains msg if {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	certDir := filepath.Join(root, "certs")
	if _, err := certs.WriteDevCerts(certDir, []string{"127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1000)
	ctrl.SetLogger(funcr.New(func(prefix, args string) {
		select {
		case lines <- prefix + " " + args:
		default:
		}
	}, funcr.Options{}))
	defer ctrl.SetLogger(logr.Discard())

	o := DefaultOptions()
	o.PolicyDirs = []string{dir}
	o.ClusterFiles = []string{"../../policies/examples/cluster/cluster.yaml"}
	o.Port = freePort(t)
	o.BindAddress = "127.0.0.1"
	health := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	o.HealthProbeBindAddress = health
	o.MetricsBindAddress = "0"
	o.CertDir = certDir
	o.ShutdownDelay = 0
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}()

	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // a local test server
	get := func(url string) (int, string) {
		resp, err := hc.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor := func(what string, timeout time.Duration, cond func() (bool, string)) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		last := ""
		for time.Now().Before(deadline) {
			select {
			case err := <-done:
				t.Fatalf("Run returned while waiting for %s: %v", what, err)
			default:
			}
			var ok bool
			if ok, last = cond(); ok {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("%s: not within %s (last: %s)", what, timeout, last)
	}

	waitFor("/healthz ok and /readyz failing on the policy check", 20*time.Second, func() (bool, string) {
		hs, hb := get("http://" + health + "/healthz")
		rs, rb := get("http://" + health + "/readyz")
		return hs == http.StatusOK && rs == http.StatusInternalServerError && strings.Contains(rb, "[-]policy failed"), fmt.Sprintf("healthz %d %q, readyz %d %q", hs, hb, rs, rb)
	})
	waitFor("the webhook answering 503 with the reason", 10*time.Second, func() (bool, string) {
		resp, err := hc.Post(fmt.Sprintf("https://127.0.0.1:%d%s", o.Port, webhook.ValidatePath), "application/json", strings.NewReader("{}"))
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(b), "broken.rego:4"), fmt.Sprintf("%d %q", resp.StatusCode, b)
	})
	var logged string
	waitFor("the error logged with file:line", 5*time.Second, func() (bool, string) {
		for {
			select {
			case l := <-lines:
				if strings.Contains(l, "staying NotReady") && strings.Contains(l, "broken.rego:4") {
					logged = l
					return true, l
				}
			default:
				return false, "no such log line yet"
			}
		}
	})
	t.Logf("logged: %s", logged)

	if err := os.Remove(broken); err != nil {
		t.Fatal(err)
	}
	fixed := time.Now()
	waitFor("Ready after the policy is fixed", 10*time.Second, func() (bool, string) {
		s, b := get("http://" + health + "/readyz")
		return s == http.StatusOK, fmt.Sprintf("%d %q", s, b)
	})
	t.Logf("ready %s after the fix", time.Since(fixed).Round(time.Millisecond))
	resp, err := hc.Post(fmt.Sprintf("https://127.0.0.1:%d%s", o.Port, webhook.ValidatePath), "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		t.Fatal("the webhook still answers 503 once the policy loaded")
	}
}
