package policy

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/runtimeguard/runtimeguard/policies"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

func explainRequest() Request {
	pod := &Pod{}
	pod.Spec.Containers = []Container{{Name: "app", Image: "busybox"}}
	return Request{
		Operation: "CREATE",
		Namespace: &cluster.Namespace{Name: "tenant-a", Labels: map[string]string{"runtimeguard.io/tenancy": "untrusted"}},
		Pod:       pod,
		Cluster: &cluster.Snapshot{Generation: 1, Nodes: 1, Classes: map[string]*cluster.Class{
			"gvisor": {Name: "gvisor", Handler: "runsc", Availability: cluster.Availability{Available: true, Known: true, Reason: "1 of 1 nodes"}},
		}},
	}
}

func TestExplain(t *testing.T) {
	ctx := context.Background()
	set, err := LoadFS(policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	if !set.Defines(TraceQuery) {
		t.Fatal("the embedded policy defines no explain rule")
	}
	e, err := NewEngine(ctx, set, 0)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, _ := e.Data()["config"].(map[string]any); cfg["classes"] == nil {
		t.Errorf("Data() lacks config.classes: %v", e.Data())
	}
	for i := 0; i < 2; i++ { // the second call reuses the prepared query
		out, err := e.Trace(ctx, explainRequest())
		if err != nil {
			t.Fatal(err)
		}
		if out.ChosenClass != "gvisor" || out.RequirementText != "isolation >= 1" {
			t.Errorf("chosen_class = %q, requirement_text = %q", out.ChosenClass, out.RequirementText)
		}
		if tr := out.Traits["untrusted"]; tr.Needs != "isolation >= 1" || len(tr.Sources) != 1 {
			t.Errorf("trait untrusted = %+v", tr)
		}
		if first := out.Classes[0]; first.Name != "gvisor" || first.Verdict != "chosen" || first.AvailabilityReason != "1 of 1 nodes" {
			t.Errorf("first class %+v", first)
		}
	}
	// Admission is unaffected: the decision is the same with the explain module loaded.
	d, _, err := e.Decide(ctx, explainRequest())
	if err != nil || d.Class != "gvisor" {
		t.Errorf("Decide = %+v, %v", d, err)
	}
}

func TestExplainWithoutTheRule(t *testing.T) {
	ctx := context.Background()
	set, err := LoadFS(fstest.MapFS{"p.rego": {Data: []byte("package runtimeguard\n\ndecision := {\"class\": \"\"}\n")}})
	if err != nil {
		t.Fatal(err)
	}
	if set.Defines(TraceQuery) {
		t.Error("Defines(TraceQuery) is true for a set without explain")
	}
	e, err := NewEngine(ctx, set, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Trace(ctx, explainRequest()); err == nil || !strings.Contains(err.Error(), "no module defines data.runtimeguard.explain") {
		t.Errorf("Explain error = %v", err)
	}
	if len(e.GPUClasses()) != 0 || e.Data() == nil {
		t.Error("Data() is nil for a set without data files; want the empty document")
	}
}

// The trace query is prepared on first use; a first caller whose context is already cancelled
// must not leave the query broken for the callers after it.
func TestTraceSurvivesACancelledFirstCaller(t *testing.T) {
	set, err := LoadFS(policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(context.Background(), set, 0)
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	_, _ = e.Trace(cancelled, explainRequest()) // may fail: its caller gave up
	out, err := e.Trace(context.Background(), explainRequest())
	if err != nil || out.ChosenClass != "gvisor" {
		t.Fatalf("Trace after a cancelled first call = %+v, %v", out, err)
	}
}
