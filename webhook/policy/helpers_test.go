package policy

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"testing"
	"testing/fstest"
	"time"

	"github.com/runtimeguard/runtimeguard/policies"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

// policyFiles returns the default policy's files plus extra; with only set, exactly extra.
func policyFiles(tb testing.TB, withDefault bool, extra map[string]string) fstest.MapFS {
	tb.Helper()
	m := fstest.MapFS{}
	if withDefault {
		err := fs.WalkDir(policies.FS, ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fs.ReadFile(policies.FS, path)
			m[path] = &fstest.MapFile{Data: b}
			return err
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	for name, src := range extra {
		m[name] = &fstest.MapFile{Data: []byte(src)}
	}
	return m
}

func mustSet(tb testing.TB, fsys fs.FS) *Set {
	tb.Helper()
	set, err := LoadFS(fsys)
	if err != nil {
		tb.Fatal(err)
	}
	return set
}

func mustEngine(tb testing.TB, fsys fs.FS, timeout time.Duration) *Engine {
	tb.Helper()
	e, err := NewEngine(context.Background(), mustSet(tb, fsys), timeout)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func defaultEngine(tb testing.TB) *Engine {
	tb.Helper()
	return mustEngine(tb, policyFiles(tb, true, nil), 0)
}

// testView is testdata/cluster.yaml: gvisor, kata, nvidia and gvisor-nvidia, all available.
func testView(tb testing.TB) *cluster.View {
	tb.Helper()
	v, err := cluster.LoadFiles(cluster.Options{}, "testdata/cluster.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func namespace(tb testing.TB, v *cluster.View, name string) *cluster.Namespace {
	tb.Helper()
	ns, _, err := v.Namespace(context.Background(), name)
	if err != nil {
		tb.Fatal(err)
	}
	return ns
}

func mustPod(tb testing.TB, raw string) *Pod {
	tb.Helper()
	p, err := DecodePod([]byte(raw))
	if err != nil {
		tb.Fatalf("DecodePod(%s) = %v", raw, err)
	}
	return p
}

// realisticPod is testdata/pod.json: a ~7 KB Deployment pod with an Istio sidecar, compact as
// the API server sends it.
func realisticPod(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile("testdata/pod.json")
	if err != nil {
		tb.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		tb.Fatal(err)
	}
	compact, _ := json.Marshal(v)
	return compact
}

func request(tb testing.TB, v *cluster.View, ns string, pod *Pod) Request {
	tb.Helper()
	return Request{Operation: "CREATE", Namespace: namespace(tb, v, ns), Pod: pod, Cluster: v.Snapshot()}
}

func pretty(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
