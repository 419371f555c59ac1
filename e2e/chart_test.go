package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/runtimeguard/runtimeguard/e2e/harness"
)

// Scenario 13.
//
// Every values file of charts/runtimeguard/ci (and the defaults) renders to manifests that the
// real kube-apiserver accepts: each object is sent with server-side apply and dryRun=All, so
// the API server runs defaulting, validation (built-in types, the cert-manager CRDs' schemas,
// the ServiceMonitor and PrometheusRule stand-ins in e2e/testdata/crds) and admission without
// storing anything.
//
// The manifests are rendered with fullnameOverride=runtimeguard-dryrun so that every object is
// new to the API server, as in a first `helm install`: under the default names the suite's own
// objects exist, and applying the chart's webhook configurations (clientConfig.service) over
// the suite's (clientConfig.url, written by another field manager) would merge both into an
// invalid object, which says nothing about the chart.
func TestChartManifestsAreAcceptedByTheAPIServer(t *testing.T) {
	ensureStandardCluster(t)
	ctx := context.Background()
	files, err := filepath.Glob(filepath.Join(s.root, "charts", "runtimeguard", "ci", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// Kinds each rendering must contain (at least this many), and kinds it must not.
	always := map[string]int{
		"ServiceAccount": 1, "ClusterRole": 1, "ClusterRoleBinding": 1, "Service": 1, "Deployment": 1,
		"PodDisruptionBudget": 1, "MutatingWebhookConfiguration": 1, "ValidatingWebhookConfiguration": 1,
	}
	certManagerOwnCA := merge(always, map[string]int{"Issuer": 2, "Certificate": 2})
	type expectation struct {
		kinds  map[string]int
		absent []string
	}
	selfSignedKinds := []string{"Secret", "Role", "RoleBinding"}
	cmKinds := []string{"Issuer", "Certificate"}
	expect := map[string]expectation{
		"(chart defaults)":                         {certManagerOwnCA, selfSignedKinds},
		"default-values.yaml":                      {certManagerOwnCA, selfSignedKinds},
		"certmanager-existing-issuer-values.yaml":  {merge(always, map[string]int{"Certificate": 1}), append([]string{"Issuer", "ClusterIssuer"}, selfSignedKinds...)},
		"existing-configmap-values.yaml":           {certManagerOwnCA, []string{"ConfigMap"}},
		"inline-policies-values.yaml":              {merge(certManagerOwnCA, map[string]int{"ConfigMap": 1}), nil},
		"networkpolicy-servicemonitor-values.yaml": {merge(certManagerOwnCA, map[string]int{"NetworkPolicy": 1, "ServiceMonitor": 1}), nil},
		"runtimeclasses-values.yaml":               {merge(certManagerOwnCA, map[string]int{"RuntimeClass": 2}), nil},
		"selfsigned-values.yaml":                   {merge(always, map[string]int{"Secret": 1, "Role": 1, "RoleBinding": 1, "ClusterRole": 2, "ClusterRoleBinding": 2}), cmKinds},
		"warn-ignore-values.yaml":                  {certManagerOwnCA, nil},
		// replicaCount 1: no PodDisruptionBudget.
		"platform-values.yaml": {merge(without(always, "PodDisruptionBudget"), map[string]int{"Issuer": 2, "Certificate": 2}),
			[]string{"PodDisruptionBudget"}},
		"monitoring-values.yaml": {merge(certManagerOwnCA, map[string]int{"ServiceMonitor": 1, "PrometheusRule": 1, "ConfigMap": 1}), nil},
		// The layer ConfigMap is labelled runtimeguard.io/policy: the suite's webhook checks it
		// (module, data and shipped suite) before the dry run accepts it.
		"policy-layer-values.yaml": {merge(certManagerOwnCA, map[string]int{"ConfigMap": 1}), nil},
		"audit-values.yaml": {merge(certManagerOwnCA, map[string]int{"ClusterRole": 3, "ClusterRoleBinding": 3, "Role": 1, "RoleBinding": 1,
			"CustomResourceDefinition": 1}), []string{"Secret"}},
	}
	cases := []string{"(chart defaults)"}
	for _, f := range files {
		cases = append(cases, filepath.Base(f))
	}
	for _, name := range cases {
		t.Run(name, func(t *testing.T) {
			var args []string
			if name != "(chart defaults)" {
				args = []string{"-f", filepath.Join(s.root, "charts", "runtimeguard", "ci", name)}
			}
			args = append(args, "--set", "fullnameOverride=runtimeguard-dryrun")
			r, err := harness.RenderChart(s.ctx, args...)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := r.Objects()
			if err != nil {
				t.Fatal(err)
			}
			applied := map[string]int{}
			for _, u := range objs {
				err := s.client.Patch(ctx, u.DeepCopy(), client.Apply, client.DryRunAll,
					client.FieldOwner("helm"), client.ForceOwnership)
				if err != nil {
					t.Errorf("%s %s/%s rejected: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
					continue
				}
				applied[u.GetKind()]++
			}
			want, ok := expect[name]
			if !ok {
				t.Fatalf("no expectation for the new values file %s: add one to this test", name)
			}
			for kind, n := range want.kinds {
				if applied[kind] < n {
					t.Errorf("applied %d %s, want at least %d", applied[kind], kind, n)
				}
			}
			for _, kind := range want.absent {
				if applied[kind] > 0 {
					t.Errorf("applied %d %s, want none with these values", applied[kind], kind)
				}
			}
			t.Logf("accepted (dry run): %s", describeCounts(applied))
		})
	}

	// The check is not vacuous: the same dry run rejects a broken built-in object, a
	// Certificate that violates the cert-manager CRD's schema and a PrometheusRule with a
	// duration Prometheus cannot parse.
	t.Run("broken manifests are rejected", func(t *testing.T) {
		r, err := harness.RenderChart(s.ctx, "--set", "fullnameOverride=runtimeguard-dryrun", "--set", "prometheusRule.enabled=true")
		if err != nil {
			t.Fatal(err)
		}
		objs, err := r.Objects("Deployment", "Certificate", "PrometheusRule")
		if err != nil {
			t.Fatal(err)
		}
		if len(objs) < 4 {
			t.Fatalf("rendered %d Deployment/Certificate/PrometheusRule objects, want 4", len(objs))
		}
		for _, u := range objs {
			u = u.DeepCopy()
			switch u.GetKind() {
			case "Deployment":
				_ = unstructured.SetNestedField(u.Object, int64(-1), "spec", "replicas")
			case "PrometheusRule":
				groups, _, _ := unstructured.NestedSlice(u.Object, "spec", "groups")
				rules := groups[0].(map[string]any)["rules"].([]any)
				rules[0].(map[string]any)["for"] = "15 minutes"
				_ = unstructured.SetNestedSlice(u.Object, groups, "spec", "groups")
			default:
				_ = unstructured.SetNestedField(u.Object, "yes", "spec", "isCA")
			}
			err := s.client.Patch(ctx, u, client.Apply, client.DryRunAll, client.FieldOwner("helm"), client.ForceOwnership)
			if err == nil {
				t.Errorf("broken %s %s accepted by the dry run", u.GetKind(), u.GetName())
			}
		}
	})
}

func merge(a, b map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func without(a map[string]int, kind string) map[string]int {
	out := merge(a, nil)
	delete(out, kind)
	return out
}

func describeCounts(m map[string]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%d %s", v, k))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
