package charts

import (
	"context"
	"slices"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/runtimeguard/runtimeguard/webhook/policycheck"
)

const policyCheckWebhookName = "policy.runtimeguard.io"

// policyCheck returns the policy ConfigMap check of the ValidatingWebhookConfiguration, or nil.
func (r *rendered) policyCheck(t *testing.T) *admissionv1.ValidatingWebhook {
	t.Helper()
	v := one(t, "ValidatingWebhookConfiguration", r.validating)
	for i := range v.Webhooks {
		if v.Webhooks[i].Name == policyCheckWebhookName {
			return &v.Webhooks[i]
		}
	}
	return nil
}

func configMapNamed(r *rendered, name string) *corev1.ConfigMap {
	for i := range r.configMaps {
		if r.configMaps[i].Name == name {
			return &r.configMaps[i]
		}
	}
	return nil
}

func TestPolicyCheckWebhookSelectsLabelledConfigMapsOfTheReleaseNamespace(t *testing.T) {
	r := render(t, "platform")
	w := r.policyCheck(t)
	if w == nil {
		t.Fatal("no policy.runtimeguard.io webhook by default")
	}
	if s := w.ClientConfig.Service; s == nil || s.Name != fullname || s.Namespace != "platform" || s.Path == nil || *s.Path != policycheck.Path || s.Port == nil || *s.Port != 443 {
		t.Errorf("clientConfig %s: want the webhook Service on 443, path %s (the one serve registers)", toJSON(t, w.ClientConfig), policycheck.Path)
	}
	wantRules := []admissionv1.RuleWithOperations{{
		Operations: []admissionv1.OperationType{admissionv1.Create, admissionv1.Update},
		Rule:       admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}, Scope: ptrTo(admissionv1.NamespacedScope)},
	}}
	if !jsonEqual(t, w.Rules, wantRules) {
		t.Errorf("rules %s, want %s", toJSON(t, w.Rules), toJSON(t, wantRules))
	}
	wantNS := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpIn, Values: []string{"platform"}}}}
	if !jsonEqual(t, w.NamespaceSelector, wantNS) {
		t.Errorf("namespaceSelector %s, want only the release namespace", toJSON(t, w.NamespaceSelector))
	}
	wantObj := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: policycheck.RoleLabel, Operator: metav1.LabelSelectorOpExists}}}
	if !jsonEqual(t, w.ObjectSelector, wantObj) {
		t.Errorf("objectSelector %s, want %s Exists", toJSON(t, w.ObjectSelector), policycheck.RoleLabel)
	}
	if w.FailurePolicy == nil || *w.FailurePolicy != admissionv1.Ignore || w.TimeoutSeconds == nil || *w.TimeoutSeconds != 10 {
		t.Errorf("failurePolicy %v timeoutSeconds %v, want Ignore and 10 by default", w.FailurePolicy, w.TimeoutSeconds)
	}
	if w.SideEffects == nil || *w.SideEffects != admissionv1.SideEffectClassNone {
		t.Errorf("sideEffects %v, want None", w.SideEffects)
	}

	r = render(t, defaultNS, "--set", "policies.check.failurePolicy=Fail", "--set", "policies.check.timeoutSeconds=20")
	if w := r.policyCheck(t); w == nil || *w.FailurePolicy != admissionv1.Fail || *w.TimeoutSeconds != 20 {
		t.Errorf("policies.check.failurePolicy=Fail, timeoutSeconds=20 not rendered: %s", toJSON(t, w))
	}
	r = render(t, defaultNS, "--set", "policies.check.enabled=false")
	if w := r.policyCheck(t); w != nil {
		t.Error("policies.check.enabled=false still renders the webhook")
	}
	checkInvariants(t, r)

	// Self-signed mode renders the caBundle of the Secret into it too (the binary keeps every
	// webhook of the configuration current); cert-manager injects into the whole configuration.
	r = render(t, defaultNS, "-f", ciFile(t, "selfsigned-values.yaml"))
	if r.policyCheck(t) == nil {
		t.Error("no policy check in self-signed mode")
	}
}

func TestPolicyLayerValuesRenderACheckedConfigMapMountedForPolicyModules(t *testing.T) {
	r := render(t, defaultNS, "-f", ciFile(t, "policy-layer-values.yaml"))
	checkInvariants(t, r)
	cm := configMapNamed(r, fullname+"-policy-layer")
	if cm == nil {
		t.Fatalf("no %s-policy-layer ConfigMap", fullname)
	}
	if cm.Labels[policycheck.RoleLabel] != policycheck.RoleLayer {
		t.Errorf("labels %v: want %s=%s, which the check selects", cm.Labels, policycheck.RoleLabel, policycheck.RoleLayer)
	}
	if keys := slices.Sorted(func(yield func(string) bool) {
		for k := range cm.Data {
			if !yield(k) {
				return
			}
		}
	}); !slices.Equal(keys, []string{"classes.cluster.yaml", "no-latest.suite.yaml", "no_latest.rego", "policy-data.yaml"}) {
		t.Errorf("data keys %v", keys)
	}
	if v, ok := argValue(r.args(t), "--policy-modules"); !ok || v != "/policy-layer" {
		t.Errorf("--policy-modules = %q (present %v)", v, ok)
	}
	if _, ok := argValue(r.args(t), "--policies"); ok {
		t.Error("--policies is set: a layer must not replace the built-in policy")
	}
	if !mountsConfigMapAt(r, cm.Name, "/policy-layer") {
		t.Errorf("ConfigMap %s not mounted as a directory at /policy-layer", cm.Name)
	}
	// What the chart renders is what the check accepts: the layer compiles over the built-in
	// policy, its data matches the schema and its suite passes.
	if err := (&policycheck.Checker{}).Check(context.Background(), cm.Labels[policycheck.RoleLabel], cm.Data, nil); err != nil {
		t.Errorf("the rendered layer fails the policy check: %v", err)
	}
	broken := map[string]string{}
	for k, v := range cm.Data {
		broken[k] = strings.ReplaceAll(v, "isolation: 2", "isolation: 3")
	}
	if err := (&policycheck.Checker{}).Check(context.Background(), policycheck.RoleLayer, broken, nil); err == nil || !strings.Contains(err.Error(), "untrusted pods get kata") {
		t.Errorf("the layer's suite does not catch a data change that breaks it: %v", err)
	}

	// The replace ConfigMap is labelled for the check too.
	r = render(t, defaultNS, "-f", ciFile(t, "inline-policies-values.yaml"))
	if cm := configMapNamed(r, fullname+"-policies"); cm == nil || cm.Labels[policycheck.RoleLabel] != policycheck.RoleReplace {
		t.Errorf("the inline policies ConfigMap is not labelled %s=%s", policycheck.RoleLabel, policycheck.RoleReplace)
	} else if err := (&policycheck.Checker{}).Check(context.Background(), policycheck.RoleReplace, cm.Data, nil); err != nil {
		t.Errorf("the inline example policy fails the policy check: %v", err)
	}

	// An existing layer ConfigMap is mounted, and none is created.
	r = render(t, defaultNS, "--set", "policies.layer.existingConfigMap=team-layer")
	if configMapNamed(r, fullname+"-policy-layer") != nil {
		t.Error("a layer ConfigMap is rendered although policies.layer.existingConfigMap is set")
	}
	if !mountsConfigMapAt(r, "team-layer", "/policy-layer") {
		t.Error("team-layer not mounted at /policy-layer")
	}

	// Nothing layered: no flag, no mount.
	r = render(t, defaultNS)
	if _, ok := argValue(r.args(t), "--policy-modules"); ok || mountsConfigMapAt(r, fullname+"-policy-layer", "/policy-layer") {
		t.Error("--policy-modules or the /policy-layer mount rendered without a layer")
	}
}

func TestInvalidPolicyLayerValuesAreRejected(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"existing layer ConfigMap and layer data", []string{"--set", "policies.layer.existingConfigMap=x", "--set", "policies.layer.data.config.a=1"},
			"policies.layer.existingConfigMap and policies.layer.data/modules are mutually exclusive"},
		{"a module under the data key", []string{"--set-string", "policies.layer.modules.policy-data\\.yaml=x", "--set", "policies.layer.data.config.a=1"},
			"policies.layer.modules must not hold policy-data.yaml"},
		{"a module name that is not a ConfigMap key", []string{"--set-string", "policies.layer.modules.dir/x\\.rego=x"},
			"invalid propertyName 'dir/x.rego'"},
		{"an unknown check failurePolicy", []string{"--set", "policies.check.failurePolicy=Sometimes"},
			"/policies/check/failurePolicy"},
		{"a check timeout above 30s", []string{"--set", "policies.check.timeoutSeconds=31"},
			"/policies/check/timeoutSeconds"},
		{"a typo in policies.layer", []string{"--set", "policies.layer.modulse.a=b"},
			"'modulse' not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, stderr, err := helm(t, templateArgs(t, defaultNS, tc.args...)...)
			if err == nil {
				t.Fatal("rendered")
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q does not contain %q", stderr, tc.want)
			}
		})
	}
}
