package charts

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"

	rgwebhook "github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/native"
)

// TestNativePoliciesAreCurrent: the chart's native policies are what `runtimeguard generate
// native` makes of the embedded default policy's data today.
func TestNativePoliciesAreCurrent(t *testing.T) {
	set, err := (&rgwebhook.Options{}).LoadPolicies()
	if err != nil {
		t.Fatal(err)
	}
	b, err := native.Generate(set.Data, native.Options{Namespace: "RUNTIMEGUARD_RELEASE_NAMESPACE"})
	if err != nil {
		t.Fatal(err)
	}
	want, err := b.YAML()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(chartDir(t), "files", "native-policies.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := strings.Cut(string(got), "\n")
	if body != string(want) {
		t.Errorf("files/native-policies.yaml is stale: run make chart-native")
	}
}

func TestNativeModes(t *testing.T) {
	const ns = "rg-system"
	kinds := func(r *rendered) []string {
		var out []string
		for _, k := range []string{"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"} {
			for range r.customOfKind(k) {
				out = append(out, k)
			}
		}
		return out
	}
	t.Run("webhook mode installs no native policy", func(t *testing.T) {
		r := render(t, ns)
		if k := kinds(r); len(k) != 0 {
			t.Errorf("native objects %v in webhook mode", k)
		}
		if slices.Contains(r.args(t), "--native-params") {
			t.Error("--native-params in webhook mode")
		}
	})
	for _, mode := range []string{"both", "native"} {
		t.Run(mode+" mode", func(t *testing.T) {
			r := render(t, ns, "--set", "native.mode="+mode)
			if got := len(kinds(r)); got != 8 {
				t.Fatalf("%d native objects, want the 3 policies and their 5 bindings: %v", got, kinds(r))
			}
			binding := r.customNamed(t, "MutatingAdmissionPolicyBinding", native.PolicyName)
			if got := str(binding, "spec", "paramRef", "namespace"); got != ns {
				t.Errorf("paramRef namespace %q, want the release namespace %q", got, ns)
			}
			args := r.args(t)
			if !slices.Contains(args, "--native-params") || slices.Contains(args, "--failure-policy=Fail") {
				t.Errorf("args %v: want --native-params and no --failure-policy=Fail", args)
			}
			role := r.role(t, fullname+"-native-params")
			want := []string{
				"/configmaps create",
				"/configmaps get runtimeguard-native-params",
				"/configmaps update runtimeguard-native-params",
				"coordination.k8s.io/leases create",
				"coordination.k8s.io/leases get " + fullname + "-native-params",
				"coordination.k8s.io/leases update " + fullname + "-native-params",
			}
			if got := ruleTuples(role.Rules); !slices.Equal(got, want) {
				t.Errorf("Role rules %v\nwant %v", got, want)
			}
			switch mode {
			case "both":
				for _, w := range r.webhooks(t) {
					if w.failurePolicy == nil || *w.failurePolicy != "Ignore" {
						t.Errorf("%s failurePolicy %v, want Ignore: the native policies are the floor", w.name, w.failurePolicy)
					}
				}
			case "native":
				if len(r.mutating) != 0 {
					t.Error("a MutatingWebhookConfiguration in native mode")
				}
				v := one(t, "ValidatingWebhookConfiguration", r.validating)
				for _, w := range v.Webhooks {
					if w.Name != policyCheckWebhookName {
						t.Errorf("webhook %s in native mode, want only the policy ConfigMap check", w.Name)
					}
				}
				// Self-signed mode keeps the configurations' caBundle: not a mutating one here.
				selfSigned := render(t, ns, "--set", "native.mode=native", "--set", "certManager.enabled=false").args(t)
				if !slices.Contains(selfSigned, "--mutating-webhook-configuration=") {
					t.Errorf("args %v: native mode must not look after a mutating configuration", selfSigned)
				}
			}
		})
	}
	t.Run("parameterNotFoundAction reaches every binding", func(t *testing.T) {
		for _, action := range []string{"Allow", "Deny"} {
			r := render(t, ns, "--set", "native.mode=both", "--set", "native.parameterNotFoundAction="+action)
			for _, kind := range []string{"ValidatingAdmissionPolicyBinding", "MutatingAdmissionPolicyBinding"} {
				for _, b := range r.customOfKind(kind) {
					if got := str(b, "spec", "paramRef", "parameterNotFoundAction"); got != action {
						t.Errorf("%s %s: parameterNotFoundAction %q, want %q", kind, str(b, "metadata", "name"), got, action)
					}
				}
			}
		}
	})
	t.Run("custom policies are refused with native policies", func(t *testing.T) {
		_, stderr, err := helm(t, templateArgs(t, ns, "--set", "native.mode=both", "--set", "policies.layer.modules.x\\.rego=package runtimeguard")...)
		if err == nil || !strings.Contains(stderr, "generate yours with `runtimeguard generate native") {
			t.Errorf("err %v stderr %s, want the render refused with the way out", err, stderr)
		}
	})
}

func (r *rendered) role(t *testing.T, name string) *rbacv1.Role {
	t.Helper()
	for i := range r.roles {
		if r.roles[i].Name == name {
			return &r.roles[i]
		}
	}
	t.Fatalf("no Role %s rendered", name)
	return nil
}
