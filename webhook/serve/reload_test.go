package serve

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/runtimeguard/runtimeguard/version"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

// startedWatcher serves o's policy through a gate, as serve starts, and returns the watcher of
// its paths (as Start leaves it, without running its loop) and its metrics.
func startedWatcher(t *testing.T, o *Options) (*policyWatcher, *reloadMetrics) {
	t.Helper()
	set, err := o.LoadPolicies()
	if err != nil {
		t.Fatal(err)
	}
	gate := &policyGate{opts: o, view: syncedView()}
	if err := gate.apply(t.Context(), set); err != nil {
		t.Fatal(err)
	}
	m := newReloadMetrics(prometheus.NewPedanticRegistry())
	m.observePolicy(gate.Engine())
	w := &policyWatcher{paths: o.PolicyPaths(), load: o.LoadPolicies, gate: gate, log: logr.Discard(), metrics: m}
	w.lastDigest, _ = digestDirs(w.paths)
	return w, m
}

// syncedView is an empty cluster view, ready to decide against.
func syncedView() *cluster.View {
	v := cluster.NewView(cluster.Options{})
	v.MarkSynced()
	return v
}

// writePolicy writes the shipped Rego and data into dir, data edited by edit.
func writePolicy(t *testing.T, dir string, edit func(string) string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"runtimeguard.rego", "data.yaml"} {
		b, err := os.ReadFile(filepath.Join("../../policies", name))
		if err != nil {
			t.Fatal(err)
		}
		content := string(b)
		if name == "data.yaml" {
			content = edit(content)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReloadCountsEachFailureOnceAndLabelsTheServingPolicy(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "policies")
	writePolicy(t, dir, func(s string) string { return s })
	o := DefaultOptions()
	o.PolicyDirs = []string{dir}
	w, m := startedWatcher(t, &o)
	gate := w.gate
	engine := gate.Engine()

	check := func(step string, wantErrors, wantStale float64, wantSeries string) {
		t.Helper()
		if got := testutil.ToFloat64(m.reloads.WithLabelValues("error")); got != wantErrors {
			t.Errorf(`%s: runtimeguard_policy_reloads_total{result="error"} %v, want %v`, step, got, wantErrors)
		}
		if got := testutil.ToFloat64(m.policyStale); got != wantStale {
			t.Errorf("%s: runtimeguard_policy_stale %v, want %v", step, got, wantStale)
		}
		want := "# HELP runtimeguard_policy_generation Policy sets compiled by this replica (1 = the one it started with); hash is the serving set's content hash, the same on every replica that runs the same policy.\n# TYPE runtimeguard_policy_generation gauge\n" + wantSeries + "\n"
		if err := testutil.CollectAndCompare(m.generation, strings.NewReader(want)); err != nil {
			t.Errorf("%s: %v", step, err)
		}
	}
	_, firstHash := engine.Generation()
	first := `runtimeguard_policy_generation{hash="` + firstHash + `"} 1`
	check("start", 0, 0, first)

	if err := os.WriteFile(filepath.Join(dir, "broken.rego"), []byte("package runtimeguard\nbroken :=\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		w.reload(t.Context())
	}
	check("a broken file, seen by three resyncs", 1, 1, first)
	if gate.check(nil) != nil {
		t.Error("a replica serving a good policy turned NotReady on a broken reload")
	}
	if generation, hash := engine.Generation(); generation != 1 || "runtimeguard_policy_generation{hash=\""+hash+"\"} 1" != first {
		t.Errorf("the broken set replaced the last good one: generation %d hash %s", generation, hash)
	}

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		w.reload(t.Context())
	}
	check("the directory gone, seen by three resyncs", 2, 1, first)

	writePolicy(t, dir, func(s string) string { return strings.Replace(s, "gvisor", "gvisor2", 1) })
	w.reload(t.Context())
	generation, hash := engine.Generation()
	if generation != 2 || hash == firstHash {
		t.Fatalf("after a good reload: generation %d hash %s, want 2 and a hash other than %s", generation, hash, firstHash)
	}
	check("a good set again", 2, 0, `runtimeguard_policy_generation{hash="`+hash+`"} 2`)
}

func TestBuildInfo(t *testing.T) {
	want := `# HELP runtimeguard_build_info Constant 1, labelled with the version, git revision and Go version of the running binary.
# TYPE runtimeguard_build_info gauge
runtimeguard_build_info{goversion="go1.99.1",revision="0123abc",version="v1.2.3"} 1
`
	c := newBuildInfo(version.Info{Version: "v1.2.3", Commit: "0123abc", GoVersion: "go1.99.1", OPAVersion: "1.0.0"})
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// A --policy-data file is watched like a policy directory: a change of it is reloaded, and a
// broken version keeps the last good set serving.
func TestReloadOfADataLayerFile(t *testing.T) {
	data := filepath.Join(t.TempDir(), "team.yaml")
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(data, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("config:\n  traits:\n    untrusted:\n      requires: {isolation: 1}\n")
	o := DefaultOptions()
	o.PolicyDataPaths = []string{data}
	w, m := startedWatcher(t, &o)
	gate := w.gate
	if dirs := watchDirs(w.paths); len(dirs) != 1 || dirs[0] != filepath.Dir(data) {
		t.Errorf("watched %v, want the data file's directory", dirs)
	}
	isolation := func() string {
		traits := gate.Engine().Data()["config"].(map[string]any)["traits"].(map[string]any)
		return fmt.Sprint(traits["untrusted"].(map[string]any)["requires"].(map[string]any)["isolation"])
	}

	write("config:\n  traits:\n    untrusted:\n      requires: {isolation: 2}\n")
	w.reload(t.Context())
	if generation, _ := gate.Engine().Generation(); generation != 2 || isolation() != "2" {
		t.Fatalf("after changing the data file: generation %d, isolation %s; want 2 and 2", generation, isolation())
	}
	write("config:\n  traits:\n    untrusted:\n      requires: {isolation: two}\n")
	w.reload(t.Context())
	if generation, _ := gate.Engine().Generation(); generation != 2 || isolation() != "2" || testutil.ToFloat64(m.policyStale) != 1 {
		t.Fatalf("after breaking the data file: generation %d, isolation %s, stale %v; want the last good set (2, 2) and stale 1",
			generation, isolation(), testutil.ToFloat64(m.policyStale))
	}
}
