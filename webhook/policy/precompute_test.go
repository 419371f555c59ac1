package policy

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

func TestConstantDocuments(t *testing.T) {
	src := `package runtimeguard

decision := {"class": chosen, "reasons": [sprintf("%d", [tier_count]), label_note]}

# constant: data only, through a function that reads data only
ranked := [c.name | some c in data.config.classes; isolation(c.name) > 0]

isolation(name) := object.get(by_name, [name, "isolation"], 0)

by_name[c.name] := c if some c in data.config.classes

# constant: a partial set built from data, in two rules
known[key] contains "x" if some key, _ in data.config.labels

known["fixed"] contains "y"

tier_count := count(ranked)

# not constant: reads input
chosen := ranked[0] if input.pod.labels.tier == "gold"

default chosen := ""

# not constant: calls a function that reads input
label_note := note("x")

note(x) := concat("", [x, object.get(input.pod.labels, "tier", "")])

# not constant: uses with
scoped := x if {
	x := ranked with data.config.classes as []
}

# not constant: reads input whole
all_input := input
`
	got, _ := pureDocumentNames(t, src, `{"config": {"classes": [{"name": "gvisor", "isolation": 1}], "labels": {"a": 1}}}`)
	want := []string{"data.runtimeguard.by_name", "data.runtimeguard.known", "data.runtimeguard.ranked", "data.runtimeguard.tier_count"}
	if !slices.Equal(got, want) {
		t.Errorf("constant documents\n%v\nwant\n%v", got, want)
	}
}

// TestPrecomputedDecisionsEqualEvaluatedOnes decides a spread of Pods with and without the
// precomputed documents: the values must be the same ones OPA derives itself.
func TestPrecomputedDecisionsEqualEvaluatedOnes(t *testing.T) {
	seeded := defaultEngine(t)
	if seeded.current.Load().constants == nil || seeded.current.Load().cluster == nil {
		t.Fatal("the default policy has no precomputed constant or cluster documents")
	}
	plain := defaultEngine(t)
	prog := *plain.current.Load()
	prog.constants, prog.cluster = nil, nil
	plain.current.Store(&prog)
	v := testView(t)
	pods := []struct{ ns, pod string }{
		{"tenant-a", string(realisticPod(t))},
		{"default", `{"spec":{"containers":[{"name":"a","image":"a"}]}}`},
		{"default", `{"metadata":{"labels":{"runtimeguard.io/workload":"untrusted"}},"spec":{"runtimeClassName":"kata","containers":[{"name":"a","image":"a"}]}}`},
		{"default", `{"metadata":{"labels":{"runtimeguard.io/workload":"Untrusted","runtimeguard.io/tenency":"x"}},"spec":{"containers":[{"name":"a","image":"a"}]}}`},
		{"tenant-a", `{"spec":{"runtimeClassName":"nvidia","containers":[{"name":"a","image":"a","resources":{"limits":{"nvidia.com/gpu":"1"}}}]}}`},
		{"default", `{"spec":{"containers":[{"name":"a","image":"a","resources":{"limits":{"nvidia.com/gpu":"1"}}}]}}`},
	}
	for _, p := range pods {
		req := request(t, v, p.ns, mustPod(t, p.pod))
		want, _, err := plain.Decide(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := seeded.Decide(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		if pretty(got) != pretty(want) {
			t.Errorf("pod %s in %s: with precomputed documents\n%s\nwithout\n%s", p.pod, p.ns, pretty(got), pretty(want))
		}
	}
}

// TestPrecomputedValuesDoNotLeakUnderWith: under `with`, a constant document may have another
// value; the precomputed one must not answer there.
func TestPrecomputedValuesDoNotLeakUnderWith(t *testing.T) {
	src := `package runtimeguard

first := data.config.classes[0].name

decision := {"class": first, "reasons": [scoped]}

scoped := x if {
	input.operation == "CREATE"
	x := first with data.config.classes as [{"name": "kata"}]
}
`
	e := mustEngine(t, policyFiles(t, false, map[string]string{
		"policy.rego": src,
		"data.json":   `{"config": {"classes": [{"name": "gvisor"}]}}`,
	}), 0)
	if got := e.current.Load().constants.docs; !slices.Equal(got, []string{"data.runtimeguard.first"}) {
		t.Fatalf("precomputed %v, want data.runtimeguard.first", got)
	}
	d, _, err := e.Decide(t.Context(), request(t, testView(t), "default", mustPod(t, `{"spec":{"containers":[{"name":"a","image":"a"}]}}`)))
	if err != nil {
		t.Fatal(err)
	}
	if d.Class != "gvisor" || !slices.Equal(d.Reasons, []string{"kata"}) {
		t.Errorf("class %q reasons %v, want gvisor and [kata] (the value under with)", d.Class, d.Reasons)
	}
}

// TestASlowConstantDocumentDoesNotBlockLoading: precomputing is bounded like an evaluation; a
// document that would run for minutes leaves the set without precomputed values, and each
// evaluation then reports the deadline.
func TestASlowConstantDocumentDoesNotBlockLoading(t *testing.T) {
	slow := `package runtimeguard

decision := {"class": "", "reasons": [sprintf("%d", [n])]}

n := count([1 |
	some x in numbers.range(1, 20000)
	some y in numbers.range(1, 20000)
])
`
	start := time.Now()
	e := mustEngine(t, policyFiles(t, false, map[string]string{"policy.rego": slow}), 100*time.Millisecond)
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("loading took %s with a 100ms timeout", elapsed)
	}
	if c := e.current.Load().constants; c != nil {
		t.Errorf("precomputed %v, want nothing (it cannot finish)", c.docs)
	}
	_, _, err := e.Decide(t.Context(), request(t, testView(t), "default", mustPod(t, `{"spec":{"containers":[{"name":"a","image":"a"}]}}`)))
	if err == nil || !strings.HasPrefix(err.Error(), "policy evaluation did not finish within 100ms") {
		t.Errorf("Decide error %v, want the deadline named", err)
	}
}

func TestClusterDocuments(t *testing.T) {
	src := `package runtimeguard

decision := {"class": chosen, "reasons": [sprintf("%v", [available]), sprintf("%v", [pod_view])]}

ranked := [c.name | some c in data.config.classes]

# cluster: data and input.cluster only
available := [name | some name in ranked; input.cluster.runtimeClasses[name].available == true]

keys contains key if {
	some rc in input.cluster.runtimeClasses
	some key, _ in rc.nodeSelector
}

# not cluster: reads input.pod
chosen := available[0] if input.pod.labels.tier == "gold"

default chosen := ""

# not cluster: a function that reads the pod
pod_view := [name | some name in available; selects(name)]

selects(name) if input.pod.nodeSelector[_] == name

# not cluster: reads input whole, or a key of it that is not cluster
whole := object.get(input, "cluster", {})

any_key := [k | some k, _ in input]
`
	_, got := pureDocumentNames(t, src, `{"config": {"classes": [{"name": "gvisor"}]}}`)
	if want := []string{"data.runtimeguard.available", "data.runtimeguard.keys"}; !slices.Equal(got, want) {
		t.Errorf("cluster documents\n%v\nwant\n%v (ranked is constant, the others read more of the input)", got, want)
	}
}

// TestClusterDocumentsFollowTheCluster: the default policy's cluster documents are evaluated
// once per cluster generation, and a change the next decision must see gets new values.
func TestClusterDocumentsFollowTheCluster(t *testing.T) {
	e := defaultEngine(t)
	prog := e.current.Load()
	if prog.cluster == nil || !slices.Contains(prog.cluster.docs, "data.runtimeguard.available_candidates_for") {
		t.Fatalf("the default policy's cluster documents are %v, want available_candidates_for among them", prog.cluster)
	}
	v := testView(t)
	tenantPod := mustPod(t, string(realisticPod(t)))
	decide := func(wantClass string) *clusterDocsEntry {
		t.Helper()
		d, cached, err := e.Decide(t.Context(), request(t, v, "tenant-a", tenantPod))
		if err != nil || cached || d.Class != wantClass {
			t.Fatalf("class %q cached %v err %v, want %q from a new evaluation", d.Class, cached, err, wantClass)
		}
		c := e.clusterDocs.Load()
		if c == nil || c.values == nil || c.generation.cluster != v.Snapshot().Generation {
			t.Fatalf("cluster documents %+v, want evaluated for cluster generation %d", c, v.Snapshot().Generation)
		}
		return c
	}
	first := decide("gvisor")
	v.DeleteRuntimeClass("gvisor")
	second := decide("kata")
	if first == second {
		t.Fatal("a new cluster generation reused the previous cluster documents")
	}
}

// pureDocumentNames compiles a policy and its data and names, sorted, the constant and the
// cluster documents pureDocuments finds.
func pureDocumentNames(t *testing.T, policy, data string) (constant, cluster []string) {
	t.Helper()
	set := mustSet(t, policyFiles(t, false, map[string]string{"policy.rego": policy, "data.json": data}))
	compiled, err := compileSet(set)
	if err != nil {
		t.Fatal(err)
	}
	names := func(refs []ast.Ref) []string {
		var out []string
		for _, r := range refs {
			out = append(out, r.String())
		}
		slices.Sort(out)
		return out
	}
	c, cl := pureDocuments(compiled.compiler)
	return names(c), names(cl)
}
