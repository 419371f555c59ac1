package policy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runtimeguard/runtimeguard/policies"
)

// writeFiles writes name -> content under a new directory and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func builtin(t *testing.T) *Set {
	t.Helper()
	return mustSet(t, policies.FS)
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDataLayersMergeObjectsReplaceListsAndRemoveNulls(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.yaml": "config:\n  traits:\n    untrusted:\n      requires: {isolation: 2}\n    gpu: null\n  classes:\n    - {name: kata, isolation: 2}\n",
		// Later files win: b.yaml comes after a.yaml in the directory.
		"b.yaml": "config:\n  traits:\n    untrusted:\n      requires: {isolation: 3}\n",
	})
	file := filepath.Join(t.TempDir(), "last.json")
	if err := os.WriteFile(file, []byte(`{"config": {"team": {"name": "x"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	base := builtin(t)
	baseData := jsonOf(t, base.Data)
	set, err := Layers{DataPaths: []string{dir, file}}.Apply(base)
	if err != nil {
		t.Fatal(err)
	}
	config := set.Data["config"].(map[string]any)
	traits := config["traits"].(map[string]any)
	untrusted := traits["untrusted"].(map[string]any)
	if got := jsonOf(t, untrusted["requires"]); got != `{"isolation":3}` {
		t.Errorf("untrusted.requires = %s, want the last layer's {\"isolation\":3}", got)
	}
	if _, ok := untrusted["namespace_labels"]; !ok {
		t.Error("untrusted.namespace_labels is gone: objects must merge key by key, not replace")
	}
	if _, ok := traits["gpu"]; ok {
		t.Error("traits.gpu is still there: null must remove the key")
	}
	if _, ok := traits["financial"]; !ok {
		t.Error("traits.financial is gone: keys a layer does not name must stay")
	}
	if got := jsonOf(t, config["classes"]); got != `[{"isolation":2,"name":"kata"}]` {
		t.Errorf("classes = %s, want the layer's list alone (lists replace)", got)
	}
	if got := jsonOf(t, config["team"]); got != `{"name":"x"}` {
		t.Errorf("config.team = %s, want the JSON file's", got)
	}
	if jsonOf(t, base.Data) != baseData {
		t.Error("Apply modified the base set's data")
	}
	if err := set.CheckData(t.Context(), policies.DataSchema); err != nil {
		t.Errorf("a valid layered data document fails the schema: %v", err)
	}
	if _, err := Compile(t.Context(), set); err != nil {
		t.Fatalf("the layered set does not compile: %v", err)
	}
	if set.Hash() == base.Hash() {
		t.Error("the layered set hashes like the base")
	}
}

func TestModuleLayersAddRegoAndTheirData(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"no_latest.rego":        "package runtimeguard\n\ndeny contains msg if {\n\tdata.config.no_latest.enabled\n\tsome c in input.pod.containers\n\tendswith(c.image, \":latest\")\n\tmsg := \"pod rejected: :latest\"\n}\n",
		"no_latest_data.yaml":   "config:\n  no_latest: {enabled: true}\n",
		"no_latest_test.rego":   "package runtimeguard\n\nthis is not even rego\n",
		"x.suite.yaml":          "not: loaded",
		"fixtures.cluster.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n",
		"README.md":             "# not loaded",
	})
	set, err := Layers{ModuleDirs: []string{dir}}.Apply(builtin(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := set.Modules[filepath.Join(dir, "no_latest.rego")]; !ok {
		t.Fatalf("the layer's module is missing: %v", set.Files)
	}
	if len(set.Modules) != 3 {
		t.Errorf("modules %v: want the two built-in ones and the layer's (tests, suites, fixtures skipped)", set.Files)
	}
	enabled := set.Data["config"].(map[string]any)["no_latest"].(map[string]any)["enabled"]
	if enabled != true {
		t.Errorf("config.no_latest.enabled = %v, want the layer's data", enabled)
	}
	if _, err := Compile(t.Context(), set); err != nil {
		t.Fatal(err)
	}
}

func TestBrokenOrConflictingLayersNameTheFile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layers func(dir string) Layers
		files  map[string]string
		want   []string
	}{{
		name:   "rego syntax error",
		files:  map[string]string{"broken.rego": "package runtimeguard\n\ndeny contains msg if {\n"},
		layers: func(dir string) Layers { return Layers{ModuleDirs: []string{dir}} },
		want:   []string{"broken.rego:4: rego_parse_error"},
	}, {
		name:   "module named like a built-in one",
		files:  map[string]string{"runtimeguard.rego": "package runtimeguard\n"},
		layers: func(dir string) Layers { return Layers{ModuleDirs: []string{dir}} },
		want:   []string{"runtimeguard.rego: the policy already has a module named runtimeguard.rego", "--policies"},
	}, {
		name:   "yaml syntax error",
		files:  map[string]string{"data.yaml": "config:\n  classes: [\n"},
		layers: func(dir string) Layers { return Layers{DataPaths: []string{dir}} },
		want:   []string{"data.yaml:2: not valid YAML or JSON: did not find expected node content"},
	}, {
		name:   "data document that is a list",
		files:  map[string]string{"data.yaml": "- a\n- b\n"},
		layers: func(dir string) Layers { return Layers{DataPaths: []string{dir}} },
		want:   []string{"data.yaml: a data file holds an object at its top"},
	}, {
		name:   "rego given as data",
		files:  map[string]string{"x.rego": "package runtimeguard\n"},
		layers: func(dir string) Layers { return Layers{DataPaths: []string{dir}} },
		want:   []string{"x.rego: --policy-data takes data files", "--policy-modules"},
	}, {
		name:   "module directory without policy files",
		files:  map[string]string{"README.md": "nothing"},
		layers: func(dir string) Layers { return Layers{ModuleDirs: []string{dir}} },
		want:   []string{"--policy-modules", "holds no .rego"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, tc.files)
			_, err := tc.layers(dir).Apply(builtin(t))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if _, err := (Layers{DataPaths: []string{filepath.Join(t.TempDir(), "missing.yaml")}}).Apply(builtin(t)); err == nil || !strings.Contains(err.Error(), "--policy-data") || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("a missing data file: %v, want an error naming --policy-data and the file", err)
	}
}

func TestSchemaErrorsNameTheLayerFileAndLine(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"ok.yaml":  "config:\n  extension_key: {anything: [1, 2]}\n",
		"bad.yaml": "# a comment\nconfig:\n  classes:\n    - name: gvisor\n      isolation: high\n    - isolation: 1\n",
	})
	set, err := Layers{DataPaths: []string{dir}}.Apply(builtin(t))
	if err != nil {
		t.Fatal(err)
	}
	err = set.CheckData(t.Context(), policies.DataSchema)
	if err == nil {
		t.Fatal("no schema error")
	}
	bad := filepath.Join(dir, "bad.yaml")
	for _, w := range []string{
		bad + ":5: data.config.classes[0].isolation: Invalid type. Expected: integer, given: string",
		bad + ":6: data.config.classes[1]: name is required",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	if err := builtin(t).CheckData(t.Context(), policies.DataSchema); err != nil {
		t.Errorf("the built-in data does not match its own schema: %v", err)
	}
}
