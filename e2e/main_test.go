package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/runtimeguard/runtimeguard/certs"
	"github.com/runtimeguard/runtimeguard/e2e/controlplane"
	"github.com/runtimeguard/runtimeguard/e2e/harness"
	"github.com/runtimeguard/runtimeguard/e2e/tools"
)

// Namespaces of the suite, one per tenancy.
const (
	nsUntrusted = "untrusted-e2e"
	nsFinancial = "financial-e2e"
	nsPlain     = "plain-e2e"
	nsIgnored   = "ignored-e2e"
	nsWarn      = "warn-e2e"
	// nsWarnUntrusted is untrusted in warn mode: placement denials become warnings.
	nsWarnUntrusted = "warn-untrusted-e2e"
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
	// tools resolves the suite's tools (entry point e2e of e2e/tools/tools.txt); ctx carries
	// it to harness.RenderChart, and paths are the tools the scenarios run.
	tools  *tools.Resolver
	ctx    context.Context
	paths  harness.SuiteTools
	report *os.File
}

var s suite

func TestMain(m *testing.M) {
	if url := os.Getenv(postRenderEnv); url != "" { // run by helm as its post-renderer
		if err := postRender(url, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
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
	s.tools = tools.New(tools.E2E, filepath.Join(s.root, "bin"))
	if s.paths, err = harness.ResolveSuiteTools(s.tools); err != nil {
		return 0, err
	}
	s.ctx = tools.WithResolver(ctx, s.tools)
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
	cpOpts := harness.SuiteControlPlane
	cpOpts.Tools = s.tools
	cpOpts.LogDir = s.logDir
	cpOpts.CRDDirs = []string{crds, filepath.Join(s.root, "e2e", "testdata", "crds")}
	s.cp, err = controlplane.Start(cpOpts)
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
		nsWarnUntrusted:   {"runtimeguard.io/tenancy": "untrusted", "runtimeguard.io/enforcement": "warn"},
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
	if s.rendered, err = harness.RenderChart(s.ctx); err != nil {
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

// viewTimeout bounds how long a webhook may take to observe a change of the cluster. Informer
// events arrive within milliseconds; after an API server restart the reflectors reconnect with
// a back-off of up to 30 s.
const viewTimeout = 60 * time.Second

// ensureStandardCluster is how every scenario starts, so that none depends on what ran before
// it or in which order: the suite's webhook runs and is the one registered; the Nodes and
// RuntimeClasses in the API are the standard ones (a scenario whose cleanup failed is repaired
// here, and logged); and the webhook's own view, read from its metrics (computed from the same
// informer caches admission decides with), shows exactly the standard cluster. Without the last
// wait a scenario could be decided on a view that has not yet seen the previous scenario's
// cleanup (a GPU node still NotReady, say).
func ensureStandardCluster(t *testing.T) {
	t.Helper()
	ensureWebhook(t)
	ctx := context.Background()
	changed, err := harness.RestoreStandardCluster(ctx, s.client)
	if err != nil {
		t.Fatalf("restoring the standard cluster: %v", err)
	}
	if len(changed) > 0 {
		t.Logf("an earlier scenario left the cluster changed; restored: %s", strings.Join(changed, "; "))
	}
	if registered, err := suiteWebhookRegistered(ctx); err != nil || !registered {
		t.Logf("the suite's webhook configurations are not registered (%v): re-registering", err)
		restoreSuiteWebhook(t)
	}
	if err := harness.WaitForStandardView(ctx, s.webhook, viewTimeout); err != nil {
		t.Fatal(err)
	}
	// Ready: its view is fresh (an API server restart in an earlier scenario is over).
	if err := waitReadyz(s.webhook, true, viewTimeout); err != nil {
		t.Fatalf("the suite's webhook is not ready: %v\n%s", err, readyzBody(s.webhook))
	}
}

// waitStandardView waits until each webhook (the suite's when none is given) has observed the
// standard cluster: a cleanup that restores Nodes or RuntimeClasses calls it, since a restore
// is not done until the webhooks deciding the next admissions have seen it. It reports
// failures with t.Errorf (it runs in cleanups) and returns whether all observed it.
func waitStandardView(t *testing.T, ws ...*harness.Webhook) bool {
	t.Helper()
	if len(ws) == 0 {
		ws = []*harness.Webhook{s.webhook}
	}
	ok := true
	for _, w := range ws {
		if w.Exited() {
			continue
		}
		if err := harness.WaitForStandardView(context.Background(), w, viewTimeout); err != nil {
			t.Errorf("after restoring the standard cluster: %v", err)
			ok = false
		}
	}
	return ok
}

// restoreNodes writes the standard spec of the named Nodes back and waits until the suite's
// webhook has observed the standard cluster again: the cleanup of scenarios that change Nodes.
func restoreNodes(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range harness.StandardNodes() {
		if slices.Contains(names, n.Name) {
			if err := harness.ApplyNode(context.Background(), s.client, n); err != nil {
				t.Errorf("restoring Node %s: %v", n.Name, err)
			}
		}
	}
	waitStandardView(t)
}

// suiteWebhookRegistered reports whether both webhook configurations in the API are the
// suite's (its URL and CA bundle on every webhook).
func suiteWebhookRegistered(ctx context.Context) (bool, error) {
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := s.client.Get(ctx, client.ObjectKeyFromObject(s.rendered.Mutating), m); err != nil {
		return false, err
	}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := s.client.Get(ctx, client.ObjectKeyFromObject(s.rendered.Validating), v); err != nil {
		return false, err
	}
	var got, want []admissionregistrationv1.WebhookClientConfig
	for _, w := range m.Webhooks {
		got = append(got, w.ClientConfig)
	}
	for _, w := range v.Webhooks {
		got = append(got, w.ClientConfig)
	}
	for _, w := range s.rendered.Mutating.Webhooks {
		want = append(want, w.ClientConfig)
	}
	for _, w := range s.rendered.Validating.Webhooks {
		want = append(want, w.ClientConfig)
	}
	return equality.Semantic.DeepEqual(got, want), nil
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
