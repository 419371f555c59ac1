package suite

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSuiteParserErrors checks that every kind of mistake in a suite names file:line.
func TestSuiteParserErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "two-pods.yaml"), []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ns.yaml"), []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const pod = "    pod: {spec: {containers: [{name: a, image: b}]}}\n"
	tests := []struct {
		name  string
		suite string
		want  string // after "<file>:"
	}{
		{"empty file", "", "1: the suite is empty"},
		{"not a mapping", "- a\n- b\n", "1: a suite is a mapping with cases (and policies, cluster, enforcement), not a list"},
		{"yaml syntax", "cases:\n  - name: a\n    pod: {\n", "3: not valid YAML: did not find expected node content"},
		{"unknown top-level key", "cases: []\nclusters: [x]\n", `2: unknown key "clusters" in the suite (want policies, defaultPolicy, policyModules, policyData, cluster, enforcement, cases)`},
		{"repeated key", "cases: []\ncases: []\n", `2: key "cases" appears twice in the suite`},
		{"no cases", "cluster: []\n", "1: the suite has no cases"},
		{"cases not a list", "cases: {a: b}\n", "1: cases must be a list, not a mapping"},
		{"unknown key next to policies", "policies: [.]\npolicies2: x\n", `2: unknown key "policies2"`},
		{"policy directory does not exist", "policies:\n  - .\n  - nowhere\ncases: []\n", "3: policies: " + filepath.Join(dir, "nowhere") + " does not exist (paths are relative to the suite file)"},
		{"cluster entry is a directory", "cluster: [.]\ncases: []\n", "1: cluster: " + dir + " is a directory, want a file"},
		{"cluster entries are strings", "cluster: [1]\ncases: []\n", `1: cluster entries must be a string, not int "1"`},
		{"defaultPolicy not a boolean", "defaultPolicy: yes\ncases: []\n", `1: defaultPolicy must be true or false, not str "yes"`},
		{"bad suite enforcement", "enforcement: audit\ncases: []\n", `1: enforcement "audit": want enforce or warn`},
		{"unknown case key", "cases:\n  - name: a\n" + pod + "    expct: {allowed: true}\n", `4: unknown key "expct" in case 1 (want name, pod, podFile, namespaceLabels, namespaceAnnotations, enforcement, expect)`},
		{"case without name", "cases:\n  - expect: {allowed: true}\n" + pod, "2: case 1 has no name"},
		{"empty name", "cases:\n  - name: ' '\n" + pod + "    expect: {allowed: true}\n", "2: name must not be empty"},
		{"duplicate name", "cases:\n  - name: a\n" + pod + "    expect: {allowed: true}\n  - name: a\n" + pod + "    expect: {allowed: true}\n", `5: case name "a" is used twice`},
		{"no pod", "cases:\n  - name: a\n    expect: {allowed: true}\n", `2: case "a" has no pod: give pod (inline) or podFile`},
		{"pod and podFile", "cases:\n  - name: a\n" + pod + "    podFile: x.yaml\n    expect: {allowed: true}\n", `2: case "a" has both pod and podFile: give one`},
		{"no expect", "cases:\n  - name: a\n" + pod, `2: case "a" has no expect: say what the outcome must be`},
		{"empty expect", "cases:\n  - name: a\n" + pod + "    expect: {}\n", "4: expect is empty: give at least one of allowed, runtimeClassName, mutated, messageContains, warningsContain, noWarnings, reasonsContain"},
		{"unknown expect key", "cases:\n  - name: a\n" + pod + "    expect:\n      allowed: true\n      class: gvisor\n", `6: unknown key "class" in expect`},
		{"expect.noWarnings not a boolean", "cases:\n  - name: a\n" + pod + "    expect:\n      noWarnings: none\n", `5: expect.noWarnings must be true or false, not str "none"`},
		{"expect.mutated not a boolean", "cases:\n  - name: a\n" + pod + "    expect:\n      mutated: 1\n", `5: expect.mutated must be true or false, not int "1"`},
		{"expect.runtimeClassName not a string", "cases:\n  - name: a\n" + pod + "    expect:\n      runtimeClassName: [gvisor]\n", "5: expect.runtimeClassName must be a string, not a list"},
		{"warningsContain not a list", "cases:\n  - name: a\n" + pod + "    expect:\n      warningsContain: oops\n", `5: expect.warningsContain must be a list of strings, not str "oops"`},
		{"warningsContain entry is a mapping", "cases:\n  - name: a\n" + pod + "    expect:\n      warningsContain:\n        - ok\n        - a: b\n", "7: expect.warningsContain entries must be a string, not a mapping"},
		{"case enforcement", "cases:\n  - name: a\n" + pod + "    enforcement: dry-run\n    expect: {allowed: true}\n", `4: enforcement "dry-run": want enforce or warn`},
		{"namespaceLabels not a mapping", "cases:\n  - name: a\n" + pod + "    namespaceLabels: [a]\n    expect: {allowed: true}\n", "4: namespaceLabels must be a mapping of strings, not a list"},
		{"namespaceLabels value", "cases:\n  - name: a\n" + pod + "    namespaceLabels:\n      tier: {a: b}\n    expect: {allowed: true}\n", "5: namespaceLabels[tier] must be a string, not a mapping"},
		{"pod not a mapping", "cases:\n  - name: a\n    pod: web\n    expect: {allowed: true}\n", `3: pod must be a mapping (a Pod object), not str "web"`},
		{"pod of another kind", "cases:\n  - name: a\n    pod: {kind: Node}\n    expect: {allowed: true}\n", "3: pod must be a v1 Pod, not v1 Node"},
		{"misspelt pod field at its line", "cases:\n  - name: a\n    pod:\n      metadata: {name: a}\n      spec:\n        containers:\n          - name: a\n            image: b\n            resource: {}\n    expect: {allowed: true}\n", `9: pod: unknown field "spec.containers[0].resource"`},
		{"pod field of the wrong type", "cases:\n  - name: a\n    pod: {spec: {containers: {name: a}}}\n    expect: {allowed: true}\n", "3: pod: json: cannot unmarshal object into Go struct field PodSpec.spec.containers of type []v1.Container"},
		{"podFile missing", "cases:\n  - name: a\n    podFile: nowhere.yaml\n    expect: {allowed: true}\n", "3: podFile: open " + filepath.Join(dir, "nowhere.yaml") + ": no such file or directory"},
		{"podFile with two pods", "cases:\n  - name: a\n    podFile: two-pods.yaml\n    expect: {allowed: true}\n", "3: podFile: " + filepath.Join(dir, "two-pods.yaml") + " holds 2 objects, want exactly one Pod"},
		{"podFile not a pod", "cases:\n  - name: a\n    podFile: ns.yaml\n    expect: {allowed: true}\n", "3: podFile: " + filepath.Join(dir, "ns.yaml") + "#1: want a Pod, got Namespace"},
		{"two documents", "cases: []\n---\ncases: []\n", "3: a suite file holds one YAML document"},
		{"merge keys", "cases:\n  - &c\n    name: a\n" + pod + "    expect: {allowed: true}\n  - <<: *c\n    name: b\n", "6: merge keys (<<) are not supported in case 2"},
		{"aliases are followed", "cases:\n  - name: a\n    pod: &p {spec: {containers: [{name: a, image: b}]}}\n    expect: &e {allowed: true}\n  - name: a\n    pod: *p\n    expect: *e\n", `5: case name "a" is used twice`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".suite.yaml")
			if err := os.WriteFile(path, []byte(tc.suite), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := parseSuite(path)
			if err == nil {
				t.Fatalf("parsed without error, want %s:%s", path, tc.want)
			}
			want := path + ":" + tc.want
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error\n  %s\nwant it to start with\n  %s", err, want)
			}
		})
	}
}

// TestSuiteLoadErrors covers what only shows when a suite is run: its policies and cluster files.
func TestSuiteLoadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("broken-policy/p.rego", "package runtimeguard\n\ndecision := {\n")
	write("conflicting-data/d.yaml", "config:\n  classes: []\n")
	write("conflicting-data/p.rego", "package runtimeguard\n")
	write("pods.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n")
	const cases = "cases:\n  - name: a\n    pod: {spec: {containers: [{name: a, image: b}]}}\n    expect: {allowed: true}\n"
	tests := []struct {
		name, suite, want string
	}{
		{"policy that does not compile", "policies: [broken-policy]\n" + cases, `1: policies: policy directory`},
		{"data defined twice with the default policy", "defaultPolicy: true\npolicies:\n  - conflicting-data\n" + cases, "3: policies: adding them to the default policy (defaultPolicy: true): data.config.classes is defined by both policy sets"},
		{"a cluster file holding a Pod", "cluster:\n  - pods.yaml\n" + cases, "2: cluster: " + filepath.Join(dir, "pods.yaml") + "#1: a cluster file holds Namespaces, Nodes, RuntimeClasses, ResourceClaimTemplates and ResourceClaims, not *v1.Pod"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".suite.yaml")
			write(filepath.Base(path), tc.suite)
			var out bytes.Buffer
			r := Run(t.Context(), &out, []string{path}, nil)
			stdout := out.String()
			if r.Broken != 1 {
				t.Errorf("%d suites broken, want 1\n%s", r.Broken, stdout)
			}
			if want := "ERROR " + path + ":" + tc.want; !strings.Contains(stdout, want) {
				t.Errorf("output\n%s\nlacks\n%s", stdout, want)
			}
		})
	}
}
