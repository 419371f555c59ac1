package policy

import (
	"slices"
	"strings"
	"testing"

	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

// TestFacesDecideAsTheWholeDecision: what the webhooks read (MutateFields, ValidateFields), and
// all the keys read one by one, equal the same keys of data.runtimeguard.decision evaluated whole, for Pods that reach every kind of rule: no
// requirement, a requirement met, a weak named class, label typos, a GPU, and one the cluster
// cannot serve.
func TestFacesDecideAsTheWholeDecision(t *testing.T) {
	e := defaultEngine(t)
	if len(e.current.Load().faces) != 3 {
		t.Fatalf("the default policy defines decision key by key, yet %d face queries were prepared, want 3", len(e.current.Load().faces))
	}
	v := testView(t)
	pods := []struct{ ns, pod string }{
		{"tenant-a", string(realisticPod(t))},
		{"default", `{"spec":{"containers":[{"name":"a","image":"a"}]}}`},
		{"default", `{"metadata":{"labels":{"runtimeguard.io/workload":"untrusted"}},"spec":{"runtimeClassName":"kata","containers":[{"name":"a","image":"a"}]}}`},
		{"default", `{"metadata":{"labels":{"runtimeguard.io/workload":"untrusted"}},"spec":{"containers":[{"name":"a","image":"a"}]}}`},
		{"tenant-a", `{"spec":{"runtimeClassName":"runc","containers":[{"name":"a","image":"a"}]}}`},
		{"default", `{"metadata":{"labels":{"runtimeguard.io/workload":"Untrusted","runtimeguard.io/tenency":"x"}},"spec":{"containers":[{"name":"a","image":"a"}]}}`},
		{"tenant-a", `{"spec":{"runtimeClassName":"nvidia","containers":[{"name":"a","image":"a","resources":{"limits":{"nvidia.com/gpu":"1"}}}]}}`},
		{"tenant-a", `{"spec":{"nodeSelector":{"sandbox.runtimeguard.io/gvisor":"false"},"runtimeClassName":"gvisor","containers":[{"name":"a","image":"a"}]}}`},
		{"default", `{"spec":{"containers":[{"name":"a","image":"a","resources":{"limits":{"nvidia.com/gpu":"1"}}}]}}`},
	}
	denied := 0
	for _, p := range pods {
		req := request(t, v, p.ns, mustPod(t, p.pod))
		prog := e.current.Load()
		in := prog.reads.project(t.Context(), req)
		input, err := e.input(prog, req, &in)
		if err != nil {
			t.Fatal(err)
		}
		whole, err := e.evalDecision(t.Context(), prog, prog.decision, input, nil) // data.runtimeguard.decision itself
		if err != nil {
			t.Fatal(err)
		}
		denied += len(whole.Deny)
		for _, f := range []Fields{MutateFields, ValidateFields, AllFields} {
			req.Fields = f
			got, cached, err := e.Decide(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			if cached {
				t.Fatalf("pod %s: fields %08b answered from another's cache entry", p.pod, f)
			}
			want := Decision{Class: whole.Class, Reasons: whole.Reasons}
			switch f {
			case ValidateFields:
				want.Deny, want.Warn, want.Conflicts = whole.Deny, whole.Warn, whole.Conflicts
			case AllFields:
				want = *whole
			}
			g := *got
			if f != AllFields {
				g.Traits = nil // parseDecision's empty map
			}
			if pretty(&g) != pretty(&want) {
				t.Errorf("pod %s in %s, fields %08b:\n%s\nwant\n%s", p.pod, p.ns, f, pretty(&g), pretty(&want))
			}
		}
	}
	if denied == 0 {
		t.Fatal("no pod of the table is denied: the denials were not compared")
	}
}

// TestAPolicyDefiningTheDecisionWholeIsEvaluatedWhole: a decision written as one object gains
// nothing from a query per key, so it keeps one query and every key's shape is checked on
// both webhooks (TestBadInput's "decision.deny is a string").
func TestAPolicyDefiningTheDecisionWholeIsEvaluatedWhole(t *testing.T) {
	e := mustEngine(t, policyFiles(t, false, map[string]string{
		"policy.rego": "package runtimeguard\n\ndecision := {\"class\": \"\", \"deny\": \"no\"}\n",
	}), 0)
	if n := len(e.current.Load().faces); n != 0 {
		t.Fatalf("%d face queries prepared for a decision defined whole, want 0", n)
	}
	req := request(t, testView(t), "default", mustPod(t, `{"spec":{"containers":[{"name":"a","image":"a"}]}}`))
	req.Fields = MutateFields
	if _, _, err := e.Decide(t.Context(), req); err == nil || !strings.Contains(err.Error(), "decision.deny is a string") {
		t.Fatalf("err = %v, want decision.deny is a string", err)
	}
}

// TestAPolicyDefiningTheDecisionKeyByKeyIsReadKeyByKey: the mutating webhook reads class and
// reasons, so a malformed deny key does not stop it (the validating webhook, which reads it,
// fails closed); a decision with no class fails both with the whole decision's error.
func TestAPolicyDefiningTheDecisionKeyByKeyIsReadKeyByKey(t *testing.T) {
	e := mustEngine(t, policyFiles(t, false, map[string]string{
		"policy.rego": "package runtimeguard\n\ndecision.class := \"gvisor\"\n\ndecision.reasons := [\"r\"]\n\ndecision.deny := \"no\"\n",
	}), 0)
	req := request(t, testView(t), "default", mustPod(t, `{"spec":{"containers":[{"name":"a","image":"a"}]}}`))
	req.Fields = MutateFields
	d, _, err := e.Decide(t.Context(), req)
	if err != nil || d.Class != "gvisor" || !slices.Equal(d.Reasons, []string{"r"}) {
		t.Fatalf("mutate: %+v, %v; want class gvisor, reasons [r]", d, err)
	}
	for _, f := range []Fields{ValidateFields, AllFields} {
		req.Fields = f
		if _, _, err := e.Decide(t.Context(), req); err == nil || !strings.Contains(err.Error(), "policy returned the wrong shape: decision.deny is a string") {
			t.Fatalf("fields %08b: err = %v, want decision.deny is a string", f, err)
		}
	}

	noClass := mustEngine(t, policyFiles(t, false, map[string]string{
		"policy.rego": "package runtimeguard\n\ndecision.reasons := [\"r\"]\n",
	}), 0)
	for _, f := range []Fields{MutateFields, ValidateFields} {
		req.Fields = f
		if _, _, err := noClass.Decide(t.Context(), req); err == nil || !strings.Contains(err.Error(), "decision.class is missing") {
			t.Fatalf("fields %08b: err = %v, want decision.class is missing", f, err)
		}
	}
}

// TestInputTermsAreBuiltOncePerSharedObject: the Pods that share a PodReach (View.Reach hands
// one to all Pods of a generation that ask the same of their nodes) share its input.placement,
// a new generation builds it again, and a request of an older one neither reuses nor resets.
func TestInputTermsAreBuiltOncePerSharedObject(t *testing.T) {
	var e Engine
	a := &cluster.PodReach{Constraint: "nodeSelector pool=a", Classes: map[string]cluster.Reach{"gvisor": {Available: true, Nodes: 2}}}
	b := &cluster.PodReach{Constraint: "nodeSelector pool=b", Classes: map[string]cluster.Reach{"gvisor": {Available: false}}}
	first := e.placementTerm(a, 7)
	if again := e.placementTerm(a, 7); again != first {
		t.Error("the same PodReach in the same generation built its term again")
	}
	if other := e.placementTerm(b, 7); other == first || other.Equal(first) {
		t.Errorf("another PodReach got %v, the first one's term", other)
	}
	if next := e.placementTerm(a, 8); next == first || !next.Equal(first) {
		t.Error("a new generation must build the term again (an equal one for an unchanged PodReach)")
	}
	if older := e.placementTerm(a, 7); !older.Equal(first) || e.placements.generation != 8 {
		t.Errorf("a request of an older generation got %v or reset the memo to %d", older, e.placements.generation)
	}
	if nilReach := e.placementTerm(nil, 8); nilReach == nil || len(e.placements.terms) != 1 {
		t.Errorf("no PodReach: term %v, memo of %d entries; want a term and no entry", nilReach, len(e.placements.terms))
	}
}

// TestNamespaceTermsFollowThePolicy: input.namespace holds the labels the policy reads, so a
// policy swap (a new policy generation) must not serve the previous policy's projection.
func TestNamespaceTermsFollowThePolicy(t *testing.T) {
	e := defaultEngine(t)
	v := testView(t)
	ns := namespace(t, v, "tenant-a")
	pod := mustPod(t, `{"spec":{"containers":[{"name":"a","image":"a"}]}}`)
	d, _, err := e.Decide(t.Context(), Request{Operation: "CREATE", Namespace: ns, Pod: pod, Cluster: v.Snapshot()})
	if err != nil || d.Class != "gvisor" {
		t.Fatalf("class %q, %v; want gvisor for the untrusted namespace", d.Class, err)
	}
	// The same Namespace object under a policy that declares no label it reads: it is given none.
	src := "package runtimeguard\n\ndecision := {\"class\": sprintf(\"%d labels\", [count(input.namespace.labels)])}\n"
	if err := e.Swap(t.Context(), mustSet(t, policyFiles(t, false, map[string]string{
		"policy.rego": src,
		"data.json":   `{"config": {"reads": {"mine": {"namespace_labels": []}}}}`,
	}))); err != nil {
		t.Fatal(err)
	}
	d, _, err = e.Decide(t.Context(), Request{Operation: "CREATE", Namespace: ns, Pod: pod, Cluster: v.Snapshot()})
	if err != nil || d.Class != "0 labels" {
		t.Fatalf("class %q, %v; want 0 labels: the new policy reads no namespace label", d.Class, err)
	}
}
