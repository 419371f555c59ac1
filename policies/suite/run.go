package suite

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/manifest"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// loadPolicies loads what a suite's policies and defaultPolicy say.
func loadPolicies(s *suite) (*policy.Set, error) {
	dirs := make([]string, len(s.policies))
	for i, l := range s.policies {
		dirs[i] = l.value
	}
	o := webhook.Options{PolicyDirs: dirs}
	set, err := o.LoadPolicies()
	if err != nil || len(dirs) == 0 || !s.defaultPolicy {
		return set, err
	}
	base, err := (&webhook.Options{}).LoadPolicies()
	if err != nil {
		return nil, err
	}
	merged, err := policy.Merge(base, set)
	if err != nil {
		return nil, fmt.Errorf("adding them to the default policy (defaultPolicy: true): %w", err)
	}
	return merged, nil
}

// Results counts what a run found. Run matched counts the cases the filter selected.
type Results struct {
	Passed, Failed, Broken, Matched int
}

// Run runs every suite file (cases whose name filter matches; nil: all) and prints a line per
// case and a summary to w.
func Run(ctx context.Context, w io.Writer, files []string, filter *regexp.Regexp) Results {
	var r Results
	for _, f := range files {
		if err := runSuite(ctx, w, f, filter, &r); err != nil {
			r.Broken++
			fmt.Fprintf(w, "ERROR %v\n", err)
		}
	}
	summary := fmt.Sprintf("%d passed, %d failed", r.Passed, r.Failed)
	if r.Broken > 0 {
		suites := "suites"
		if r.Broken == 1 {
			suites = "suite"
		}
		summary += fmt.Sprintf(", %d %s broken", r.Broken, suites)
	}
	fmt.Fprintln(w, summary)
	return r
}

func runSuite(ctx context.Context, w io.Writer, path string, filter *regexp.Regexp, r *Results) error {
	s, err := parseSuite(path)
	if err != nil {
		return err
	}
	policiesLine := s.line
	if len(s.policies) > 0 {
		policiesLine = s.policies[0].line
	}
	set, err := loadPolicies(s)
	if err != nil {
		return &suiteError{file: path, line: policiesLine, msg: "policies: " + err.Error()}
	}
	view := cluster.NewView(cluster.Options{})
	for _, l := range s.cluster {
		objs, err := manifest.ReadFile(l.value)
		if err == nil {
			err = view.Load(objs)
		}
		if err != nil {
			return &suiteError{file: path, line: l.line, msg: "cluster: " + err.Error()}
		}
	}
	view.MarkSynced()
	enforcement := webhook.Enforce
	if s.enforcement != "" {
		enforcement = webhook.Enforcement(s.enforcement)
	}
	engine, err := policy.NewEngine(ctx, set, policy.DefaultTimeout)
	if err != nil {
		return &suiteError{file: path, line: policiesLine, msg: "policies: " + err.Error()}
	}
	for _, c := range s.cases {
		if filter != nil && !filter.MatchString(c.name) {
			continue
		}
		r.Matched++
		out, err := runCase(ctx, engine, view, enforcement, c)
		if err != nil {
			return &suiteError{file: path, line: c.line, msg: fmt.Sprintf("case %q: %v", c.name, err)}
		}
		problems := c.expect.check(out)
		if len(problems) == 0 {
			r.Passed++
			fmt.Fprintf(w, "PASS %s: %s\n", path, c.name)
			continue
		}
		r.Failed++
		fmt.Fprintf(w, "FAIL %s: %s\n", path, c.name)
		fmt.Fprintf(w, "    at %s:%d\n", path, c.line)
		for _, p := range problems {
			fmt.Fprintf(w, "    %s\n", p)
		}
		writeOutcome(w, out)
	}
	return nil
}

// runCase simulates one case's Pod; namespace labels and annotations are set for the case and
// restored afterwards (cases run one at a time against the suite's view).
func runCase(ctx context.Context, engine *policy.Engine, view *cluster.View, enforcement webhook.Enforcement, c *testCase) (webhook.Outcome, error) {
	if c.enforcement != "" {
		enforcement = webhook.Enforcement(c.enforcement)
	}
	ns, name := manifest.PodIdentity(c.pod)
	if len(c.namespaceLabels) > 0 || len(c.namespaceAnnotations) > 0 {
		original, found, err := view.Namespace(ctx, ns)
		if err != nil {
			return webhook.Outcome{}, err
		}
		clone := cluster.Namespace{Name: ns, Labels: map[string]string{}, Annotations: map[string]string{}}
		for k, v := range original.Labels {
			clone.Labels[k] = v
		}
		for k, v := range original.Annotations {
			clone.Annotations[k] = v
		}
		for k, v := range c.namespaceLabels {
			clone.Labels[k] = v
		}
		for k, v := range c.namespaceAnnotations {
			clone.Annotations[k] = v
		}
		view.UpsertNamespace(clone)
		defer func() {
			if found {
				view.UpsertNamespace(*original)
			} else {
				view.DeleteNamespace(ns)
			}
		}()
	}
	p := webhook.NewPipeline(webhook.Config{Engine: engine, View: view, Enforcement: enforcement})
	out, err := p.Simulate(ctx, ns, name, c.pod.Raw, false)
	out.Source = c.pod.Source
	return out, err
}

// check returns one line per unmet expectation.
func (e *expectation) check(o webhook.Outcome) []string {
	var out []string
	if e.allowed != nil && *e.allowed != o.Allowed {
		out = append(out, fmt.Sprintf("allowed: expected %v, got %v", *e.allowed, o.Allowed))
	}
	if e.runtimeClassName != nil && *e.runtimeClassName != o.RuntimeClassName {
		out = append(out, fmt.Sprintf("runtimeClassName: expected %q, got %q", *e.runtimeClassName, o.RuntimeClassName))
	}
	if e.mutated != nil && *e.mutated != o.Mutated {
		out = append(out, fmt.Sprintf("mutated: expected %v, got %v", *e.mutated, o.Mutated))
	}
	if e.messageContains != nil && !strings.Contains(o.Message, *e.messageContains) {
		out = append(out, fmt.Sprintf("message: expected to contain %q, got %q", *e.messageContains, o.Message))
	}
	for _, want := range e.warningsContain {
		if !anyContains(o.Warnings, want) {
			out = append(out, fmt.Sprintf("warnings: expected one containing %q, got %s", want, quoteList(o.Warnings)))
		}
	}
	if e.noWarnings != nil && *e.noWarnings != (len(o.Warnings) == 0) {
		if *e.noWarnings {
			out = append(out, fmt.Sprintf("warnings: expected none, got %s", quoteList(o.Warnings)))
		} else {
			out = append(out, "warnings: expected at least one, got none")
		}
	}
	for _, want := range e.reasonsContain {
		if !anyContains(o.Reasons, want) {
			out = append(out, fmt.Sprintf("reasons: expected one containing %q, got %s", want, quoteList(o.Reasons)))
		}
	}
	return out
}

func anyContains(list []string, want string) bool {
	for _, s := range list {
		if strings.Contains(s, want) {
			return true
		}
	}
	return false
}

func quoteList(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// writeOutcome prints what the decision was, for a failed case.
func writeOutcome(w io.Writer, o webhook.Outcome) {
	fmt.Fprintf(w, "    got: allowed=%v runtimeClassName=%q mutated=%v\n", o.Allowed, o.RuntimeClassName, o.Mutated)
	if o.Message != "" {
		fmt.Fprintf(w, "    message: %s\n", o.Message)
	}
	for _, r := range o.Reasons {
		fmt.Fprintf(w, "    reason: %s\n", r)
	}
	for _, wn := range o.Warnings {
		fmt.Fprintf(w, "    warning: %s\n", wn)
	}
}
