package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/runtimeguard/runtimeguard/e2e/controlplane"
	"github.com/runtimeguard/runtimeguard/e2e/harness"
)

// auditInterval is the auditing replica's --audit-interval: short, so that "within one audit
// period" is measured in seconds.
const auditInterval = 5 * time.Second

var policyReportGVK = schema.GroupVersionKind{Group: "wgpolicyk8s.io", Version: "v1alpha2", Kind: "PolicyReport"}

// Scenario 35.
func TestAuditFindsAPodAdmittedInWarnModeAndReportsItUntilItIsDeleted(t *testing.T) {
	ensureStandardCluster(t)
	ctx := context.Background()

	// The chart with the audit on: its RBAC for the ServiceAccount (removed afterwards: the
	// suite's webhook runs with the defaults, which grant no Pod access) and its PolicyReport CRD.
	rendered, err := harness.RenderChart(s.ctx, "--set", "audit.enabled=true", "--set", "audit.interval="+auditInterval.String(),
		"--set", "audit.policyReports.installCRD=true")
	if err != nil {
		t.Fatal(err)
	}
	installPolicyReportCRD(t, rendered)
	rbac, err := rendered.Objects("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range rbac {
		if !strings.HasSuffix(u.GetName(), "-audit") && !strings.HasSuffix(u.GetName(), "-audit-lease") {
			continue
		}
		if err := s.client.Patch(ctx, u, client.Apply, client.FieldOwner("runtimeguard-e2e"), client.ForceOwnership); err != nil {
			t.Fatalf("applying %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		t.Cleanup(func() { _ = s.client.Delete(context.Background(), u) })
	}

	// A namespace in warn mode: its untrusted Pod is admitted without a class (warn mode never
	// injects), which enforce would deny. And a clean namespace, whose Pod gets gVisor.
	warnNS, cleanNS := uniqueName("audit-warn"), uniqueName("audit-clean")
	for name, labels := range map[string]map[string]string{
		warnNS:  {"runtimeguard.io/tenancy": "untrusted", "runtimeguard.io/enforcement": "warn"},
		cleanNS: {"runtimeguard.io/tenancy": "untrusted"},
	} {
		if err := harness.EnsureNamespace(ctx, s.client, name, labels); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = s.client.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
		})
	}
	clean := mustCreatePod(t, harness.Pod(cleanNS, uniqueName("clean")))
	if className(clean) != "gvisor" {
		t.Fatalf("the clean namespace's pod got class %q, want gvisor", className(clean))
	}
	t.Cleanup(func() { deleteNow(t, clean) })

	// One replica with the chart's audit flags, as the chart's ServiceAccount.
	args, err := rendered.ServeArgs(harness.ServeArgsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	auditArgs := []string{"--policies=" + s.policyDir}
	for _, a := range args {
		if strings.HasPrefix(a, "--audit-") {
			auditArgs = append(auditArgs, a)
		}
	}
	if !slices.Contains(auditArgs, "--audit-interval="+auditInterval.String()) || !slices.Contains(auditArgs, "--audit-policy-reports=true") {
		t.Fatalf("the chart's audit flags are %v", auditArgs)
	}
	o := s.webhookCfg
	o.Port, o.Args, o.LogPath = 0, auditArgs, filepath.Join(s.logDir, "audit-replica.log")
	auditor, err := harness.StartWebhook(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(auditor.Stop)
	// It leads and has audited once before the Pods exist.
	if err := controlplane.Wait(ctx, 60*time.Second, func(context.Context) (bool, error) {
		leader, err := metricValue(auditor, "runtimeguard_audit_leader")
		if err != nil {
			return false, err
		}
		last, err := metricValue(auditor, "runtimeguard_audit_last_run_timestamp_seconds")
		return leader == 1 && last > 0, err
	}); err != nil {
		t.Fatalf("the auditing replica never led and audited: %v (log %s)", err, o.LogPath)
	}

	// Two Pods admitted in warn mode, with the warning, and no class.
	var warned []*corev1.Pod
	for range 2 {
		p := mustCreatePod(t, harness.Pod(warnNS, uniqueName("warned")))
		if className(p) != "" {
			t.Fatalf("a warn-mode pod got class %q, want none", className(p))
		}
		warned = append(warned, p)
		t.Cleanup(func() { deleteNow(t, p) })
	}
	created := time.Now()

	// runtimeguard audit names them and exits 1; the clean namespace exits 0.
	out, code := runAudit(t, "-n", warnNS)
	if code != 1 {
		t.Fatalf("audit -n %s exited %d, want 1\n%s", warnNS, code, out)
	}
	// The message is the admission's for the Pod as it is now: kube-scheduler has bound it, so
	// it names the class its node could run, or that its node runs none (a general node).
	for _, p := range warned {
		row := regexp.MustCompile(fmt.Sprintf(`(?m)^%s\s+Pod\s+%s\s+missing-class\s+-\s+warn\s+namespace %q is runtimeguard.io/tenancy=untrusted, which needs isolation >= 1`,
			regexp.QuoteMeta(warnNS), regexp.QuoteMeta(p.Name), regexp.QuoteMeta(warnNS)))
		if !row.MatchString(out) {
			t.Errorf("audit output has no row for %s matching %s:\n%s", p.Name, row, out)
		}
	}
	jsonOut, code := runAudit(t, "-n", warnNS, "-o", "json")
	var report struct {
		Violations []struct{ Name, Reason string }
	}
	if err := json.Unmarshal([]byte(jsonOut), &report); err != nil || code != 1 || len(report.Violations) != 2 {
		t.Errorf("audit -o json: exit %d, %d violations, %v\n%s", code, len(report.Violations), err, jsonOut)
	}
	if out, code := runAudit(t, "-n", cleanNS); code != 0 || !strings.Contains(out, "No violations.") {
		t.Errorf("audit -n %s exited %d, want 0 and no violation\n%s", cleanNS, code, out)
	}

	// The PolicyReport of the warn namespace lists both within one audit period.
	if err := controlplane.Wait(ctx, 4*auditInterval+10*time.Second, func(ctx context.Context) (bool, error) {
		names, err := reportedPods(ctx, warnNS)
		return slices.Equal(names, sortedNames(warned...)), err
	}); err != nil {
		t.Fatalf("PolicyReport %s/runtimeguard never listed %v: %v", warnNS, sortedNames(warned...), err)
	}
	seen := time.Since(created)
	measure("audit: pods created in warn mode in their namespace's PolicyReport after %s (audit interval %s)", seen.Round(10*time.Millisecond), auditInterval)
	if seen > auditInterval+5*time.Second {
		t.Errorf("the PolicyReport listed the pods %s after their creation, more than one audit period (%s) and 5 s for the run", seen, auditInterval)
	}
	checkReportResult(t, ctx, warnNS, warned[0])
	if _, err := getReport(ctx, cleanNS); !apierrors.IsNotFound(err) {
		t.Errorf("the clean namespace has a PolicyReport (err %v), want none", err)
	}
	m, err := auditor.Metrics()
	if want := fmt.Sprintf(`runtimeguard_audit_violations{namespace=%q,reason="missing-class"} 2`, warnNS); err != nil || !strings.Contains(m, want) {
		t.Errorf("metrics lack %s (%v)", want, err)
	}

	// Deleted, a Pod leaves the report within one audit period; the other stays.
	deleteNow(t, warned[0])
	deleted := time.Now()
	if err := controlplane.Wait(ctx, 4*auditInterval+10*time.Second, func(ctx context.Context) (bool, error) {
		names, err := reportedPods(ctx, warnNS)
		return slices.Equal(names, []string{warned[1].Name}), err
	}); err != nil {
		t.Fatalf("PolicyReport %s/runtimeguard still lists the deleted %s: %v", warnNS, warned[0].Name, err)
	}
	gone := time.Since(deleted)
	measure("audit: a deleted pod left its namespace's PolicyReport after %s", gone.Round(10*time.Millisecond))
	if gone > auditInterval+5*time.Second {
		t.Errorf("the deleted pod left the report after %s, more than one audit period (%s) and 5 s", gone, auditInterval)
	}
}

// installPolicyReportCRD creates the chart's PolicyReport CRD (unless there) and waits until
// it is established.
func installPolicyReportCRD(t *testing.T, rendered *harness.Rendered) {
	t.Helper()
	ctx := context.Background()
	crds, err := rendered.Objects("CustomResourceDefinition")
	if err != nil || len(crds) != 1 {
		t.Fatalf("the chart rendered %d CRDs (%v), want the PolicyReport CRD", len(crds), err)
	}
	if err := s.client.Create(ctx, crds[0]); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating the PolicyReport CRD: %v", err)
	}
	if err := controlplane.Wait(ctx, 30*time.Second, func(ctx context.Context) (bool, error) {
		crd := &unstructured.Unstructured{}
		crd.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
		if err := s.client.Get(ctx, client.ObjectKey{Name: "policyreports.wgpolicyk8s.io"}, crd); err != nil {
			return false, err
		}
		conditions, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
		for _, c := range conditions {
			if c := c.(map[string]any); c["type"] == "Established" && c["status"] == "True" {
				// The client's REST mapper learns the new kind on its next miss.
				_, err := getReport(ctx, "default")
				return err == nil || apierrors.IsNotFound(err), err
			}
		}
		return false, errors.New("not established")
	}); err != nil {
		t.Fatalf("the PolicyReport CRD is not served: %v", err)
	}
}

func getReport(ctx context.Context, ns string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(policyReportGVK)
	return u, s.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "runtimeguard"}, u)
}

// reportedPods are the names of the Pods in ns's runtimeguard PolicyReport, sorted (none
// without a report).
func reportedPods(ctx context.Context, ns string) ([]string, error) {
	u, err := getReport(ctx, ns)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	results, _, _ := unstructured.NestedSlice(u.Object, "results")
	var names []string
	for _, r := range results {
		res, _, _ := unstructured.NestedSlice(r.(map[string]any), "resources")
		for _, ref := range res {
			if m := ref.(map[string]any); m["kind"] == "Pod" {
				names = append(names, m["name"].(string))
			}
		}
	}
	slices.Sort(names)
	return names, nil
}

// checkReportResult checks the whole result of p: policy, rule, result, message, reference.
func checkReportResult(t *testing.T, ctx context.Context, ns string, p *corev1.Pod) {
	t.Helper()
	u, err := getReport(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	if fail, _, _ := unstructured.NestedInt64(u.Object, "summary", "fail"); fail != 2 {
		t.Errorf("summary.fail = %d, want 2", fail)
	}
	results, _, _ := unstructured.NestedSlice(u.Object, "results")
	for _, r := range results {
		m := r.(map[string]any)
		ref := m["resources"].([]any)[0].(map[string]any)
		if ref["name"] != p.Name {
			continue
		}
		if m["policy"] != "runtimeguard" || m["rule"] != "missing-class" || m["result"] != "fail" || m["source"] != "runtimeguard" ||
			ref["apiVersion"] != "v1" || ref["namespace"] != ns || ref["uid"] != string(p.UID) ||
			!strings.HasPrefix(m["message"].(string), fmt.Sprintf(`namespace %q is runtimeguard.io/tenancy=untrusted, which needs isolation >= 1`, ns)) {
			t.Errorf("result for %s = %v", p.Name, m)
		}
		return
	}
	t.Errorf("no result for %s", p.Name)
}

// runAudit runs `runtimeguard audit` against the suite's API server as its admin; it returns
// stdout and the exit code.
func runAudit(t *testing.T, args ...string) (string, int) {
	t.Helper()
	all := append([]string{"audit", "--kubeconfig", s.cp.Kubeconfig, "--policies", s.policyDir, "--webhook-namespace", harness.Namespace}, args...)
	cmd := exec.Command(filepath.Join(s.root, "bin", "runtimeguard"), all...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
	case err != nil:
		t.Fatalf("runtimeguard audit: %v", err)
	}
	t.Logf("runtimeguard %s: exit %d\n%s%s", strings.Join(args, " "), cmd.ProcessState.ExitCode(), stdout.String(), stderr.String())
	return stdout.String(), cmd.ProcessState.ExitCode()
}

func sortedNames(pods ...*corev1.Pod) []string {
	var names []string
	for _, p := range pods {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	return names
}
