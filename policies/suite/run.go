package suite

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/runtimeguard/runtimeguard/policies"
	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/manifest"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// loadPolicies loads what a suite's policies, defaultPolicy, policyModules and policyData say,
// with extra layered on top (runtimeguard test --policy-modules/--policy-data).
func loadPolicies(s *suite, extra policy.Layers) (*policy.Set, error) {
	o := webhook.Options{
		PolicyDirs:       values(s.policies),
		PolicyModuleDirs: append(values(s.policyModules), extra.ModuleDirs...),
		PolicyDataPaths:  append(values(s.policyData), extra.DataPaths...),
	}
	if len(o.PolicyDirs) == 0 || !s.defaultPolicy {
		return o.LoadPolicies()
	}
	base, err := (&webhook.Options{}).LoadPolicies()
	if err != nil {
		return nil, err
	}
	dirs, err := policy.LoadDirs(o.PolicyDirs...)
	if err != nil {
		return nil, err
	}
	merged, err := policy.Merge(base, dirs)
	if err != nil {
		return nil, fmt.Errorf("adding them to the default policy (defaultPolicy: true): %w", err)
	}
	if o.Layers().Empty() {
		return merged, nil
	}
	layered, err := o.Layers().Apply(merged)
	if err != nil {
		return nil, err
	}
	// Built on the default policy: its data must match its schema, as serve would require.
	if err := layered.CheckData(context.Background(), policies.DataSchema); err != nil {
		return nil, err
	}
	return layered, nil
}

func values(list []located) []string {
	out := make([]string, len(list))
	for i, l := range list {
		out[i] = l.value
	}
	return out
}

// Options are how Run runs the suites.
type Options struct {
	// Filter selects the cases to run by name; nil runs all.
	Filter *regexp.Regexp
	// Layers are put on top of every suite's policy (runtimeguard test --policy-modules and
	// --policy-data): a team's data or modules checked against the suites of the policy.
	Layers policy.Layers
	// Policy, when set, is the policy every suite runs against, whatever the suite says: the
	// policy ConfigMap check runs the suites a ConfigMap ships against the policy it makes.
	Policy *policy.Set
	// Native also runs every case through the native admission policies generated from the
	// policy's data (webhook/native) and reports where they decide otherwise.
	Native bool
}

// Results counts what a run found. Run matched counts the cases the filter selected.
type Results struct {
	Passed, Failed, Broken, Matched int
	// NativeDiffs counts cases where the native policies decide otherwise and no documented
	// limitation explains it; NativeExplained those a limitation explains.
	NativeDiffs, NativeExplained int
}

// Run runs every suite file (cases whose name filter matches; nil: all) and prints a line per
// case and a summary to w.
func Run(ctx context.Context, w io.Writer, files []string, filter *regexp.Regexp) Results {
	return RunWith(ctx, w, files, Options{Filter: filter})
}

// RunWith is Run with all the options.
func RunWith(ctx context.Context, w io.Writer, files []string, o Options) Results {
	var r Results
	for _, f := range files {
		if err := runSuite(ctx, w, f, o, &r); err != nil {
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
	if o.Native {
		summary += fmt.Sprintf("; native policies: %d unexplained differences, %d explained by documented limitations", r.NativeDiffs, r.NativeExplained)
	}
	fmt.Fprintln(w, summary)
	return r
}

func runSuite(ctx context.Context, w io.Writer, path string, o Options, r *Results) error {
	filter := o.Filter
	s, err := parseSuite(path)
	if err != nil {
		return err
	}
	policiesLine := s.line
	if len(s.policies) > 0 {
		policiesLine = s.policies[0].line
	}
	set := o.Policy
	if set == nil {
		set, err = loadPolicies(s, o.Layers)
	}
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
	var nr *nativeRun
	if o.Native {
		if nr, err = newNativeRun(set, view, ""); err != nil {
			return &suiteError{file: path, line: policiesLine, msg: "native policies: " + err.Error()}
		}
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
		if nr != nil {
			mode := enforcement
			if c.enforcement != "" {
				mode = webhook.Enforcement(c.enforcement)
			}
			diff, explained, err := nr.compare(ctx, view, c, mode, out)
			if err != nil {
				return &suiteError{file: path, line: c.line, msg: fmt.Sprintf("case %q: native policies: %v", c.name, err)}
			}
			if diff != "" {
				nr.report(w, path, c, diff, explained, r)
			}
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
