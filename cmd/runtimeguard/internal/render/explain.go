package render

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// Explanation is the -o json document of explain.
type Explanation struct {
	Source    string `json:"source"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Exempt says why runtimeguard does not review the Pod at all ("" when it does).
	Exempt string        `json:"exempt,omitempty"`
	Trace  *policy.Trace `json:"trace"`
	// Availability is the cluster view's availability of each RuntimeClass, node counts included.
	Availability map[string]cluster.Availability `json:"availability"`
	// Outcome is the pipeline's; its trace and exemption are the fields above.
	Outcome     webhook.Outcome `json:"outcome"`
	PolicyFiles []string        `json:"policyFiles"`
}

// NewExplanation splits a traced outcome into the explanation's parts.
func NewExplanation(o webhook.Outcome, snap *cluster.Snapshot, files []string) Explanation {
	e := Explanation{Source: o.Source, Namespace: o.Namespace, Name: o.Name, Exempt: o.Exempt, Trace: o.Trace,
		Availability: map[string]cluster.Availability{}, PolicyFiles: files}
	o.Trace, o.Exempt = nil, ""
	e.Outcome = o
	for name, c := range snap.Classes {
		e.Availability[name] = c.Availability
	}
	return e
}

// ExplanationText writes explain's text: traits, requirements, each class, the decision.
func ExplanationText(w io.Writer, e *Explanation) error {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	t := e.Trace
	p("Pod %s/%s (%s)\n", e.Namespace, e.Name, e.Source)
	p("Policy files: %s\n", strings.Join(e.PolicyFiles, ", "))
	if e.Exempt != "" {
		p("\nNot reviewed: %s. runtimeguard admits the pod unchanged; the trace below is what the policy would decide.\n", e.Exempt)
	}
	p("\nTraits\n")
	if err := traits(w, t.Traits); err != nil {
		return err
	}
	p("\nRequirements: %s\n", t.RequirementText)
	if t.NamedClass != "" {
		p("The pod names runtime class %q: nothing is injected; the validating webhook judges that class (see Decision).\n", t.NamedClass)
	}
	if t.Override != nil {
		state := "applied"
		if !t.Override.Applied {
			state = "rejected: it does not meet the requirements or cannot run the pod, and an override never falls back"
		}
		p("Class override: %s asks for %q (%s)\n", t.Override.Source, t.Override.Class, state)
	}
	if t.Placement != nil {
		p("Placement: %s; each class below is judged on those nodes\n", t.Placement.Nodes)
	}
	p("\nClasses, in the policy's price order\n")
	for i, c := range t.Classes {
		classText(w, i+1, c, e.Availability, t.Placement != nil)
	}
	if len(t.Classes) == 0 {
		p("  none (data.config.classes is empty and the cluster has no RuntimeClass)\n")
	}
	decisionText(w, e.Outcome)
	return nil
}

func traits(w io.Writer, traits map[string]policy.TraitTrace) error {
	if len(traits) == 0 {
		fmt.Fprintf(w, "  none\n")
		return nil
	}
	names := make([]string, 0, len(traits))
	for name := range traits {
		names = append(names, name)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, name := range names {
		for i, src := range traits[name].Sources {
			label, needs := name, "requires "+traits[name].Needs
			if i > 0 {
				label, needs = "", ""
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", label, src, needs)
		}
	}
	return tw.Flush()
}

func classText(w io.Writer, n int, c policy.ClassTrace, availability map[string]cluster.Availability, placed bool) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	gpu, listed, handler := "no GPU", "", "not in the cluster"
	if c.GPU {
		gpu = "GPU"
	}
	if !c.Listed {
		listed = ", not in data.config.classes"
	}
	if c.Exists {
		handler = fmt.Sprintf("handler %q", c.Handler)
	}
	p("  %d. %s (%s): isolation %d, %s%s\n", n, c.Name, handler, c.Isolation, gpu, listed)
	p("       meets the requirements: %s\n", yesNo(c.Meets))
	p("       available: %s: %s\n", yesNo(c.Available), c.AvailabilityReason)
	switch a, ok := availability[c.Name]; {
	case ok && placed:
		p("       cluster-wide: %s\n", a.Reason)
	case ok && (!a.Available || strings.Contains(countsText(a.Counts), ";")):
		p("       nodes: %s\n", countsText(a.Counts)) // only when it says more than the line above
	}
	for _, conflict := range c.Conflicts {
		p("       nodeSelector conflict: %s\n", conflict)
	}
	p("       verdict: %s\n", c.Verdict)
}

// countsText says what the cluster view counted for a class, leaving out zeros.
func countsText(c cluster.Counts) string {
	parts := []string{fmt.Sprintf("%d usable of %d (%d via status.runtimeHandlers, %d via labels)", c.ByStatus+c.ByLabels, c.Nodes, c.ByStatus, c.ByLabels)}
	for _, x := range []struct {
		n    int
		what string
	}{
		{c.NotReady, "NotReady"}, {c.Cordoned, "cordoned"}, {c.Untolerated, "with untolerated taints"},
		{c.SelectorMismatch, "advertising it without the nodeSelector labels"},
		{c.Drift, "labelled for it without reporting the handler"}, {c.Unlabelled, "reporting no handlers and unlabelled"},
	} {
		if x.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", x.n, x.what))
		}
	}
	return strings.Join(parts, "; ")
}
