// Package godecide is the default policy (policies/runtimeguard.rego) written by hand in Go,
// for the benchmark baseline: same data (policies/data.yaml), same traits, ranking,
// availability, placement and messages, no Rego and no decision cache. Where a Pod can run
// under each class comes from webhook/cluster's View.Reach, as it does for the policy (a Go
// author with this codebase would reuse it); the choice made from it is written here. A test
// checks that it decides exactly like the Rego policy.
package godecide

import (
	"cmp"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/runtimeguard/runtimeguard/policies"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// Trait and ClassDef are the entries of data.config.traits and data.config.classes.
type (
	Trait    = policy.Trait
	ClassDef = policy.ClassDef
)

// Policy is data.config, prepared for deciding.
type Policy struct {
	traitNames []string
	traits     map[string]*Trait
	classes    map[string]ClassDef
	ranked     []string
	labels     knownLabels // warn.go
}

// Load reads the default policy's data.yaml.
func Load() (*Policy, error) {
	b, err := fs.ReadFile(policies.FS, "data.yaml")
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// Parse reads a data.yaml holding config.traits and config.classes.
func Parse(b []byte) (*Policy, error) {
	var doc struct {
		Config struct {
			Traits        map[string]*Trait `json:"traits"`
			Classes       []ClassDef        `json:"classes"`
			NoTraitLabels noTraitLabels     `json:"no_trait_labels"`
			// Reads tells runtimeguard which labels to give the Rego; Go reads its own.
			Reads map[string]any `json:"reads"`
		} `json:"config"`
	}
	if err := yaml.UnmarshalStrict(b, &doc); err != nil {
		return nil, err
	}
	p := &Policy{traits: doc.Config.Traits, classes: map[string]ClassDef{}}
	p.labels = newKnownLabels(doc.Config.Traits, doc.Config.NoTraitLabels)
	for name := range p.traits {
		p.traitNames = append(p.traitNames, name)
	}
	sort.Strings(p.traitNames)
	type rank struct {
		gpu, iso, i int
		name        string
	}
	var ranks []rank
	for i, c := range doc.Config.Classes {
		if _, dup := p.classes[c.Name]; !dup {
			p.classes[c.Name] = c
		}
		g := 0
		if c.GPU {
			g = 1
		}
		ranks = append(ranks, rank{g, c.Isolation, i, c.Name})
	}
	// The Rego sorts [gpu_rank, isolation(name), index, name] tuples; isolation(name) is the
	// first definition of that name.
	for i := range ranks {
		ranks[i].iso = p.classes[ranks[i].name].Isolation
	}
	slices.SortFunc(ranks, func(a, b rank) int {
		return cmp.Or(cmp.Compare(a.gpu, b.gpu), cmp.Compare(a.iso, b.iso), cmp.Compare(a.i, b.i), strings.Compare(a.name, b.name))
	})
	for _, r := range ranks {
		p.ranked = append(p.ranked, r.name)
	}
	return p, nil
}

// Decision mirrors data.runtimeguard.decision.
type Decision struct {
	Class      string
	Acceptable []string
	Deny       []string
	Warn       []string
	Reasons    []string
	Traits     map[string][]string
	Isolation  int
	GPU        bool
}

type decider struct {
	p        *Policy
	ns       *cluster.Namespace
	pod      *policy.Pod
	snap     *cluster.Snapshot
	reach    *cluster.PodReach // nil: the cluster-wide availability
	claims   []cluster.ResolvedClaim
	traits   map[string][]string
	traitSet []string // sorted trait names the pod has
}

// Decide decides for one Pod whose placement per class is reach (View.Reach; nil: judge on the
// cluster-wide availability) and whose resource claims are resolved with claims (nil: none
// resolve).
func (p *Policy) Decide(ns *cluster.Namespace, pod *policy.Pod, snap *cluster.Snapshot, reach *cluster.PodReach, claims []cluster.ResolvedClaim) (*Decision, error) {
	d := &decider{p: p, ns: ns, pod: pod, snap: snap, reach: reach, claims: claims, traits: map[string][]string{}}
	if err := d.collectTraits(); err != nil {
		return nil, err
	}
	out := &Decision{Traits: d.traits}
	for _, t := range d.traitSet {
		out.Isolation = max(out.Isolation, p.traits[t].Requires.Isolation)
		out.GPU = out.GPU || p.traits[t].Requires.GPU
	}
	hasRequirement := out.Isolation > 0 || out.GPU

	var candidates, usable []string
	for _, name := range p.ranked {
		if d.meets(name) {
			candidates = append(candidates, name)
			if d.usable(name) {
				usable = append(usable, name)
			}
		}
	}
	if hasRequirement && len(usable) > 0 {
		out.Class = usable[0]
	}
	acc := map[string]bool{}
	for name := range snap.Classes {
		if d.meets(name) {
			acc[name] = true
		}
	}
	for _, name := range candidates {
		acc[name] = true
	}
	for name := range acc {
		out.Acceptable = append(out.Acceptable, name)
	}
	sort.Strings(out.Acceptable)

	reqText := requirementText(out.Isolation, out.GPU)
	named := pod.RuntimeClassName()
	suggested := ""
	if len(usable) > 0 {
		suggested = usable[0]
	} else if len(candidates) > 0 {
		suggested = candidates[0]
	}
	if hasRequirement && named != "" && !d.meets(named) {
		suggestion, fix := "no runtime class in data.config.classes provides it", "describe a class that provides it in data.config.classes"
		if suggested != "" {
			suggestion = fmt.Sprintf("runtime class %q or stronger", suggested)
			fix = fmt.Sprintf("remove spec.runtimeClassName to let runtimeguard choose, or set it to %q", suggested)
		}
		out.Deny = append(out.Deny, fmt.Sprintf("pod rejected: %s (%s); spec.runtimeClassName is %q; %s",
			d.unmetBecause(named), suggestion, named, fix))
	}
	var allSources []string
	for _, t := range d.traitSet {
		allSources = append(allSources, d.traits[t]...)
	}
	if hasRequirement && named == "" {
		details := []string{"no class in data.config.classes provides it"}
		if len(candidates) > 0 {
			details = details[:0]
			for _, c := range candidates {
				details = append(details, d.unavailableDetail(c))
			}
		}
		switch {
		case len(usable) == 0 && d.constraint() == "":
			out.Deny = append(out.Deny, fmt.Sprintf("pod rejected: %s, which needs %s, but no runtime class that provides it is available (%s); install the runtime on a node and make it advertise the handler, or create the RuntimeClass",
				strings.Join(allSources, " and "), reqText, strings.Join(details, "; ")))
		case len(usable) == 0:
			// The Pod's own placement leaves no node that runs a class providing what it needs;
			// classes missing from the cluster are left out when some exist.
			var existing []string
			for _, c := range candidates {
				if d.snap.Classes[c] != nil {
					existing = append(existing, d.unavailableDetail(c))
				}
			}
			if len(existing) > 0 {
				details = existing
			}
			out.Deny = append(out.Deny, fmt.Sprintf("pod rejected: %s, which needs %s, but %s (%s); %s, or run one of those handlers there",
				strings.Join(allSources, " and "), reqText, d.placementProblem(), strings.Join(details, "; "), d.reach.Fix))
		default:
			out.Deny = append(out.Deny, fmt.Sprintf("pod rejected: %s, which needs %s; spec.runtimeClassName is not set; set it to %q (runtimeguard's mutating webhook does this when it is registered)",
				strings.Join(allSources, " and "), reqText, out.Class))
		}
	}
	sort.Strings(out.Deny)
	out.Warn = d.warnings()

	// Reasons: traits, requirement, classes passed over, the choice.
	var traitReasons []string
	for _, t := range d.traitSet {
		for _, s := range d.traits[t] {
			traitReasons = append(traitReasons, fmt.Sprintf("trait %s: %s", t, s))
		}
	}
	sort.Strings(traitReasons)
	out.Reasons = traitReasons
	if hasRequirement {
		out.Reasons = append(out.Reasons, "requires "+reqText)
		choice := len(candidates)
		for i, c := range candidates {
			if c == out.Class {
				choice = i
				break
			}
		}
		for i, c := range candidates {
			if i < min(choice+1, len(candidates)) && !d.usable(c) {
				out.Reasons = append(out.Reasons, "skipped "+d.unavailableWhy(c, d.reachOf(c).Reason))
			}
		}
	} else {
		out.Reasons = append(out.Reasons, "no trait requires a sandboxed or GPU runtime")
	}
	if out.Class != "" {
		out.Reasons = append(out.Reasons, fmt.Sprintf("cheapest available class that provides %s: %q", reqText, out.Class))
	}
	return out, nil
}

func (d *decider) collectTraits() error {
	containers := append(append([]policy.Container(nil), d.pod.Spec.Containers...), d.pod.Spec.InitContainers...)
	for _, name := range d.p.traitNames {
		t := d.p.traits[name]
		var sources []string
		for k, v := range t.NamespaceLabels {
			if w, ok := d.ns.Labels[k]; ok && w == v {
				sources = append(sources, fmt.Sprintf("namespace %q is %s=%s", d.ns.Name, k, v))
			}
		}
		for k, v := range t.PodLabels {
			if w, ok := d.pod.Metadata.Labels[k]; ok && w == v {
				sources = append(sources, fmt.Sprintf("pod label %s=%s", k, v))
			}
		}
		for _, res := range t.ExtendedResources {
			for i := range containers {
				n, err := extended(&containers[i], res)
				if err != nil {
					return err
				}
				if n > 0 {
					sources = append(sources, fmt.Sprintf("container %q requests %s", containers[i].Name, res))
				}
			}
		}
		for _, c := range d.claims {
			if !c.Resolved {
				continue
			}
			for _, class := range c.DeviceClasses {
				if slices.Contains(t.DeviceClasses, class) {
					sources = append(sources, fmt.Sprintf("resource claim %q (%s) requests device class %s", c.Name, c.Source, class))
				}
			}
		}
		if len(sources) > 0 {
			sort.Strings(sources)
			d.traits[name] = slices.Compact(sources)
			d.traitSet = append(d.traitSet, name)
		}
	}
	return nil
}

// extended returns max(request, limit) of an extended resource, like input.go does.
func extended(c *policy.Container, name string) (int64, error) {
	if !strings.Contains(name, "/") {
		return 0, nil
	}
	var out int64
	for _, list := range []map[string]policy.Quantity{c.Resources.Requests, c.Resources.Limits} {
		q, ok := list[name]
		if !ok {
			continue
		}
		parsed, err := resource.ParseQuantity(string(q))
		if err != nil {
			return 0, fmt.Errorf("container %q: resources %s: %w", c.Name, name, err)
		}
		out = max(out, parsed.Value())
	}
	return out, nil
}

func (d *decider) meetsTrait(class, trait string) bool {
	c := d.p.classes[class] // zero value: isolation 0, no GPU
	t := d.p.traits[trait]
	return c.Isolation >= t.Requires.Isolation && (!t.Requires.GPU || c.GPU)
}

func (d *decider) meets(class string) bool {
	for _, t := range d.traitSet {
		if !d.meetsTrait(class, t) {
			return false
		}
	}
	return true
}

func (d *decider) conflicts(class string) bool {
	rc := d.snap.Classes[class]
	if rc == nil {
		return false
	}
	for k, v := range rc.NodeSelector {
		if w, ok := d.pod.Spec.NodeSelector[k]; ok && w != v {
			return true
		}
	}
	return false
}

// reachOf is whether class can run the Pod on a node it can land on: the Pod's reach when
// View.Reach computed one for the class, otherwise the cluster-wide availability.
func (d *decider) reachOf(class string) cluster.Reach {
	if d.reach != nil {
		if r, ok := d.reach.Classes[class]; ok {
			return r
		}
	}
	if rc := d.snap.Classes[class]; rc != nil {
		return rc.Availability.Reach()
	}
	return cluster.Reach{}
}

// constraint is what the Pod asks of its node, in words ("" when nothing).
func (d *decider) constraint() string {
	if d.reach == nil {
		return ""
	}
	return d.reach.Constraint
}

func (d *decider) usable(class string) bool {
	return d.reachOf(class).Available && !d.conflicts(class)
}

// placementProblem says what the Pod's placement leaves, for a denial.
func (d *decider) placementProblem() string {
	switch {
	case d.pod.Spec.NodeName == "":
		return d.reach.Nodes + ", none of which runs a class that provides it"
	case d.reach.Count > 0:
		return fmt.Sprintf("the pod is bound to node %q (spec.nodeName), which runs no class that provides it", d.pod.Spec.NodeName)
	}
	return d.reach.Nodes
}

// unavailableDetail says why class cannot serve the Pod after its placement was said;
// unavailableWhy with the reach's Reason says it whole.
func (d *decider) unavailableDetail(class string) string {
	return d.unavailableWhy(class, d.reachOf(class).Detail)
}

func (d *decider) unavailableWhy(class, why string) string {
	switch {
	case d.snap.Classes[class] == nil:
		return class + ": RuntimeClass not found"
	case d.conflicts(class):
		return class + ": its scheduling.nodeSelector conflicts with the pod's nodeSelector"
	default:
		return class + ": " + why
	}
}

func (d *decider) unmetBecause(class string) string {
	var parts []string
	for _, t := range d.traitSet {
		if d.meetsTrait(class, t) {
			continue
		}
		for _, s := range d.traits[t] {
			parts = append(parts, fmt.Sprintf("%s, which needs %s", s, needsText(d.p.traits[t])))
		}
	}
	return strings.Join(parts, " and ")
}

func needsText(t *Trait) string {
	switch {
	case t.Requires.Isolation > 0 && t.Requires.GPU:
		return fmt.Sprintf("isolation >= %d and a GPU runtime", t.Requires.Isolation)
	case t.Requires.GPU:
		return "a GPU runtime"
	default:
		return fmt.Sprintf("isolation >= %d", t.Requires.Isolation)
	}
}

func requirementText(iso int, gpu bool) string {
	switch {
	case iso > 0 && gpu:
		return fmt.Sprintf("isolation >= %d and a GPU runtime", iso)
	case gpu:
		return "a GPU runtime"
	default:
		return fmt.Sprintf("isolation >= %d", iso)
	}
}
