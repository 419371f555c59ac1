package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The example cluster and pods (names distinct from eval_test.go's, which shares the package).
const (
	fixtureCluster = "../../policies/examples/cluster/cluster.yaml"
	fixturePods    = "../../policies/examples/pods/pods.yaml"
)

func TestExplainCommand(t *testing.T) {
	dir := t.TempDir()
	noKubeconfig(t)
	onePod := filepath.Join(dir, "pod.yaml")
	if err := os.WriteFile(onePod, []byte(`apiVersion: v1
kind: Pod
metadata: {name: job, namespace: tenant-a}
spec:
  nodeSelector: {sandbox.runtimeguard.io/gvisor: "false"}
  containers: [{name: job, image: busybox}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	ignored := filepath.Join(dir, "ignored.yaml")
	if err := os.WriteFile(ignored, []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: tenant-a\n  labels: {runtimeguard.io/ignore: \"true\", runtimeguard.io/tenancy: untrusted}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The kubelet marks a mirror pod by the annotation's presence; its value may be empty.
	mirror := filepath.Join(dir, "mirror.yaml")
	if err := os.WriteFile(mirror, []byte(`apiVersion: v1
kind: Pod
metadata: {name: static-web, namespace: tenant-a, annotations: {kubernetes.io/config.mirror: ""}}
spec:
  containers: [{name: web, image: busybox}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want []string // in order
	}{
		{
			name: "untrusted GPU pod: traits, every class's verdict, the decision",
			args: []string{"explain", "--cluster", fixtureCluster, "--pod", "tenant-a/tenant-train", fixturePods},
			code: 0,
			want: []string{
				"Pod tenant-a/tenant-train (../../policies/examples/pods/pods.yaml#5)\n",
				"Traits\n",
				`gpu        container "train" requests nvidia.com/gpu                  requires a GPU runtime`,
				`untrusted  namespace "tenant-a" is runtimeguard.io/tenancy=untrusted  requires isolation >= 1`,
				"Requirements: isolation >= 1 and a GPU runtime\n",
				`1. gvisor (handler "runsc"): isolation 1, no GPU`,
				"verdict: skipped: no GPU, and the pod needs a GPU runtime\n",
				`2. kata (handler "kata-qemu"): isolation 2, no GPU`,
				"verdict: skipped: no GPU, and the pod needs a GPU runtime\n",
				`3. nvidia (handler "nvidia"): isolation 0, GPU`,
				"verdict: skipped: isolation 0 is below the required 1\n",
				`4. gvisor-nvidia (handler "runsc-nvidia"): isolation 1, GPU`,
				`available: yes: 1 of 3 nodes can run handler "runsc-nvidia"`,
				"verdict: chosen\n",
				"5. kata-nvidia-gpu (not in the cluster): isolation 2, GPU",
				"verdict: skipped: RuntimeClass not found in the cluster\n",
				"Decision\n",
				`mutate:   injected runtime class "gvisor-nvidia"; patch [{"op":"add","path":"/spec/runtimeClassName","value":"gvisor-nvidia"}]`,
				"validate: allowed\n",
				"warnings: none\n",
			},
		},
		{
			name: "a denied pod exits 1 and shows the message",
			args: []string{"explain", "--cluster", fixtureCluster, "--pod", "ledger", fixturePods},
			code: 1,
			want: []string{
				`The pod names runtime class "gvisor"`,
				"verdict: skipped: isolation 1 is below the required 2\n",
				`2. kata (handler "kata-qemu")`, "verdict: chosen\n",
				"validate: DENIED\n",
				`message:  pod rejected: namespace "payments" is runtimeguard.io/tenancy=financial, which needs isolation >= 2`,
			},
		},
		{
			name: "placement: the nodes the pod's selector leaves, then each class on them",
			args: []string{"explain", "--cluster", fixtureCluster, "--pod", "tenant-a/batch-general", "../../policies/examples/pods/placement/pods.yaml"},
			code: 0,
			want: []string{
				"Placement: nodeSelector pool=general matches 1 Ready node; each class below is judged on those nodes\n",
				`1. gvisor (handler "runsc")`,
				`available: no: handler "runsc" on 0 of them`,
				`cluster-wide: 1 of 3 nodes can run handler "runsc"`,
				`verdict: skipped: not available: handler "runsc" on 0 of them`,
				`2. kata (handler "kata-qemu")`, `available: yes: handler "kata-qemu" on 1 of them`, "verdict: chosen\n",
				`mutate:   injected runtime class "kata"`,
			},
		},
		{
			name: "a nodeSelector conflict is shown",
			args: []string{"explain", "--cluster", fixtureCluster, onePod},
			code: 0,
			want: []string{
				"nodeSelector conflict: runtimeClass.scheduling.nodeSelector[sandbox.runtimeguard.io/gvisor] = true; pod.spec.nodeSelector[sandbox.runtimeguard.io/gvisor] = false\n",
				"verdict: skipped: its scheduling.nodeSelector conflicts with the pod's nodeSelector",
				`2. kata`, "verdict: chosen\n",
			},
		},
		{
			name: "an unavailable class shows the node counts",
			args: []string{"explain", "--cluster", "testdata/cluster/gvisor-notready.yaml", "--pod", "tenant-job", fixturePods},
			code: 0,
			want: []string{
				`1. gvisor (handler "runsc")`,
				`available: no: no Ready, schedulable node advertises handler "runsc" (0 of 2 nodes; 1 advertise it but are NotReady)`,
				"nodes: 0 usable of 2 (0 via status.runtimeHandlers, 0 via labels); 1 NotReady\n",
				`verdict: skipped: not available: no Ready, schedulable node advertises handler "runsc" (0 of 2 nodes; 1 advertise it but are NotReady)`,
				`2. kata (handler "kata-qemu")`, "verdict: chosen",
				`mutate:   injected runtime class "kata"`,
			},
		},
		{
			name: "an ignored namespace is said to be not reviewed",
			args: []string{"explain", "--cluster", fixtureCluster, "--cluster", ignored, onePod},
			code: 0,
			want: []string{`Not reviewed: namespace "tenant-a" is labelled runtimeguard.io/ignore=true.`, "mutate:   no patch"},
		},
		{
			name: "a mirror pod with an empty annotation is exempt, as the webhook treats it",
			args: []string{"explain", "--cluster", fixtureCluster, mirror},
			code: 0,
			want: []string{"Not reviewed: mirror pods are managed by the kubelet and exempt.", "verdict: chosen", "mutate:   no patch", "runtimeClassName: (none"},
		},
		{
			name: "several pods without --pod",
			args: []string{"explain", "--cluster", fixtureCluster, fixturePods},
			code: 2,
			want: []string{"../../policies/examples/pods/pods.yaml holds 6 Pods: pick one with --pod [NAMESPACE/]NAME"},
		},
		{
			name: "--pod names no pod",
			args: []string{"explain", "--cluster", fixtureCluster, "--pod", "nope", fixturePods},
			code: 2,
			want: []string{"--pod nope: no such Pod in ../../policies/examples/pods/pods.yaml (it holds default/web, tenant-a/tenant-job"},
		},
		{
			name: "neither --cluster nor a kubeconfig ($KUBECONFIG names no file)",
			args: []string{"explain", onePod},
			code: 2,
			want: []string{"no cluster to read: give --cluster FILE... (fixtures), or a kubeconfig (--kubeconfig, $KUBECONFIG or ~/.kube/config)"},
		},
		{
			name: "both --cluster and --kubeconfig",
			args: []string{"explain", "--cluster", fixtureCluster, "--kubeconfig", "/nonexistent", onePod},
			code: 2,
			want: []string{"give --cluster FILE... (fixtures) or --kubeconfig/--context (a live cluster), not both"},
		},
		{
			name: "an unreadable kubeconfig",
			args: []string{"explain", "--kubeconfig", filepath.Join(dir, "missing-kubeconfig"), onePod},
			code: 2,
			want: []string{"kubeconfig: ", "missing-kubeconfig"},
		},
		{
			name: "bad -o",
			args: []string{"explain", "--cluster", fixtureCluster, "-o", "wide", onePod},
			code: 2,
			want: []string{`invalid argument "wide" for "-o, --output" flag: want table, json or yaml`, "See 'runtimeguard explain --help' for usage."},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args...)
			all := stdout + stderr
			if code != tc.code {
				t.Errorf("exit code %d, want %d\n%s", code, tc.code, all)
			}
			wantInOrder(t, all, tc.want)
		})
	}
}

type explainJSON struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Trace     struct {
		Traits map[string]struct {
			Sources []string `json:"sources"`
		} `json:"traits"`
		Requirements map[string]any `json:"requirements"`
		ChosenClass  string         `json:"chosen_class"`
		Classes      []struct {
			Name      string `json:"name"`
			Meets     bool   `json:"meets"`
			Available bool   `json:"available"`
			Verdict   string `json:"verdict"`
		} `json:"classes"`
	} `json:"trace"`
	Availability map[string]struct {
		Counts struct {
			Nodes    int `json:"nodes"`
			ByStatus int `json:"byStatus"`
		} `json:"counts"`
	} `json:"availability"`
	Outcome struct {
		Allowed          bool   `json:"allowed"`
		RuntimeClassName string `json:"runtimeClassName"`
		Mutated          bool   `json:"mutated"`
	} `json:"outcome"`
}

func TestExplainJSON(t *testing.T) {
	code, stdout, stderr := runCLI(t, "explain", "--cluster", fixtureCluster, "--pod", "tenant-train", "-o", "json", fixturePods)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var e explainJSON
	if err := json.Unmarshal([]byte(stdout), &e); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if e.Namespace != "tenant-a" || e.Name != "tenant-train" {
		t.Errorf("pod %s/%s", e.Namespace, e.Name)
	}
	if got := e.Trace.Traits["gpu"].Sources; len(got) != 1 || got[0] != `container "train" requests nvidia.com/gpu` {
		t.Errorf("gpu trait sources %q", got)
	}
	if got := e.Trace.Traits["untrusted"].Sources; len(got) != 1 || got[0] != `namespace "tenant-a" is runtimeguard.io/tenancy=untrusted` {
		t.Errorf("untrusted trait sources %q", got)
	}
	want := []struct{ name, verdict string }{
		{"gvisor", "skipped: no GPU, and the pod needs a GPU runtime"},
		{"kata", "skipped: no GPU, and the pod needs a GPU runtime"},
		{"nvidia", "skipped: isolation 0 is below the required 1"},
		{"gvisor-nvidia", "chosen"},
		{"kata-nvidia-gpu", "skipped: RuntimeClass not found in the cluster"},
	}
	if len(e.Trace.Classes) != len(want) {
		t.Fatalf("%d classes, want %d: %+v", len(e.Trace.Classes), len(want), e.Trace.Classes)
	}
	for i, w := range want {
		if c := e.Trace.Classes[i]; c.Name != w.name || c.Verdict != w.verdict {
			t.Errorf("class %d = %s %q, want %s %q", i, c.Name, c.Verdict, w.name, w.verdict)
		}
	}
	if e.Trace.ChosenClass != "gvisor-nvidia" || !e.Outcome.Mutated || e.Outcome.RuntimeClassName != "gvisor-nvidia" || !e.Outcome.Allowed {
		t.Errorf("chosen %q, outcome %+v", e.Trace.ChosenClass, e.Outcome)
	}
	if c := e.Availability["gvisor-nvidia"].Counts; c.Nodes != 3 || c.ByStatus != 1 {
		t.Errorf("availability counts %+v", c)
	}
}

func TestEvalTrace(t *testing.T) {
	code, stdout, stderr := runCLI(t, "eval", "--cluster", fixtureCluster, "-o", "json", "--trace", fixturePods)
	if code != 1 { // ledger and wasm-app are denied
		t.Fatalf("exit %d, want 1: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines, want 6:\n%s", len(lines), stdout)
	}
	for _, line := range lines {
		var o struct {
			Name             string `json:"name"`
			RuntimeClassName string `json:"runtimeClassName"`
			Trace            *struct {
				ChosenClass string `json:"chosen_class"`
				Classes     []any  `json:"classes"`
			} `json:"trace"`
		}
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			t.Fatal(err)
		}
		if o.Trace == nil || len(o.Trace.Classes) != 5 {
			t.Errorf("%s: no trace with 5 classes: %s", o.Name, line)
			continue
		}
		if o.Name == "tenant-job" && (o.Trace.ChosenClass != "gvisor" || o.RuntimeClassName != "gvisor") {
			t.Errorf("tenant-job: %s", line)
		}
	}

	code, stdout, _ = runCLI(t, "eval", "--cluster", fixtureCluster, "-o", "json", fixturePods)
	if code != 1 || strings.Contains(stdout, `"trace"`) {
		t.Errorf("without --trace: exit %d, trace present: %v", code, strings.Contains(stdout, `"trace"`))
	}
	code, _, stderr = runCLI(t, "eval", "--cluster", fixtureCluster, "--trace", fixturePods)
	if code != 2 || !strings.Contains(stderr, "--trace needs -o json") {
		t.Errorf("--trace with text: exit %d, %s", code, stderr)
	}
}

// TestExplainAddsTheTraceToAPolicyDirectory: a --policies directory without explain.rego still
// explains (the embedded module is added).
func TestExplainAddsTheTraceToAPolicyDirectory(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"runtimeguard.rego", "data.yaml"} {
		b, err := os.ReadFile(filepath.Join("../../policies", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, stdout, stderr := runCLI(t, "explain", "--policies", dir, "--cluster", fixtureCluster, "--pod", "tenant-job", fixturePods)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"/runtimeguard.rego, (embedded) explain.rego\n", `1. gvisor (handler "runsc")`, "verdict: chosen"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q\n%s", want, stdout)
		}
	}
}
