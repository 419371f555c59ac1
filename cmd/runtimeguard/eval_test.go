package main

import (
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"
)

const (
	exampleCluster = "../../policies/examples/cluster/cluster.yaml"
	examplePods    = "../../policies/examples/pods/pods.yaml"
)

// outcome is one JSON line, with patch kept as JSON text for exact comparison.
type outcome struct {
	Kind             string          `json:"kind"`
	Namespace        string          `json:"namespace"`
	Name             string          `json:"name"`
	Allowed          bool            `json:"allowed"`
	RuntimeClassName string          `json:"runtimeClassName"`
	Mutated          bool            `json:"mutated"`
	Patch            json.RawMessage `json:"patch"`
	Reasons          []string        `json:"reasons"`
	Warnings         []string        `json:"warnings"`
	Message          string          `json:"message"`
	Source           string          `json:"source"`
}

var requiredKeys = []string{"allowed", "kind", "message", "mutated", "name", "namespace", "patch", "reasons", "runtimeClassName", "warnings"}

// parseLines decodes -o json output, checking every line carries every documented key and no
// null where a list is promised.
func parseLines(t *testing.T, stdout string) []outcome {
	t.Helper()
	var out []outcome
	for i, line := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		var keys map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &keys); err != nil {
			t.Fatalf("line %d is not a JSON object: %v\n%s", i+1, err, line)
		}
		for _, k := range requiredKeys {
			v, ok := keys[k]
			if !ok {
				t.Errorf("line %d lacks key %q: %s", i+1, k, line)
			}
			if string(v) == "null" {
				t.Errorf("line %d: %q is null, want a value ([] for an empty list): %s", i+1, k, line)
			}
		}
		var o outcome
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		out = append(out, o)
	}
	return out
}

// want is what a test checks of one line: everything but reasons and warnings exactly, the
// message by fragment.
type want struct {
	namespace, name  string
	allowed          bool
	runtimeClassName string
	mutated          bool
	patch            string
	messageHas       string
	warningsHas      string
	source           string
}

func checkLines(t *testing.T, got []outcome, wants []want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Fatalf("%d lines, want %d: %+v", len(got), len(wants), got)
	}
	for i, w := range wants {
		g := got[i]
		if g.Kind != "Pod" || g.Namespace != w.namespace || g.Name != w.name || g.Allowed != w.allowed ||
			g.RuntimeClassName != w.runtimeClassName || g.Mutated != w.mutated || string(g.Patch) != w.patch || g.Source != w.source {
			t.Errorf("line %d:\n got kind=%s ns=%s name=%s allowed=%v class=%q mutated=%v patch=%s source=%s\nwant kind=Pod ns=%s name=%s allowed=%v class=%q mutated=%v patch=%s source=%s",
				i+1, g.Kind, g.Namespace, g.Name, g.Allowed, g.RuntimeClassName, g.Mutated, g.Patch, g.Source,
				w.namespace, w.name, w.allowed, w.runtimeClassName, w.mutated, w.patch, w.source)
		}
		switch {
		case w.messageHas == "" && g.Message != "":
			t.Errorf("line %d (%s): message %q, want none", i+1, g.Name, g.Message)
		case !strings.Contains(g.Message, w.messageHas):
			t.Errorf("line %d (%s): message %q lacks %q", i+1, g.Name, g.Message, w.messageHas)
		}
		if w.allowed && len(g.Reasons) == 0 {
			t.Errorf("line %d (%s): an allowed pod without reasons", i+1, g.Name)
		}
		switch joined := strings.Join(g.Warnings, "\n"); {
		case w.warningsHas == "" && joined != "":
			t.Errorf("line %d (%s): warnings %q, want none", i+1, g.Name, g.Warnings)
		case !strings.Contains(joined, w.warningsHas):
			t.Errorf("line %d (%s): warnings %q lack %q", i+1, g.Name, g.Warnings, w.warningsHas)
		}
	}
}

func patchOf(class string) string {
	return `[{"op":"add","path":"/spec/runtimeClassName","value":"` + class + `"}]`
}

func TestEvalJSON(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []want
	}{
		{
			name:     "the shipped examples: injections, denials, exit 1 because some are denied",
			args:     []string{"eval", "-o", "json", "--cluster", exampleCluster, examplePods},
			wantCode: 1,
			want: []want{
				{namespace: "default", name: "web", allowed: true, patch: "[]", source: examplePods + "#1"},
				{namespace: "tenant-a", name: "tenant-job", allowed: true, runtimeClassName: "gvisor", mutated: true, patch: patchOf("gvisor"), source: examplePods + "#2"},
				{namespace: "payments", name: "ledger", allowed: false, runtimeClassName: "gvisor", patch: "[]", source: examplePods + "#3",
					messageHas: `which needs isolation >= 2 (runtime class "kata" or stronger); spec.runtimeClassName is "gvisor"`},
				{namespace: "ml", name: "train", allowed: true, runtimeClassName: "nvidia", mutated: true, patch: patchOf("nvidia"), source: examplePods + "#4"},
				{namespace: "tenant-a", name: "tenant-train", allowed: true, runtimeClassName: "gvisor-nvidia", mutated: true, patch: patchOf("gvisor-nvidia"), source: examplePods + "#5"},
				{namespace: "default", name: "wasm-app", allowed: false, runtimeClassName: "wasm", patch: "[]", source: examplePods + "#6",
					messageHas: `pod rejected: RuntimeClass "wasm" not found; existing runtime classes: gvisor, gvisor-nvidia, kata, nvidia`},
			},
		},
		{
			name:     "exit 0 when every pod is allowed; a pod without namespace is decided in default",
			args:     []string{"eval", "-o", "json", "--cluster", exampleCluster, "testdata/allowed.yaml"},
			wantCode: 0,
			want: []want{
				{namespace: "default", name: "web", allowed: true, patch: "[]", source: "testdata/allowed.yaml#1"},
				{namespace: "tenant-a", name: "tenant-job-", allowed: true, runtimeClassName: "gvisor", mutated: true, patch: patchOf("gvisor"), source: "testdata/allowed.yaml#2"},
				{namespace: "default", name: "no-namespace", allowed: true, patch: "[]", source: "testdata/allowed.yaml#3"},
			},
		},
		{
			name:     "warn mode admits what enforce denies, with warnings, and exits 0",
			args:     []string{"eval", "-o", "json", "--enforcement", "warn", "--cluster", exampleCluster, "testdata/list.json"},
			wantCode: 0,
			want: []want{
				{namespace: "payments", name: "ledger", allowed: true, patch: "[]", source: "testdata/list.json#1 item 1",
					warningsHas: `runtimeguard warn mode, would deny: namespace "payments" is runtimeguard.io/tenancy=financial, which needs isolation >= 2; spec.runtimeClassName is not set; set it to "kata"`},
			},
		},
		{
			name:     "a List of pods in JSON is decided item by item",
			args:     []string{"eval", "-o", "json", "--cluster", exampleCluster, "testdata/list.json"},
			wantCode: 0,
			want: []want{
				{namespace: "payments", name: "ledger", allowed: true, runtimeClassName: "kata", mutated: true, patch: patchOf("kata"), source: "testdata/list.json#1 item 1"},
			},
		},
		{
			name:     "the pod files of several arguments are decided in order",
			args:     []string{"eval", "-o", "json", "--cluster", exampleCluster, "testdata/list.json", "testdata/allowed.yaml"},
			wantCode: 0,
			want: []want{
				{namespace: "payments", name: "ledger", allowed: true, runtimeClassName: "kata", mutated: true, patch: patchOf("kata"), source: "testdata/list.json#1 item 1"},
				{namespace: "default", name: "web", allowed: true, patch: "[]", source: "testdata/allowed.yaml#1"},
				{namespace: "tenant-a", name: "tenant-job-", allowed: true, runtimeClassName: "gvisor", mutated: true, patch: patchOf("gvisor"), source: "testdata/allowed.yaml#2"},
				{namespace: "default", name: "no-namespace", allowed: true, patch: "[]", source: "testdata/allowed.yaml#3"},
			},
		},
		{
			name:     "--webhook-namespace exempts the webhook's own namespace",
			args:     []string{"eval", "-o", "json", "--webhook-namespace", "payments", "--cluster", exampleCluster, "testdata/list.json"},
			wantCode: 0,
			want: []want{
				{namespace: "payments", name: "ledger", allowed: true, patch: "[]", source: "testdata/list.json#1 item 1"},
			},
		},
		{
			name:     "--policies replaces the embedded policy",
			args:     []string{"eval", "-o", "json", "--policies", "testdata/policies-registry", "--cluster", exampleCluster, "testdata/allowed.yaml"},
			wantCode: 1,
			want: []want{
				{namespace: "default", name: "web", allowed: false, patch: "[]", source: "testdata/allowed.yaml#1",
					messageHas: `pod rejected: container "web" runs "nginx:1.27"; images must come from registry.example.com`},
				{namespace: "tenant-a", name: "tenant-job-", allowed: true, patch: "[]", source: "testdata/allowed.yaml#2"},
				{namespace: "default", name: "no-namespace", allowed: true, patch: "[]", source: "testdata/allowed.yaml#3"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code, err := run(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code %d (err %v), want %d", code, err, tt.wantCode)
			}
			if stderr != "" {
				t.Errorf("stderr: %q, want nothing", stderr)
			}
			checkLines(t, parseLines(t, stdout), tt.want)
		})
	}
}

func TestEvalJSONKeys(t *testing.T) {
	stdout, _, _, _ := run(t, "eval", "-o", "json", "--cluster", exampleCluster, examplePods)
	line := strings.SplitN(stdout, "\n", 2)[0]
	var keys map[string]any
	if err := json.Unmarshal([]byte(line), &keys); err != nil {
		t.Fatal(err)
	}
	var got []string
	for k := range keys {
		got = append(got, k)
	}
	sort.Strings(got)
	want := append(append([]string{}, requiredKeys...), "source")
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("keys of a JSON line = %v, want %v", got, want)
	}
}

func TestEvalText(t *testing.T) {
	stdout, _, code, err := run(t, "eval", "--cluster", exampleCluster, examplePods)
	if code != 1 {
		t.Errorf("exit code %d (%v), want 1", code, err)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 7 {
		t.Fatalf("%d lines, want a header and 6 pods:\n%s", len(lines), stdout)
	}
	for i, w := range []struct{ fields []string }{
		{[]string{"NAMESPACE", "POD", "RESULT", "RUNTIMECLASS", "DETAIL"}},
		{[]string{"default", "web", "allowed", "-"}},
		{[]string{"tenant-a", "tenant-job", "injected", "gvisor"}},
		{[]string{"payments", "ledger", "DENIED", "gvisor", "pod", "rejected:"}},
		{[]string{"ml", "train", "injected", "nvidia"}},
		{[]string{"tenant-a", "tenant-train", "injected", "gvisor-nvidia"}},
		{[]string{"default", "wasm-app", "DENIED", "wasm", "pod", "rejected:", "RuntimeClass", `"wasm"`, "not", "found;"}},
	} {
		got := strings.Fields(lines[i])
		if len(got) < len(w.fields) || !reflect.DeepEqual(got[:len(w.fields)], w.fields) {
			t.Errorf("line %d = %q, want it to start with %q", i+1, lines[i], w.fields)
		}
	}
}

func TestEvalBadInput(t *testing.T) {
	tests := []struct {
		name string
		args []string
		// every fragment must appear in the error
		want []string
	}{
		{
			name: "a pod file that cannot be read",
			args: []string{"eval", "--cluster", exampleCluster, "testdata/no-such-file.yaml"},
			want: []string{"testdata/no-such-file.yaml: no such file or directory"},
		},
		{
			name: "a directory without manifests suggests -R",
			args: []string{"eval", "--cluster", exampleCluster, "testdata/manifests/nested"},
			want: []string{"testdata/manifests/nested: a directory without .json, .yaml or .yml files (give -R to read its subdirectories too)"},
		},
		{
			name: "an empty file holds no objects",
			args: []string{"eval", "--cluster", exampleCluster, "testdata/manifests/empty.yaml"},
			want: []string{"no objects in testdata/manifests/empty.yaml"},
		},
		{
			name: "broken YAML names file and document",
			args: []string{"eval", "--cluster", exampleCluster, "testdata/broken.yaml"},
			want: []string{"testdata/broken.yaml#1: not valid YAML or JSON"},
		},
		{
			name: "a cluster file holding a Pod",
			args: []string{"eval", "--cluster", "testdata/cluster-with-pod.yaml", examplePods},
			want: []string{"testdata/cluster-with-pod.yaml#2: a cluster file holds Namespaces, Nodes, RuntimeClasses, ResourceClaimTemplates and ResourceClaims"},
		},
		{
			name: "a cluster file that does not exist",
			args: []string{"eval", "--cluster", "testdata/no-such-cluster.yaml", examplePods},
			want: []string{"open testdata/no-such-cluster.yaml: no such file or directory"},
		},
		{
			name: "a broken cluster file",
			args: []string{"eval", "--cluster", "testdata/broken.yaml", examplePods},
			want: []string{"testdata/broken.yaml#1: not valid YAML or JSON"},
		},
		{
			name: "an -o value that is not table, json or yaml",
			args: []string{"eval", "-o", "xml", "--cluster", exampleCluster, examplePods},
			want: []string{`invalid argument "xml" for "-o, --output" flag: want table, json or yaml`},
		},
		{
			name: "neither --cluster nor --empty-cluster: no silent empty cluster",
			args: []string{"eval", examplePods},
			want: []string{"give --cluster FILE...", "or --empty-cluster to decide against a cluster without any"},
		},
		{
			name: "both --cluster and --empty-cluster",
			args: []string{"eval", "--empty-cluster", "--cluster", exampleCluster, examplePods},
			want: []string{"give --cluster FILE... or --empty-cluster, not both"},
		},
		{
			name: "an --enforcement value that is neither enforce nor warn",
			args: []string{"eval", "--enforcement", "audit", "--cluster", exampleCluster, examplePods},
			want: []string{`--enforcement "audit": want enforce or warn`},
		},
		{
			name: "a --policies directory that does not exist",
			args: []string{"eval", "--policies", "testdata/no-such-policies", "--cluster", exampleCluster, examplePods},
			want: []string{"testdata/no-such-policies"},
		},
		{
			name: "a --policies directory with broken Rego names file and row",
			args: []string{"eval", "--policies", "testdata/policies-broken", "--cluster", exampleCluster, examplePods},
			want: []string{"policy.rego:7:", "rego_parse_error"},
		},
		{
			name: "a --policies path that is a file",
			args: []string{"eval", "--policies", "testdata/node.yaml", "--cluster", exampleCluster, examplePods},
			want: []string{"testdata/node.yaml is not a directory"},
		},
		{
			name: "no pod file at all",
			args: []string{"eval", "--cluster", exampleCluster},
			want: []string{"requires at least 1 arg"},
		},
		{
			name: "an unknown flag",
			args: []string{"eval", "--clusters", exampleCluster, examplePods},
			want: []string{"unknown flag: --clusters\nDid you mean --cluster?\nSee 'runtimeguard eval --help' for usage."},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, _, code, err := run(t, tt.args...)
			if code != 2 {
				t.Errorf("exit code %d (err %v), want 2", code, err)
			}
			var exit exitCode
			if errors.As(err, &exit) {
				t.Errorf("bad input returned exitCode(%d), want a plain error main prints", exit)
			}
			if stdout != "" {
				t.Errorf("stdout %q on bad input, want nothing", stdout)
			}
			if err == nil {
				return
			}
			for _, frag := range tt.want {
				if !strings.Contains(err.Error(), frag) {
					t.Errorf("error %q lacks %q", err, frag)
				}
			}
		})
	}
}
