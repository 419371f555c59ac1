package charts

import (
	"slices"
	"strings"
	"testing"
)

// The background audit's values: off by default (no Pod access), and when on, the flags, the
// narrowest RBAC that lets it list, elect itself and write its reports, and the CRD on request.

func TestAuditIsOffByDefaultWithoutItsRBAC(t *testing.T) {
	r := render(t, defaultNS)
	for _, a := range r.args(t) {
		if strings.HasPrefix(a, "--audit-") {
			t.Errorf("serve gets %s by default, want no audit flag (serve's --audit-interval defaults to 0: off)", a)
		}
	}
	for _, cr := range r.clusterRoles {
		if cr.Name == fullname+"-audit" {
			t.Errorf("ClusterRole %s rendered with audit.enabled=false", cr.Name)
		}
	}
	if len(r.roles) != 0 || len(r.customOfKind("CustomResourceDefinition")) != 0 {
		t.Errorf("roles %d, CRDs %d by default, want none", len(r.roles), len(r.customOfKind("CustomResourceDefinition")))
	}
}

func TestAuditEnabledGetsItsFlagsListRBACLeaseRoleAndReports(t *testing.T) {
	r := render(t, defaultNS, "--set", "audit.enabled=true", "--set", "audit.interval=5m")
	checkInvariants(t, r)
	args := r.args(t)
	for flag, want := range map[string]string{"--audit-interval": "5m", "--audit-policy-reports": "true", "--audit-lease-name": fullname + "-audit"} {
		if v, ok := argValue(args, flag); !ok || v != want {
			t.Errorf("%s=%q, want %q (args %v)", flag, v, want, args)
		}
	}
	want := []string{
		"/pods list", "/replicationcontrollers list",
		"apps/daemonsets list", "apps/deployments list", "apps/replicasets list", "apps/statefulsets list",
		"batch/cronjobs list", "batch/jobs list",
		"wgpolicyk8s.io/policyreports create", "wgpolicyk8s.io/policyreports delete", "wgpolicyk8s.io/policyreports list", "wgpolicyk8s.io/policyreports update",
	}
	if got := ruleTuples(r.clusterRole(t, fullname+"-audit").Rules); !slices.Equal(got, want) {
		t.Errorf("audit ClusterRole rules = %v\nwant %v", got, want)
	}
	role := one(t, "Role", r.roles)
	wantLease := []string{"coordination.k8s.io/leases create", "coordination.k8s.io/leases get " + fullname + "-audit", "coordination.k8s.io/leases update " + fullname + "-audit"}
	if got := ruleTuples(role.Rules); role.Namespace != defaultNS || !slices.Equal(got, wantLease) {
		t.Errorf("Role %s/%s rules = %v\nwant %v in the release namespace", role.Namespace, role.Name, got, wantLease)
	}
	if b := one(t, "RoleBinding", r.roleBindings); b.RoleRef.Name != role.Name {
		t.Errorf("RoleBinding binds %s, want %s", b.RoleRef.Name, role.Name)
	}
	if len(r.customOfKind("CustomResourceDefinition")) != 0 {
		t.Error("the PolicyReport CRD is rendered without audit.policyReports.installCRD")
	}

	noReports := render(t, defaultNS, "--set", "audit.enabled=true", "--set", "audit.policyReports.enabled=false")
	if v, _ := argValue(noReports.args(t), "--audit-policy-reports"); v != "false" {
		t.Errorf("--audit-policy-reports=%q with policyReports.enabled=false", v)
	}
	for _, tuple := range ruleTuples(noReports.clusterRole(t, fullname+"-audit").Rules) {
		if strings.HasPrefix(tuple, "wgpolicyk8s.io/") {
			t.Errorf("policyreports access without policyReports.enabled: %s", tuple)
		}
	}
}

func TestPolicyReportCRDIsInstalledOnRequestAndKeptOnUninstall(t *testing.T) {
	r := render(t, defaultNS, "--set", "audit.policyReports.installCRD=true")
	crd := r.customNamed(t, "CustomResourceDefinition", "policyreports.wgpolicyk8s.io")
	if got := str(crd, "metadata", "annotations", "helm.sh/resource-policy"); got != "keep" {
		t.Errorf("helm.sh/resource-policy = %q, want keep (uninstall must not delete every tool's reports)", got)
	}
	versions, _ := get(crd, "spec", "versions").([]any)
	if len(versions) != 1 || str(versions[0].(map[string]any), "name") != "v1alpha2" || str(crd, "spec", "scope") != "Namespaced" {
		t.Errorf("versions %v, scope %q: want v1alpha2 only, Namespaced", versions, str(crd, "spec", "scope"))
	}
}
