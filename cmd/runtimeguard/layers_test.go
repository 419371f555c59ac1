package main

import (
	"strings"
	"testing"
)

// serve, eval and explain share the layering flags (webhook.Options): eval and explain show
// that the layers reach the decision, and that a broken layer is an error naming the file.
func TestPolicyLayerFlags(t *testing.T) {
	tenantJob := func(t *testing.T, args ...string) (int, string, string) {
		t.Helper()
		return runCLI(t, append([]string{"eval", "-o", "json", "--cluster", exampleCluster}, append(args, examplePods)...)...)
	}
	_, stdout, stderr := tenantJob(t, "--policy-data", "testdata/layers/isolation2.yaml")
	if !strings.Contains(stdout, `"name":"tenant-job","allowed":true,"runtimeClassName":"kata"`) {
		t.Errorf("eval --policy-data isolation2.yaml: tenant-job does not get kata:\n%s%s", stdout, stderr)
	}

	code, stdout, stderr := runCLI(t, "explain", "--cluster", exampleCluster, "--policy-modules", "testdata/layers/no-latest",
		"--policy-data", "testdata/layers/isolation2.yaml", "testdata/layers/latest-pod.yaml")
	if code != 1 || !strings.Contains(stdout, "runs a :latest image") || !strings.Contains(stdout, "no_latest.rego") || !strings.Contains(stdout, "isolation2.yaml") {
		t.Errorf("explain with both layers: exit %d, want 1 with the module's denial and both layer files listed:\n%s%s", code, stdout, stderr)
	}

	code, _, stderr = tenantJob(t, "--policy-data", "testdata/layers/bad-schema.yaml")
	if code != 2 || !strings.Contains(stderr, "testdata/layers/bad-schema.yaml:4: data.config.classes[0].isolation") {
		t.Errorf("a layer breaking the schema: exit %d, stderr %q; want 2 and file:line", code, stderr)
	}
	code, _, stderr = tenantJob(t, "--policy-modules", "testdata/policies-broken")
	if code != 2 || !strings.Contains(stderr, "testdata/policies-broken/policy.rego:") {
		t.Errorf("a broken module layer: exit %d, stderr %q; want 2 and file:line", code, stderr)
	}
}

// Every example of policies/examples works as a layer over the built-in policy: eval decides
// its Pods with --policy-modules exactly as with a copy of the default policy plus the example
// (--policies policies --policies EXAMPLE).
func TestExamplesWorkAsPolicyModules(t *testing.T) {
	for _, ex := range []string{"team-overrides", "registry-allowlist", "deny-privileged-sandboxed", "warn-no-class"} {
		t.Run(ex, func(t *testing.T) {
			args := []string{"eval", "-o", "json", "--cluster", exampleCluster}
			if ex == "team-overrides" {
				args = append(args, "--cluster", "../../policies/examples/cluster/team-overrides/namespaces.yaml")
			}
			pods := "../../policies/examples/pods/" + ex + "/pods.yaml"
			_, copied, stderr1 := runCLI(t, append(args, "--policies", "../../policies", "--policies", "../../policies/examples/"+ex, pods)...)
			_, layered, stderr2 := runCLI(t, append(args, "--policy-modules", "../../policies/examples/"+ex, pods)...)
			if copied == "" || copied != layered {
				t.Errorf("decisions differ:\n--policies copy:\n%s%s\n--policy-modules:\n%s%s", copied, stderr1, layered, stderr2)
			}
		})
	}
}
