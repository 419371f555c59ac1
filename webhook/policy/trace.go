package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/open-policy-agent/opa/v1/rego"
)

// TraceQuery is the document `runtimeguard explain` and `eval --trace` read: the decision traced
// class by class (policies/explain.rego). Admission never evaluates it.
const TraceQuery = "data.runtimeguard.explain"

// Trace is data.runtimeguard.explain: what the policy found and how it judged each class.
type Trace struct {
	Traits map[string]TraitTrace `json:"traits"`
	// Requirements are what the traits need; RequirementText says it in the denials' words.
	Requirements    Requirements   `json:"requirements"`
	RequirementText string         `json:"requirement_text"`
	NamedClass      string         `json:"named_class"`
	ChosenClass     string         `json:"chosen_class"`
	Override        *OverrideTrace `json:"override"`
	// Placement is the nodes the Pod's own constraints leave; nil when it asks nothing.
	Placement *PlacementTrace `json:"placement"`
	// Classes are in the policy's price order, then the cluster's classes the policy does not list.
	Classes []ClassTrace `json:"classes"`
}

// TraitTrace is one trait the Pod has.
type TraitTrace struct {
	Sources []string `json:"sources"`
	// Needs says what the trait requires, in the denials' words ("nothing" when nothing).
	Needs string `json:"needs"`
}

// OverrideTrace is a class override a custom policy asked for.
type OverrideTrace struct {
	Class   string `json:"class"`
	Source  string `json:"source"`
	Applied bool   `json:"applied"`
}

// PlacementTrace is what the Pod asks of its node and the nodes that leaves.
type PlacementTrace struct {
	Constraint string `json:"constraint"`
	Nodes      string `json:"nodes"`
}

// ClassTrace is the verdict on one class.
type ClassTrace struct {
	Name      string `json:"name"`
	Handler   string `json:"handler"`
	Listed    bool   `json:"listed"`
	Isolation int    `json:"isolation"`
	GPU       bool   `json:"gpu"`
	Meets     bool   `json:"meets"`
	Exists    bool   `json:"exists"`
	// Available and AvailabilityReason are for this Pod, on the nodes it can reach.
	Available          bool     `json:"available"`
	AvailabilityReason string   `json:"availability_reason"`
	Conflicts          []string `json:"conflicts"`
	Verdict            string   `json:"verdict"`
}

// lazyQuery is a query prepared on first use.
type lazyQuery struct {
	once  sync.Once
	query rego.PreparedEvalQuery
	err   error
}

// Trace evaluates data.runtimeguard.explain for req with the same input, capabilities and
// deadline as Decide, never cached. The set must define it (see WithTrace).
func (e *Engine) Trace(ctx context.Context, req Request) (*Trace, error) {
	prog := e.current.Load()
	prog.trace.once.Do(func() {
		if !prog.set.Defines(TraceQuery) {
			prog.trace.err = errors.New("no module defines data.runtimeguard.explain (policies/explain.rego)")
			return
		}
		// Not the caller's context: a cancelled first caller must not leave the query broken.
		prog.trace.query, prog.trace.err = prepare(context.WithoutCancel(ctx), prog.set, TraceQuery)
	})
	if prog.trace.err != nil {
		return nil, prog.trace.err
	}
	in := prog.reads.project(ctx, req)
	input, err := e.input(prog, req, &in)
	if err != nil {
		return nil, err
	}
	value, err := e.eval(ctx, prog.trace.query, input, TraceQuery)
	if err != nil {
		return nil, err
	}
	// The trace is read by people, once per command: a JSON round trip is the simple way to
	// a typed value here.
	b, err := json.Marshal(value)
	if err != nil {
		return nil, err
	}
	t := &Trace{}
	if err := json.Unmarshal(b, t); err != nil {
		return nil, fmt.Errorf("data.runtimeguard.explain has the wrong shape: %w", err)
	}
	return t, nil
}
