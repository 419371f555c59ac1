package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/runtimeguard/runtimeguard/certs"
	"github.com/runtimeguard/runtimeguard/e2e/controlplane"
	"github.com/runtimeguard/runtimeguard/e2e/harness"
)

// Namespaces of the suite, one per tenancy.
const (
	nsUntrusted = "untrusted-e2e"
	nsFinancial = "financial-e2e"
	nsPlain     = "plain-e2e"
	nsIgnored   = "ignored-e2e"
	nsWarn      = "warn-e2e"
)

// suite is the state every scenario shares: one control plane, one webhook process.
type suite struct {
	root       string
	cp         *controlplane.ControlPlane
	client     client.Client
	certs      *certs.DevCerts
	certDir    string
	policyDir  string
	webhook    *harness.Webhook
	webhookCfg harness.WebhookOptions
	rendered   *harness.Rendered
	logDir     string
	report     *os.File
}

var s suite

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup failed:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	ctx := context.Background()
	var err error
	if s.root, err = controlplane.RepoRoot(); err != nil {
		return 0, err
	}
	if s.logDir, err = os.MkdirTemp("", "runtimeguard-e2e-"); err != nil {
		return 0, err
	}
	reportPath := filepath.Join(s.root, "bin", "e2e-measurements.txt")
	if s.report, err = os.Create(reportPath); err != nil {
		return 0, err
	}
	defer s.report.Close()
	crds, err := certManagerCRDs(s.root)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	s.cp, err = controlplane.Start(controlplane.Options{
		ControllerManager: true,
		LogDir:            s.logDir,
		CRDDirs:           []string{crds, filepath.Join(s.root, "e2e", "testdata", "crds")},
	})
	if err != nil {
		return 0, err
	}
	defer s.cp.Stop()
	measure("control plane started in %s", time.Since(start).Round(time.Millisecond))

	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	if s.client, err = client.New(s.cp.Config, client.Options{Scheme: scheme}); err != nil {
		return 0, err
	}
	if err := setupCluster(ctx); err != nil {
		return 0, err
	}
	if err := startWebhook(ctx); err != nil {
		return 0, err
	}
	defer func() { s.webhook.Stop() }()
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "logs kept in %s\n", s.logDir)
	} else {
		_ = os.RemoveAll(s.logDir)
	}
	return code, nil
}

// setupCluster creates the namespaces, RuntimeClasses and Nodes, and the chart's RBAC.
func setupCluster(ctx context.Context) error {
	for name, labels := range map[string]map[string]string{
		nsUntrusted:       {"runtimeguard.io/tenancy": "untrusted"},
		nsFinancial:       {"runtimeguard.io/tenancy": "financial"},
		nsPlain:           nil,
		nsIgnored:         {"runtimeguard.io/tenancy": "untrusted", "runtimeguard.io/ignore": "true"},
		nsWarn:            {"runtimeguard.io/tenancy": "financial", "runtimeguard.io/enforcement": "warn"},
		harness.Namespace: nil,
	} {
		if err := harness.EnsureNamespace(ctx, s.client, name, labels); err != nil {
			return err
		}
	}
	if err := harness.ApplyClasses(ctx, s.client, harness.StandardClasses()); err != nil {
		return err
	}
	for _, n := range harness.StandardNodes() {
		if err := harness.ApplyNode(ctx, s.client, n); err != nil {
			return err
		}
	}
	var err error
	// The webhook configurations come from the chart with default values.
	if s.rendered, err = harness.RenderChart(ctx); err != nil {
		return err
	}
	return s.rendered.ApplyKinds(ctx, s.client, "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
}

// startWebhook starts `runtimeguard serve` as the chart's ServiceAccount (a client-certificate
// user with exactly the chart's RBAC), with dev certificates and a policy directory the
// scenarios may change, and registers it.
func startWebhook(ctx context.Context) error {
	var err error
	s.certDir = filepath.Join(s.logDir, "certs")
	if s.certs, err = certs.WriteDevCerts(s.certDir, []string{"127.0.0.1", "localhost"}, 24*time.Hour); err != nil {
		return err
	}
	s.policyDir = filepath.Join(s.logDir, "policies")
	if err := copyPolicies(filepath.Join(s.root, "policies"), s.policyDir); err != nil {
		return err
	}
	user, err := s.rendered.ServiceAccountUser()
	if err != nil {
		return err
	}
	kubeconfig, err := s.cp.UserKubeconfig(user, "system:serviceaccounts", "system:serviceaccounts:"+harness.Namespace)
	if err != nil {
		return err
	}
	s.webhookCfg = harness.WebhookOptions{
		Kubeconfig: kubeconfig,
		CertDir:    s.certDir,
		LogPath:    filepath.Join(s.logDir, "runtimeguard.log"),
		Args:       []string{"--policies=" + s.policyDir},
	}
	start := time.Now()
	if s.webhook, err = harness.StartWebhook(ctx, s.webhookCfg); err != nil {
		return err
	}
	measure("webhook ready (caches synced, policy compiled) in %s", time.Since(start).Round(time.Millisecond))
	s.webhookCfg.Port = s.webhook.Port
	s.rendered.PointAt(fmt.Sprintf("https://127.0.0.1:%d", s.webhook.Port), s.certs.CAPEM)
	return s.rendered.Apply(ctx, s.client)
}

// ensureWebhook restarts the webhook if a scenario stopped it.
func ensureWebhook(t *testing.T) {
	t.Helper()
	if !s.webhook.Exited() {
		return
	}
	w, err := harness.StartWebhook(context.Background(), s.webhookCfg)
	if err != nil {
		t.Fatalf("restarting the webhook: %v", err)
	}
	s.webhook = w
}

// certManagerCRDs returns the directory of cert-manager's CRDs in the Go module cache.
func certManagerCRDs(root string) (string, error) {
	out, err := exec.Command(filepath.Join(root, "e2e", "tools", "certmanager", "crds.sh")).Output()
	if err != nil {
		return "", fmt.Errorf("locating cert-manager's CRDs (e2e/tools/certmanager/crds.sh): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

func copyPolicies(from, to string) error {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	for _, name := range []string{"runtimeguard.rego", "data.yaml"} {
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// measure records a figure in bin/e2e-measurements.txt and the test output.
func measure(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	fmt.Fprintln(s.report, line)
	fmt.Println("measure:", line)
}
