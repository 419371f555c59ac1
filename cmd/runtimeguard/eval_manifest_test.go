package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	mixedManifest = "testdata/manifests/mixed.yaml"
	financialDeny = `its pods would be rejected: namespace "payments" is runtimeguard.io/tenancy=financial, which needs isolation >= 2 (runtime class "kata" or stronger); spec.runtimeClassName is "gvisor"; remove spec.runtimeClassName to let runtimeguard choose, or set it to "kata"`
)

// row is what a test checks of one -o json line of eval on manifests.
type row struct {
	kind, namespace, name, class, source string
	allowed                              bool
	// message of a denial, first reason of an admission, or the skipped reason
	detail string
}

func rowsOf(t *testing.T, stdout string) []row {
	t.Helper()
	var out []row
	for _, o := range parseManifestLines(t, stdout) {
		r := row{kind: o.Kind, namespace: o.Namespace, name: o.Name, class: o.RuntimeClassName, source: o.Source, allowed: o.Allowed}
		switch {
		case o.Skipped != "":
			r.detail = "skipped: " + o.Skipped
		case !o.Allowed:
			r.detail = o.Message
		case len(o.Reasons) > 0:
			r.detail = o.Reasons[0]
		}
		out = append(out, r)
	}
	return out
}

type manifestOutcome struct {
	outcome
	Skipped string `json:"skipped"`
}

// parseManifestLines is parseLines (every documented key on every line) plus skipped.
func parseManifestLines(t *testing.T, stdout string) []manifestOutcome {
	t.Helper()
	if stdout == "" {
		return nil
	}
	parseLines(t, stdout) // checks the keys
	var out []manifestOutcome
	for _, line := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		var o manifestOutcome
		if err := jsonUnmarshal(line, &o); err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

func checkRows(t *testing.T, got, want []row) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d rows, want %d:\n got %+v\nwant %+v", len(got), len(want), got, want)
		return
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("row %d:\n got %+v\nwant %+v", i+1, got[i], want[i])
		}
	}
}

// mixedRows are the rows of testdata/manifests/mixed.yaml read under the source name src.
func mixedRows(src string) []row {
	return []row{
		{kind: "Namespace", name: "payments", source: src + "#1", allowed: true, detail: "skipped: runtimeguard decides Pods and workloads, not v1 Namespace"},
		{kind: "ConfigMap", namespace: "payments", name: "ledger-config", source: src + "#2", allowed: true, detail: "skipped: runtimeguard decides Pods and workloads, not v1 ConfigMap"},
		{kind: "Deployment", namespace: "payments", name: "ledger", class: "gvisor", source: src + "#3", detail: `deployment "ledger": ` + financialDeny},
		{kind: "CronJob", namespace: "tenant-a", name: "report", class: "gvisor", source: src + "#4", allowed: true, detail: `cronjob "report": its pods would be admitted with runtime class "gvisor"`},
		{kind: "Pod", namespace: "tenant-a", name: "web", class: "gvisor", source: src + "#5", allowed: true,
			detail: `trait untrusted: namespace "tenant-a" is runtimeguard.io/tenancy=untrusted`},
	}
}

func TestEvalManifests(t *testing.T) {
	mixed, err := os.ReadFile(mixedManifest)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		stdin    string
		args     []string
		wantCode int
		want     []row
	}{
		{
			name:     "a mixed manifest: workloads decided by their template, other kinds skipped, exit 1 for the denied Deployment",
			args:     []string{"eval", "-o", "json", "--cluster", exampleCluster, mixedManifest},
			wantCode: 1,
			want:     mixedRows(mixedManifest),
		},
		{
			name:     "the same manifest from standard input",
			stdin:    string(mixed),
			args:     []string{"eval", "-o", "json", "--cluster", exampleCluster, "-"},
			wantCode: 1,
			want:     mixedRows("stdin"),
		},
		{
			name:     "a directory: its manifest files only, not its subdirectories; exit 0 when all is allowed",
			args:     []string{"eval", "-o", "json", "--cluster", exampleCluster, "testdata/manifests/dir"},
			wantCode: 0,
			want: []row{
				{kind: "Deployment", namespace: "payments", name: "ledger", class: "kata", source: "testdata/manifests/dir/app.yaml#1", allowed: true, detail: `deployment "ledger": its pods would be admitted with runtime class "kata"`},
				{kind: "Service", namespace: "payments", name: "ledger", source: "testdata/manifests/dir/app.yaml#2", allowed: true, detail: "skipped: runtimeguard decides Pods and workloads, not v1 Service"},
			},
		},
		{
			name:     "a directory with -R: subdirectories too, in lexical order, a JSON Job with generateName named by its prefix",
			args:     []string{"eval", "-o", "json", "-R", "--cluster", exampleCluster, "testdata/manifests/dir"},
			wantCode: 0,
			want: []row{
				{kind: "Deployment", namespace: "payments", name: "ledger", class: "kata", source: "testdata/manifests/dir/app.yaml#1", allowed: true, detail: `deployment "ledger": its pods would be admitted with runtime class "kata"`},
				{kind: "Service", namespace: "payments", name: "ledger", source: "testdata/manifests/dir/app.yaml#2", allowed: true, detail: "skipped: runtimeguard decides Pods and workloads, not v1 Service"},
				{kind: "Job", namespace: "tenant-a", name: "migrate-", class: "gvisor", source: "testdata/manifests/dir/sub/job.json#1", allowed: true, detail: `job "migrate-": its pods would be admitted with runtime class "gvisor"`},
			},
		},
		{
			name:     "--recursive finds manifests only a subdirectory holds",
			args:     []string{"eval", "-o", "json", "--recursive", "--cluster", exampleCluster, "testdata/manifests/nested"},
			wantCode: 0,
			want: []row{
				{kind: "Pod", namespace: "payments", name: "nested", class: "kata", source: "testdata/manifests/nested/team-a/pod.yml#1", allowed: true,
					detail: `trait financial: namespace "payments" is runtimeguard.io/tenancy=financial`},
			},
		},
		{
			name:     "a JSON stream: a v1 List (items numbered) followed by another object",
			args:     []string{"eval", "-o", "json", "--cluster", exampleCluster, "testdata/manifests/list-stream.json"},
			wantCode: 1,
			want: []row{
				{kind: "ServiceAccount", namespace: "tenant-a", name: "worker", source: "testdata/manifests/list-stream.json#1 item 1", allowed: true, detail: "skipped: runtimeguard decides Pods and workloads, not v1 ServiceAccount"},
				{kind: "StatefulSet", namespace: "default", name: "db", class: "wasm", source: "testdata/manifests/list-stream.json#1 item 2",
					detail: `statefulset "db": its pods would be rejected: RuntimeClass "wasm" not found; existing runtime classes: gvisor, gvisor-nvidia, kata, nvidia; create it or fix spec.runtimeClassName`},
				{kind: "ReplicationController", namespace: "tenant-a", name: "old", class: "gvisor", source: "testdata/manifests/list-stream.json#2", allowed: true, detail: `replicationcontroller "old": its pods would be admitted with runtime class "gvisor"`},
			},
		},
		{
			name:     "warn mode admits the denied Deployment with the denial as a warning",
			args:     []string{"eval", "-o", "json", "--enforcement", "warn", "--cluster", exampleCluster, mixedManifest},
			wantCode: 0,
			want: func() []row {
				rows := mixedRows(mixedManifest)
				rows[2].allowed, rows[2].detail = true, "warn mode"
				rows[3].class, rows[3].detail = "", "warn mode" // warn mode injects nothing, so its pods would be warned about, as Pods are
				rows[4].class = ""
				return rows
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code, err := runIn(t, tt.stdin, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code %d (err %v), want %d", code, err, tt.wantCode)
			}
			if stderr != "" {
				t.Errorf("stderr %q, want nothing", stderr)
			}
			checkRows(t, rowsOf(t, stdout), tt.want)
		})
	}
}

func TestEvalManifestTable(t *testing.T) {
	stdout, _, code, _ := run(t, "eval", "--cluster", exampleCluster, mixedManifest)
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	want := [][]string{
		{"NAMESPACE", "NAME", "RESULT", "RUNTIMECLASS", "DETAIL"},
		{"-", "namespace/payments", "skipped", "-", "runtimeguard", "decides", "Pods", "and", "workloads,", "not", "v1", "Namespace"},
		{"payments", "configmap/ledger-config", "skipped", "-"},
		{"payments", "deployment/ledger", "DENIED", "gvisor", "deployment", `"ledger":`, "its", "pods", "would", "be", "rejected:"},
		{"tenant-a", "cronjob/report", "allowed", "gvisor", "cronjob", `"report":`},
		{"tenant-a", "pod/web", "injected", "gvisor"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), stdout)
	}
	for i, w := range want {
		if got := strings.Fields(lines[i]); len(got) < len(w) || !reflect.DeepEqual(got[:len(w)], w) {
			t.Errorf("line %d = %q, want it to start with %q", i+1, lines[i], w)
		}
	}
}

func TestEvalManifestYAML(t *testing.T) {
	stdout, _, code, _ := run(t, "eval", "-o", "yaml", "--cluster", exampleCluster, mixedManifest)
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	docs := strings.Split(stdout, "---\n")[1:]
	if len(docs) != 5 {
		t.Fatalf("%d YAML documents, want 5:\n%s", len(docs), stdout)
	}
	for i, frag := range []string{"kind: Namespace\n", "skipped: runtimeguard decides Pods and workloads, not v1 ConfigMap\n", "kind: Deployment\n", "kind: CronJob\n", "kind: Pod\n"} {
		if !strings.Contains(docs[i], frag) {
			t.Errorf("document %d lacks %q:\n%s", i+1, frag, docs[i])
		}
	}
}

// Bad documents: each is an error naming the file, the document and the object, and the good
// documents of the same stream are still decided (their rows are printed, exit code 2).
func TestEvalManifestBadDocuments(t *testing.T) {
	const good = "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: good\n  namespace: tenant-a\nspec:\n  containers:\n    - name: app\n      image: registry.example.com/app:1\n"
	goodRow := row{kind: "Pod", namespace: "tenant-a", name: "good", class: "gvisor", allowed: true,
		detail: `trait untrusted: namespace "tenant-a" is runtimeguard.io/tenancy=untrusted`}
	deployment := func(name, apiVersion, podSpec string) string {
		return "apiVersion: " + apiVersion + "\nkind: Deployment\nmetadata:\n  name: " + name + "\n  namespace: tenant-a\nspec:\n  selector:\n    matchLabels:\n      app: x\n  template:\n    metadata:\n      labels:\n        app: x\n    spec:\n" + podSpec
	}
	const container = "      containers:\n        - name: app\n          image: registry.example.com/app:1\n"
	tests := []struct {
		name, doc string
		// every fragment must appear in the error, which starts with "bad.yaml#1: "
		want []string
	}{
		{
			name: "a misspelt field in a Deployment's pod template",
			doc:  deployment("typo", "apps/v1", container+"          imagePullPolcy: Always\n"),
			want: []string{`deployment "typo": unknown field "spec.template.spec.containers[0].imagePullPolcy" (check the spelling and indentation)`},
		},
		{
			name: "a field at the wrong indentation in a Pod",
			doc:  "apiVersion: v1\nkind: Pod\nmetadata:\n  name: indented\nspec:\n  containers:\n    - name: app\n      image: registry.example.com/app:1\n  runtimeclassName: kata\n",
			want: []string{`pod "indented": unknown field "spec.runtimeclassName"`},
		},
		{
			name: "a duplicate key in a Pod",
			doc:  "apiVersion: v1\nkind: Pod\nmetadata:\n  name: twice\n  name: again\nspec:\n  containers:\n    - name: app\n      image: registry.example.com/app:1\n",
			want: []string{`pod "again": yaml: unmarshal errors: line 5: key "name" already set in map`},
		},
		{
			name: "a pod template without containers",
			doc:  deployment("empty", "apps/v1", "      restartPolicy: Always\n"),
			want: []string{`deployment "empty": spec.template.spec.containers is empty: a Pod template needs at least one container`},
		},
		{
			name: "a Pod without containers",
			doc:  "apiVersion: v1\nkind: Pod\nmetadata:\n  name: hollow\nspec: {}\n",
			want: []string{`pod "hollow": spec.containers is empty: a Pod needs at least one container`},
		},
		{
			name: "a CronJob without jobTemplate",
			doc:  "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: nightly\nspec:\n  schedule: \"@daily\"\n",
			want: []string{`cronjob "nightly": spec.jobTemplate is missing: a CronJob needs its Pod template at spec.jobTemplate.spec.template`},
		},
		{
			name: "a Deployment of a removed apiVersion",
			doc:  deployment("legacy", "apps/v1beta1", container),
			want: []string{`deployment "legacy": apiVersion "apps/v1beta1" is not one runtimeguard (or a current API server) knows for kind Deployment; want apps/v1`},
		},
		{
			name: "a Deployment of the extensions group",
			doc:  deployment("older", "extensions/v1beta1", container),
			want: []string{`apiVersion "extensions/v1beta1"`, "want apps/v1"},
		},
		{
			name: "a CronJob of batch/v1beta1",
			doc:  "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata:\n  name: beta\nspec:\n  schedule: \"@daily\"\n",
			want: []string{`cronjob "beta": apiVersion "batch/v1beta1"`, "want batch/v1"},
		},
		{
			name: "a document without kind",
			doc:  "apiVersion: v1\nmetadata:\n  name: what\n",
			want: []string{"kind is not set"},
		},
		{
			name: "a document that is a list, not an object",
			doc:  "- apiVersion: v1\n  kind: Pod\n",
			want: []string{"want an object (apiVersion, kind, metadata...), got a JSON array"},
		},
		{
			name: "broken YAML",
			doc:  "apiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n",
			want: []string{"not valid YAML or JSON"},
		},
		{
			name: "a YAML alias bomb (billion laughs)",
			doc:  aliasBomb(),
			want: []string{"not valid YAML or JSON", "excessive aliasing"},
		},
		{
			name: "a deeply nested YAML document",
			doc:  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata: " + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + "\n",
			want: []string{"not valid YAML or JSON", "exceeded max depth"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			bad := filepath.Join(dir, "bad.yaml")
			if err := os.WriteFile(bad, []byte(tt.doc+good), 0o644); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			stdout, _, code, err := run(t, "eval", "-o", "json", "--cluster", exampleCluster, bad)
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %s: bad input must be refused quickly", d)
			}
			if code != 2 {
				t.Errorf("exit code %d (err %v), want 2", code, err)
			}
			want := goodRow
			want.source = bad + "#2"
			checkRows(t, rowsOf(t, stdout), []row{want})
			if err == nil {
				return
			}
			var exit exitCode
			if errors.As(err, &exit) {
				t.Fatalf("bad input returned exitCode(%d), want an error main prints", exit)
			}
			if !strings.HasPrefix(err.Error(), bad+"#1: ") {
				t.Errorf("error %q does not name the file and document %s#1", err, bad)
			}
			for _, frag := range tt.want {
				if !strings.Contains(err.Error(), frag) {
					t.Errorf("error %q lacks %q", err, frag)
				}
			}
		})
	}
}

// aliasBomb is the "billion laughs": nine levels of nine aliases each, 9^9 strings if expanded.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\nlol0: &a0 [lol]\n")
	for i := 1; i <= 9; i++ {
		b.WriteString("lol" + itoa(i) + ": &a" + itoa(i) + " [")
		for j := range 9 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + itoa(i-1))
		}
		b.WriteString("]\n")
	}
	return b.String()
}

func itoa(i int) string { return string(rune('0' + i)) }

func TestEvalManifestDeepJSON(t *testing.T) {
	dir := t.TempDir()
	deep := filepath.Join(dir, "deep.json")
	doc := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"deep"},"spec":` + strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20001)
	if err := os.WriteFile(deep, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, _, code, err := run(t, "eval", "--cluster", exampleCluster, deep, examplePods)
	if code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
	if err == nil || !strings.HasPrefix(err.Error(), deep+"#1: ") || !strings.Contains(err.Error(), "exceeded max depth") {
		t.Errorf("error %v, want one naming %s#1 and the depth", err, deep)
	}
	if !strings.Contains(stdout, "wasm-app") {
		t.Errorf("the other file's pods were not decided:\n%s", stdout)
	}
}

// An oversized input is refused with a message, without reading it all, and the files within
// the cap are still decided.
func TestEvalManifestTooLarge(t *testing.T) {
	dir := t.TempDir()
	huge := filepath.Join(dir, "huge.yaml")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	line := "# " + strings.Repeat("x", 1021) + "\n"
	for range 17 << 10 { // 17 MiB
		if _, err := f.WriteString(line); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	stdout, _, code, err := run(t, "eval", "-o", "json", "--cluster", exampleCluster, huge, "testdata/allowed.yaml")
	if code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
	want := huge + ": the manifests are over 16 MiB in all, more than runtimeguard reads in one run; split them over several runs"
	if err == nil || err.Error() != want {
		t.Errorf("error %v\nwant %s", err, want)
	}
	if got := len(rowsOf(t, stdout)); got != 3 {
		t.Errorf("%d rows, want the 3 pods of testdata/allowed.yaml:\n%s", got, stdout)
	}
}

// Several bad documents are all reported, one per line.
func TestEvalManifestSeveralBadDocuments(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	doc := "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: a\nspec: {}\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: b\nspec:\n  containers: []\n"
	if err := os.WriteFile(bad, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, _, code, err := run(t, "eval", "--cluster", exampleCluster, bad)
	if code != 2 || stdout != "" {
		t.Errorf("exit code %d, stdout %q: want 2 and nothing", code, stdout)
	}
	want := "2 documents could not be decided:\n  " + bad + `#1: cronjob "a": spec.jobTemplate is missing: a CronJob needs its Pod template at spec.jobTemplate.spec.template` +
		"\n  " + bad + `#2: pod "b": spec.containers is empty: a Pod needs at least one container`
	if err == nil || err.Error() != want {
		t.Errorf("error\n%v\nwant\n%s", err, want)
	}
}

func jsonUnmarshal(line string, v any) error { return json.Unmarshal([]byte(line), v) }
