package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"
)

// The kubectl-shaped conventions every command follows (issue 13): "-" for standard input,
// -o table|json|yaml, the kubeconfig found as kubectl finds it, deprecated flags that keep
// working, flag errors with a hint.

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStdin(t *testing.T) {
	pods, cluster := readFile(t, "testdata/list.json"), readFile(t, exampleCluster)
	t.Run("a pod file - is read from standard input", func(t *testing.T) {
		stdout, stderr, code, err := runIn(t, pods, "eval", "-o", "json", "--cluster", exampleCluster, "-")
		if code != 0 || stderr != "" {
			t.Fatalf("exit %d (%v), stderr %q", code, err, stderr)
		}
		checkLines(t, parseLines(t, stdout), []want{
			{namespace: "payments", name: "ledger", allowed: true, runtimeClassName: "kata", mutated: true, patch: patchOf("kata"), source: "stdin#1 item 1"},
		})
	})
	t.Run("--cluster - is read from standard input", func(t *testing.T) {
		stdout, _, code, err := runIn(t, cluster, "eval", "-o", "json", "--cluster", "-", "testdata/list.json")
		if code != 0 {
			t.Fatalf("exit %d (%v)", code, err)
		}
		checkLines(t, parseLines(t, stdout), []want{
			{namespace: "payments", name: "ledger", allowed: true, runtimeClassName: "kata", mutated: true, patch: patchOf("kata"), source: "testdata/list.json#1 item 1"},
		})
	})
	t.Run("explain reads its POD_FILE - from standard input", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, "explain", "--cluster", exampleCluster, "-")
		if code != 2 || !strings.Contains(stderr, "stdin holds 0 Pods: pick one") {
			t.Errorf("explain with empty stdin: exit %d, stderr %q; want 2 and stdin holds 0 Pods\n%s", code, stderr, stdout)
		}
		stdout, _, code, err := runIn(t, pods, "explain", "--cluster", exampleCluster, "-o", "json", "-")
		if code != 0 || !strings.Contains(stdout, `"name": "ledger"`) {
			t.Errorf("explain -: exit %d (%v), want 0 and the ledger pod explained\n%s", code, err, stdout)
		}
	})
	t.Run("standard input given twice is an error, not an empty second file", func(t *testing.T) {
		_, _, code, err := runIn(t, pods, "eval", "--cluster", "-", "-")
		if code != 2 || err == nil || !strings.Contains(err.Error(), `"-" (standard input) given twice`) {
			t.Errorf("exit %d, error %v; want 2 and given twice", code, err)
		}
	})
}

func TestOutputFormats(t *testing.T) {
	t.Run("eval -o yaml holds the same objects as -o json, one document each", func(t *testing.T) {
		args := []string{"eval", "--cluster", exampleCluster, examplePods}
		jsonOut, _, _, _ := run(t, append(args, "-o", "json")...)
		yamlOut, _, code, err := run(t, append(args, "-o", "yaml")...)
		if code != 1 {
			t.Fatalf("exit %d (%v), want 1 (some pods are denied)", code, err)
		}
		docs := strings.Split(strings.TrimPrefix(yamlOut, "---\n"), "\n---\n")
		lines := strings.Split(strings.TrimSuffix(jsonOut, "\n"), "\n")
		if len(docs) != 6 || len(lines) != 6 {
			t.Fatalf("%d YAML documents and %d JSON lines, want 6 of each\n%s", len(docs), len(lines), yamlOut)
		}
		for i := range docs {
			var fromYAML, fromJSON map[string]any
			if err := yaml.Unmarshal([]byte(docs[i]), &fromYAML); err != nil {
				t.Fatalf("document %d: %v", i+1, err)
			}
			if err := json.Unmarshal([]byte(lines[i]), &fromJSON); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fromYAML, fromJSON) {
				t.Errorf("document %d differs from JSON line %d:\n%v\n%v", i+1, i+1, fromYAML, fromJSON)
			}
		}
	})
	for _, cmd := range [][]string{
		{"explain", "--cluster", exampleCluster, "--pod", "tenant-a/tenant-job", examplePods},
		{"inventory", "--cluster", "testdata/cluster/drift.yaml"},
	} {
		t.Run(cmd[0]+" -o yaml is -o json in YAML", func(t *testing.T) {
			jsonOut, _, _, _ := run(t, append(cmd, "-o", "json")...)
			yamlOut, _, _, err := run(t, append(cmd, "-o", "yaml")...)
			var fromYAML, fromJSON map[string]any
			if err := yaml.Unmarshal([]byte(yamlOut), &fromYAML); err != nil {
				t.Fatalf("%v\n%s", err, yamlOut)
			}
			if err := json.Unmarshal([]byte(jsonOut), &fromJSON); err != nil {
				t.Fatalf("%v\n%s", err, jsonOut)
			}
			if len(fromJSON) == 0 || !reflect.DeepEqual(fromYAML, fromJSON) {
				t.Errorf("-o yaml (err %v) differs from -o json:\n%s\n%s", err, yamlOut, jsonOut)
			}
		})
	}
	t.Run("-o text, the older name, is the table", func(t *testing.T) {
		table, _, _, _ := run(t, "eval", "--cluster", exampleCluster, examplePods)
		text, _, _, _ := run(t, "eval", "-o", "text", "--cluster", exampleCluster, examplePods)
		if !strings.HasPrefix(table, "NAMESPACE") || text != table {
			t.Errorf("-o text:\n%s\nwant the table:\n%s", text, table)
		}
	})
}

func TestEmptyCluster(t *testing.T) {
	// What eval used to do silently without --cluster: no Namespace labels, no classes.
	stdout, _, code, err := run(t, "eval", "-o", "json", "--empty-cluster", examplePods)
	if code != 1 {
		t.Fatalf("exit %d (%v), want 1", code, err)
	}
	got := parseLines(t, stdout)
	if len(got) != 6 {
		t.Fatalf("%d outcomes, want 6", len(got))
	}
	if g := got[1]; g.Name != "tenant-job" || !g.Allowed || g.Mutated {
		t.Errorf("tenant-job: %+v, want allowed without a class (its namespace's tenancy label is unknown)", g)
	}
	if g := got[2]; g.Name != "ledger" || g.Allowed || !strings.Contains(g.Message, `RuntimeClass "gvisor" not found; existing runtime classes: none`) {
		t.Errorf("ledger: %+v, want denied: no runtime class exists", g)
	}
}

func TestDeprecatedNamespaceFlag(t *testing.T) {
	stdout, stderr, code, err := run(t, "eval", "-o", "json", "--namespace", "payments", "--cluster", exampleCluster, "testdata/list.json")
	if code != 0 {
		t.Fatalf("exit %d (%v)", code, err)
	}
	// Exempt, as with --webhook-namespace: no class injected.
	checkLines(t, parseLines(t, stdout), []want{
		{namespace: "payments", name: "ledger", allowed: true, patch: "[]", source: "testdata/list.json#1 item 1"},
	})
	if !strings.Contains(stderr, "--namespace has been deprecated, use --webhook-namespace") {
		t.Errorf("stderr %q, want the deprecation notice (on stderr, away from -o json)", stderr)
	}
}

func TestFlagErrorsGiveAHint(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"inventory", "--kubeconfg", "x"}, []string{"unknown flag: --kubeconfg", "Did you mean --kubeconfig?", "See 'runtimeguard inventory --help' for usage."}},
		{[]string{"serve", "--zap-log-level", "loud"}, []string{`invalid argument "loud" for "--zap-log-level" flag`, "See 'runtimeguard serve --help' for usage."}},
		{[]string{"serve", "--log-level", "loud"}, []string{`invalid argument "loud" for "--log-level" flag: want debug, info, warn or error`}},
		{[]string{"version", "--bogus"}, []string{"unknown flag: --bogus\nSee 'runtimeguard version --help' for usage."}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, stderr := runCLI(t, tt.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			wantInOrder(t, stderr, tt.want)
		})
	}
}

// apiServer is a fake API server that records the bearer tokens it was called with; it
// answers every request with 503, which is enough to see which cluster a command dialled.
type apiServer struct {
	*httptest.Server
	mu     sync.Mutex
	tokens []string
}

func newAPIServer(t *testing.T) *apiServer {
	s := &apiServer{}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.tokens = append(s.tokens, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		s.mu.Unlock()
		http.Error(w, "fake API server", http.StatusServiceUnavailable)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *apiServer) calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tokens...)
}

// writeKubeconfig writes a kubeconfig with contexts a (current) and b, each with its server
// and its user's token.
func writeKubeconfig(t *testing.T, a, b *apiServer) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := `apiVersion: v1
kind: Config
current-context: a
clusters:
- {name: a, cluster: {server: "` + a.URL + `", insecure-skip-tls-verify: true}}
- {name: b, cluster: {server: "` + b.URL + `", insecure-skip-tls-verify: true}}
users:
- {name: a, user: {token: token-a}}
- {name: b, user: {token: token-b}}
contexts:
- {name: a, context: {cluster: a, user: a}}
- {name: b, context: {cluster: b, user: b}}
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestKubeconfig(t *testing.T) {
	noKubeconfig(t)
	a, b := newAPIServer(t), newAPIServer(t)
	path := writeKubeconfig(t, a, b)
	tests := []struct {
		name       string
		env        string // $KUBECONFIG
		args       []string
		dialled    *apiServer
		token      string
		notDialled *apiServer
	}{
		{"--kubeconfig uses its current context", "", []string{"inventory", "--kubeconfig", path}, a, "token-a", b},
		{"--context selects another context of the --kubeconfig file", "", []string{"inventory", "--kubeconfig", path, "--context", "b"}, b, "token-b", a},
		{"$KUBECONFIG is honoured without --kubeconfig", path, []string{"inventory"}, a, "token-a", b},
		{"--context applies to $KUBECONFIG", path, []string{"explain", "--context", "b", "testdata/list.json"}, b, "token-b", a},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("KUBECONFIG", tt.env)
			}
			before := len(tt.notDialled.calls())
			code, _, stderr := runCLI(t, tt.args...)
			if code != 2 || !strings.Contains(stderr, "reading the cluster at "+tt.dialled.URL) {
				t.Errorf("exit %d, stderr %q; want 2 and reading the cluster at %s", code, stderr, tt.dialled.URL)
			}
			calls := tt.dialled.calls()
			if len(calls) == 0 || calls[len(calls)-1] != tt.token {
				t.Errorf("%s got tokens %q, want the last to be %s", tt.dialled.URL, calls, tt.token)
			}
			if n := len(tt.notDialled.calls()); n != before {
				t.Errorf("%s was dialled too (%d calls)", tt.notDialled.URL, n-before)
			}
		})
	}
	t.Run("a context that does not exist is named", func(t *testing.T) {
		code, _, stderr := runCLI(t, "inventory", "--kubeconfig", path, "--context", "c")
		if code != 2 || !strings.Contains(stderr, `context "c" does not exist`) {
			t.Errorf("exit %d, stderr %q; want 2 and the missing context named", code, stderr)
		}
	})
}
