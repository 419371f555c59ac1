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
