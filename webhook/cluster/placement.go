package cluster

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
)

// Placement is what a Pod asks of the Node it runs on: the fields the scheduler and the kubelet
// read. The RuntimeClass's scheduling.nodeSelector and tolerations are added per class, as the
// API server's RuntimeClass plugin does.
type Placement struct {
	NodeName     string
	NodeSelector map[string]string
	// Affinity is spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.
	Affinity    *corev1.NodeSelector
	Tolerations []corev1.Toleration
}

// Bounds on what one Pod may ask. The mutating webhook sees a Pod before the API server
// validates it; without them a Pod with 10,000 affinity terms would cost 10,000 bitmap passes.
const (
	maxAffinityTerms     = 100
	maxTermRequirements  = 100
	maxRequirementValues = 1000
	maxTolerations       = 500
)

var affinityPath = field.NewPath("spec", "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution")

// Validate reports malformed placement, each error naming the field, as the API server would.
func (p *Placement) Validate() error {
	var errs field.ErrorList
	if a := p.Affinity; a != nil {
		terms := affinityPath.Child("nodeSelectorTerms")
		switch n := len(a.NodeSelectorTerms); {
		case n == 0:
			errs = append(errs, field.Required(terms, "at least one term; remove requiredDuringSchedulingIgnoredDuringExecution to require nothing"))
		case n > maxAffinityTerms:
			errs = append(errs, field.TooMany(terms, n, maxAffinityTerms))
		}
		for i := range a.NodeSelectorTerms {
			if i >= maxAffinityTerms {
				break
			}
			t := &a.NodeSelectorTerms[i]
			path := terms.Index(i)
			switch n := len(t.MatchExpressions) + len(t.MatchFields); {
			case n == 0:
				errs = append(errs, field.Invalid(path, "{}", "an empty term matches no node; give it matchExpressions or matchFields, or remove it"))
			case n > maxTermRequirements:
				errs = append(errs, field.TooMany(path, n, maxTermRequirements))
			}
			for j, r := range t.MatchExpressions {
				if len(r.Values) > maxRequirementValues {
					errs = append(errs, field.TooMany(path.Child("matchExpressions").Index(j).Child("values"), len(r.Values), maxRequirementValues))
				}
			}
		}
		if len(errs) == 0 {
			if _, err := nodeaffinity.NewNodeSelector(a, field.WithPath(affinityPath)); err != nil {
				return err
			}
		}
	}
	tolerations := field.NewPath("spec", "tolerations")
	if len(p.Tolerations) > maxTolerations {
		errs = append(errs, field.TooMany(tolerations, len(p.Tolerations), maxTolerations))
	}
	for i, t := range p.Tolerations {
		switch t.Effect {
		case "", corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		default:
			errs = append(errs, field.NotSupported(tolerations.Index(i).Child("effect"), t.Effect,
				[]corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute}))
		}
		switch t.Operator {
		case "", corev1.TolerationOpExists, corev1.TolerationOpEqual, corev1.TolerationOpGt, corev1.TolerationOpLt:
		default:
			errs = append(errs, field.NotSupported(tolerations.Index(i).Child("operator"), t.Operator,
				[]corev1.TolerationOperator{corev1.TolerationOpExists, corev1.TolerationOpEqual, corev1.TolerationOpGt, corev1.TolerationOpLt}))
		}
	}
	return errs.ToAggregate()
}

// withoutClass removes what the API server's RuntimeClass plugin merged in from class c before
// any webhook runs: its nodeSelector entries and tolerations. They are the class's, not the
// Pod's own, and are added back per class. (The plugin refuses conflicting values, so an entry
// equal to the class's is the class's.)
func (p *Placement) withoutClass(c *Class) *Placement {
	if len(c.NodeSelector) == 0 && len(c.Tolerations) == 0 {
		return p
	}
	out := *p
	if len(c.NodeSelector) > 0 && len(p.NodeSelector) > 0 {
		out.NodeSelector = make(map[string]string, len(p.NodeSelector))
		for k, v := range p.NodeSelector {
			if w, ok := c.NodeSelector[k]; !ok || w != v {
				out.NodeSelector[k] = v
			}
		}
	}
	if len(c.Tolerations) > 0 && len(p.Tolerations) > 0 {
		out.Tolerations = nil
		for _, t := range p.Tolerations {
			if !slices.ContainsFunc(c.Tolerations, func(ct corev1.Toleration) bool { return ct.MatchToleration(&t) }) {
				out.Tolerations = append(out.Tolerations, t)
			}
		}
	}
	return &out
}

// constrained reports whether the Pod narrows the Nodes at all; an unconstrained Pod can use
// the cluster-wide availability computed once per snapshot.
func (p *Placement) constrained() bool {
	return p.NodeName != "" || len(p.NodeSelector) > 0 || p.Affinity != nil || len(p.Tolerations) > 0
}

// Reach says whether one RuntimeClass can run one Pod, given where the Pod may land.
type Reach struct {
	// Available: some Node the Pod can reach under this class runs the class's handler, or
	// nothing can be known and unknown classes are allowed.
	Available bool `json:"available"`
	// Known is false when the reachable Nodes report no runtime handlers and the class has no
	// scheduling.nodeSelector to tell by.
	Known bool `json:"known"`
	// Nodes is the number of reachable Nodes that run the handler.
	Nodes int `json:"nodes"`
	// Detail is what happened to this class, relative to the Pod's constraint ("handler
	// \"runsc\" on 0 of them"); Reason is the whole sentence for users.
	Detail string `json:"detail"`
	Reason string `json:"reason"`
}

// PodReach is where one Pod can run, per RuntimeClass.
type PodReach struct {
	// Constraint describes what the Pod itself asks ("nodeSelector pool=general"); "" when it
	// asks nothing, and then Classes is the cluster-wide availability.
	Constraint string `json:"constraint"`
	// Nodes is what the constraint leaves ("matches 2 Ready nodes"), Count the number.
	Nodes string `json:"nodes"`
	Count int    `json:"count"`
	// Fix says how to relax the constraint.
	Fix     string           `json:"fix"`
	Classes map[string]Reach `json:"classes"`
}

// Reach is the availability as the reach of a Pod that asks nothing of its Node.
func (a Availability) Reach() Reach {
	return Reach{Available: a.Available, Known: a.Known, Nodes: a.Counts.ByStatus + a.Counts.ByLabels, Detail: a.Reason, Reason: a.Reason}
}

// unconstrainedReach is the PodReach of a Pod that asks nothing: each class's availability.
func unconstrainedReach(classes map[string]*Class) *PodReach {
	r := &PodReach{Classes: make(map[string]Reach, len(classes))}
	for name, c := range classes {
		r.Classes[name] = c.Availability.Reach()
	}
	return r
}

// Reach returns the snapshot and, for every RuntimeClass in it, whether the Pod described by p
// can run under it. named is the class the Pod names ("" for none). It combines index bitmaps
// (see nodeIndex) and never walks the Nodes. p must have passed Validate.
func (v *View) Reach(p *Placement, named string) (*Snapshot, *PodReach) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	snap := v.snap.Load()
	if c := snap.Classes[named]; c != nil {
		p = p.withoutClass(c)
	}
	if !p.constrained() || v.index.all.IsEmpty() {
		// An empty cluster knows nothing about any Pod: keep the cluster-wide answer.
		return snap, snap.unconstrained
	}
	if p.NodeName == "" && p.Affinity == nil && !v.index.narrows(p.NodeSelector) && !v.index.toleratesAny(p.Tolerations, v.index.usable) {
		// The Pod excludes no usable Node (kubernetes.io/os=linux in a Linux cluster) and
		// tolerates no taint they have (the not-ready/unreachable tolerations every Pod gets):
		// the cluster-wide answer is the same, and says it better. Allocates nothing.
		return snap, snap.unconstrained
	}
	// Replicas of one template share their placement: compute it once per snapshot.
	key := placementKey(p)
	if r := v.reaches.get(snap.Generation, key); r != nil {
		return snap, r
	}
	r := v.index.reach(p, v.index.own(p), snap.Classes, v.opts.RequireAdvertisedHandlers)
	v.reaches.put(snap.Generation, key, r)
	return snap, r
}

// narrows reports whether selector excludes some usable Node, without allocating.
func (x *nodeIndex) narrows(selector map[string]string) bool {
	n := x.usable.GetCardinality()
	if n == 0 {
		return false // nothing to exclude
	}
	for k, v := range selector {
		if b := x.values[k][v]; b == nil || x.usable.AndCardinality(b) != n {
			return true
		}
	}
	return false
}

// maxReaches bounds the reach cache. Replicas of one template share a placement, so a cluster
// has few that repeat; Pods pinned to one node each (DaemonSets, bound Pods) never repeat and
// only fill it. An entry is ~1.4 KB with 4 RuntimeClasses and ~3 KB with 10 (each class's
// reason), so 1,024 entries held ~3 MB of the live heap under a DaemonSet rollout.
const maxReaches = 256

// reachCache maps a placement (placementKey) to its PodReach for one snapshot generation.
type reachCache struct {
	mu  sync.Mutex
	gen uint64
	m   map[string]*PodReach
}

func (c *reachCache) get(gen uint64, key string) *PodReach {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return nil
	}
	return c.m[key]
}

// forget empties the cache (benchmarks measure a miss with it).
func (c *reachCache) forget() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

func (c *reachCache) put(gen uint64, key string, r *PodReach) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || c.m == nil || len(c.m) >= maxReaches {
		c.gen, c.m = gen, make(map[string]*PodReach)
	}
	c.m[key] = r
}

// placementKey is p in canonical form: what reach depends on, NUL-separated (no label, key or
// value may hold a NUL). Cheaper than encoding/json, which matters on the cache-hit path.
func placementKey(p *Placement) string {
	var b strings.Builder
	field := func(s string) { b.WriteString(s); b.WriteByte(0) }
	field(p.NodeName)
	keys := make([]string, 0, len(p.NodeSelector))
	for k := range p.NodeSelector {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		field(k)
		field(p.NodeSelector[k])
	}
	b.WriteByte(1)
	if p.Affinity != nil {
		for _, t := range p.Affinity.NodeSelectorTerms {
			for _, list := range [][]corev1.NodeSelectorRequirement{t.MatchExpressions, t.MatchFields} {
				for _, r := range list {
					field(r.Key)
					field(string(r.Operator))
					for _, v := range r.Values {
						field(v)
					}
					b.WriteByte(2)
				}
				b.WriteByte(3)
			}
			b.WriteByte(4)
		}
	}
	b.WriteByte(5)
	for _, t := range p.Tolerations {
		field(t.Key)
		field(string(t.Operator))
		field(t.Value)
		field(string(t.Effect))
	}
	return b.String()
}

func (x *nodeIndex) reach(p *Placement, own *roaring.Bitmap, classes map[string]*Class, requireAdvertised bool) *PodReach {
	bound := p.NodeName != ""
	_, exists := x.slots[p.NodeName]
	r := &PodReach{Constraint: constraintText(p), Count: int(own.GetCardinality()), Classes: make(map[string]Reach, len(classes))}
	switch {
	case bound && !exists:
		r.Nodes = fmt.Sprintf("spec.nodeName %q is not a Node in the cluster", p.NodeName)
		r.Fix = "bind the pod to an existing node, or leave spec.nodeName to the scheduler"
	case bound && own.IsEmpty():
		r.Nodes = fmt.Sprintf("spec.nodeName %q does not match the pod's own nodeSelector or required node affinity", p.NodeName)
		r.Fix = "make the pod's nodeSelector and node affinity match its node, or leave spec.nodeName to the scheduler"
	case bound:
		r.Nodes = fmt.Sprintf("spec.nodeName %q", p.NodeName)
		r.Fix = "bind the pod to a node that runs the handler, or leave spec.nodeName to the scheduler"
	case r.Constraint == "":
		r.Nodes = fmt.Sprintf("the cluster has %d %s", r.Count, plural(r.Count, "Ready, schedulable node", "Ready, schedulable nodes"))
		r.Fix = "run the handler on a node"
	default:
		r.Nodes = fmt.Sprintf("%s matches %d %s", r.Constraint, r.Count, plural(r.Count, "Ready node", "Ready nodes"))
		r.Fix = "remove or widen the pod's " + constraintNoun(p)
	}
	for name, c := range classes {
		r.Classes[name] = x.classReach(p, own, c, r, requireAdvertised)
	}
	return r
}

// own returns the Nodes the Pod's own nodeName, nodeSelector and required affinity allow. A
// bound Pod skips the scheduler's rules (Ready, cordon): the kubelet checks only the selectors
// and NoExecute taints.
func (x *nodeIndex) own(p *Placement) *roaring.Bitmap {
	var out *roaring.Bitmap
	if p.NodeName != "" {
		out = x.nodeSlot(p.NodeName)
	} else {
		out = x.usable.Clone()
	}
	if len(p.NodeSelector) > 0 {
		out.And(x.labelled(p.NodeSelector))
	}
	if p.Affinity != nil && !out.IsEmpty() {
		out.And(x.affinity(p.Affinity))
	}
	return out
}

// classReach narrows the Pod's Nodes step by step for class c: runs the handler, matches the
// class's scheduling.nodeSelector, tolerates the taints. Each step's count goes into the words.
func (x *nodeIndex) classReach(p *Placement, own *roaring.Bitmap, c *Class, r *PodReach, requireAdvertised bool) Reach {
	bound := p.NodeName != ""
	cs := x.classSetsOf(c)
	withHandler := roaring.And(own, cs.runsOrSilent)
	matching := withHandler
	if len(c.NodeSelector) > 0 {
		matching = roaring.And(withHandler, cs.selected)
	}
	// Taints are few and shared by many Nodes: take out, in place, the Nodes of every taint the
	// Pod's and the class's tolerations together do not tolerate.
	tolerations := append(append([]corev1.Toleration(nil), p.Tolerations...), c.Tolerations...)
	tolerated := matching.Clone()
	var taints []taintKey
	for t, b := range x.taints {
		if (bound && t.Effect != corev1.TaintEffectNoExecute) || !b.Intersects(tolerated) {
			continue
		}
		taint := corev1.Taint{Key: t.Key, Value: t.Value, Effect: t.Effect}
		if !corev1helpers.TolerationsTolerateTaint(klog.Background(), tolerations, &taint, true) {
			tolerated.AndNot(b)
			taints = append(taints, t)
		}
	}
	knownN := tolerated.AndCardinality(cs.runs)
	unknownN := tolerated.GetCardinality() - knownN
	runsN := own.AndCardinality(cs.runs)

	handler := fmt.Sprintf("handler %q", c.Handler)
	out := Reach{Known: true, Nodes: int(knownN)}
	steps := fmt.Sprintf("%s on %d of them", handler, runsN)
	switch {
	case c.Handler == "":
		out.Detail = "the RuntimeClass has an empty handler, so no node can run it"
	case knownN > 0:
		out.Available = true
		out.Detail = steps
		if knownN != runsN {
			out.Detail = fmt.Sprintf("%s, %d of those reachable", steps, out.Nodes)
		}
	case unknownN > 0:
		out.Known = false
		out.Available = !requireAdvertised
		out.Detail = fmt.Sprintf("cannot tell whether %s runs on any of them: %d report no status.runtimeHandlers and the RuntimeClass has no scheduling.nodeSelector",
			handler, unknownN)
		if requireAdvertised {
			out.Detail += "; --require-advertised-handlers is set"
		}
	case withHandler.IsEmpty():
		out.Detail = steps
	case matching.IsEmpty():
		out.Detail = fmt.Sprintf("%s, none labelled %s (its scheduling.nodeSelector)", steps, selectorText(c.NodeSelector))
	default:
		out.Detail = fmt.Sprintf("%s, all with taints neither the pod nor the RuntimeClass tolerates (%s)", steps, x.exampleTaint(taints, matching))

	}
	out.Reason = reachReason(p, r, c, out)
	return out
}

// classSets are the Nodes that matter to one class whatever the Pod: computed once per snapshot
// generation, so a decision only intersects them with the Pod's own Nodes.
type classSets struct {
	// runs: status.runtimeHandlers lists the handler, or (label fallback) the Node reports no
	// handlers and the class has a nodeSelector. silent: reports none and the class has none.
	runs, runsOrSilent *roaring.Bitmap
	// selected: the Nodes carrying the class's scheduling.nodeSelector labels.
	selected *roaring.Bitmap
}

func (x *nodeIndex) classSetsOf(c *Class) *classSets {
	x.setsMu.Lock()
	defer x.setsMu.Unlock()
	if cs := x.sets[c]; cs != nil {
		return cs
	}
	cs := &classSets{runs: roaring.New(), runsOrSilent: roaring.New(), selected: x.labelled(c.NodeSelector)}
	if c.Handler != "" {
		if b := x.handlers[c.Handler]; b != nil {
			cs.runs.Or(b)
		}
		cs.runsOrSilent.Or(cs.runs)
		notReporting := roaring.AndNot(x.all, x.reporting)
		if len(c.NodeSelector) > 0 {
			cs.runs.Or(notReporting)
		}
		cs.runsOrSilent.Or(notReporting)
	}
	x.sets[c] = cs
	return cs
}

// reachReason is the sentence a denial quotes: for a bound Pod what the kubelet would do, for
// others the Pod's constraint and then the class's step.
func reachReason(p *Placement, r *PodReach, c *Class, out Reach) string {
	if p.NodeName == "" || r.Count == 0 {
		return r.Nodes + "; " + out.Detail
	}
	switch {
	case out.Available && out.Known:
		return fmt.Sprintf("spec.nodeName %q runs handler %q (RuntimeClass %q)", p.NodeName, c.Handler, c.Name)
	case out.Available || !out.Known:
		return fmt.Sprintf("spec.nodeName %q: %s", p.NodeName, out.Detail)
	case strings.Contains(out.Detail, "none labelled"):
		return fmt.Sprintf("spec.nodeName %q lacks RuntimeClass %q's scheduling.nodeSelector %s: the kubelet would reject the Pod",
			p.NodeName, c.Name, selectorText(c.NodeSelector))
	case strings.Contains(out.Detail, "taints"):
		return fmt.Sprintf("spec.nodeName %q has a NoExecute taint neither the pod nor RuntimeClass %q tolerates: the kubelet would evict the Pod",
			p.NodeName, c.Name)
	}
	return fmt.Sprintf("spec.nodeName %q does not run handler %q (RuntimeClass %q): the kubelet would fail the Pod", p.NodeName, c.Handler, c.Name)
}

// affinity returns the Nodes required node affinity allows: terms ORed.
func (x *nodeIndex) affinity(ns *corev1.NodeSelector) *roaring.Bitmap {
	out := roaring.New()
	for i := range ns.NodeSelectorTerms {
		out.Or(x.term(&ns.NodeSelectorTerms[i]))
	}
	return out
}

// term returns the Nodes one nodeSelectorTerm allows: requirements ANDed; an empty term none.
func (x *nodeIndex) term(t *corev1.NodeSelectorTerm) *roaring.Bitmap {
	if len(t.MatchExpressions) == 0 && len(t.MatchFields) == 0 {
		return roaring.New()
	}
	out := x.all.Clone()
	for _, r := range t.MatchExpressions {
		if out.IsEmpty() {
			return out
		}
		out.And(x.expression(r))
	}
	for _, r := range t.MatchFields {
		if out.IsEmpty() {
			return out
		}
		out.And(x.field(r))
	}
	return out
}

// expression returns the Nodes one matchExpression allows. The operators' meaning is the
// scheduler's own (component-helpers' nodeaffinity), asked once per distinct label value of
// the key rather than once per Node; In needs only its listed values.
func (x *nodeIndex) expression(r corev1.NodeSelectorRequirement) *roaring.Bitmap {
	judge, err := nodeaffinity.NewNodeSelector(&corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
		MatchExpressions: []corev1.NodeSelectorRequirement{r},
	}}})
	out := roaring.New()
	if err != nil {
		return out // Validate reports it; nothing matches a broken requirement
	}
	probe := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{}}}
	matches := func(value string) bool {
		probe.Labels[r.Key] = value
		return judge.Match(probe)
	}
	values := x.values[r.Key]
	if r.Operator == corev1.NodeSelectorOpIn {
		for _, v := range r.Values {
			if b := values[v]; b != nil && matches(v) {
				out.Or(b)
			}
		}
	} else {
		for v, b := range values {
			if matches(v) {
				out.Or(b)
			}
		}
	}
	// NotIn and DoesNotExist also allow Nodes without the key.
	if judge.Match(&corev1.Node{}) {
		missing := x.all.Clone()
		if k := x.keys[r.Key]; k != nil {
			missing.AndNot(k)
		}
		out.Or(missing)
	}
	return out
}

// field returns the Nodes one matchFields requirement allows. Kubernetes supports only
// metadata.name with In or NotIn and exactly one value (Validate enforces it through the
// scheduler's own parser).
func (x *nodeIndex) field(r corev1.NodeSelectorRequirement) *roaring.Bitmap {
	if r.Key != "metadata.name" || len(r.Values) != 1 {
		return roaring.New()
	}
	named := x.nodeSlot(r.Values[0])
	switch r.Operator {
	case corev1.NodeSelectorOpIn:
		return named
	case corev1.NodeSelectorOpNotIn:
		return roaring.AndNot(x.all, named)
	}
	return roaring.New()
}

// toleratesAny reports whether tolerations tolerate a NoSchedule/NoExecute taint of nodes.
func (x *nodeIndex) toleratesAny(tolerations []corev1.Toleration, nodes *roaring.Bitmap) bool {
	if len(tolerations) == 0 {
		return false
	}
	for t, b := range x.taints {
		taint := corev1.Taint{Key: t.Key, Value: t.Value, Effect: t.Effect}
		if b.Intersects(nodes) && corev1helpers.TolerationsTolerateTaint(klog.Background(), tolerations, &taint, true) {
			return true
		}
	}
	return false
}

// exampleTaint names the first (sorted) untolerated taint present on nodes.
func (x *nodeIndex) exampleTaint(taints []taintKey, nodes *roaring.Bitmap) string {
	var names []string
	for _, t := range taints {
		if x.taints[t].Intersects(nodes) {
			s := t.Key
			if t.Value != "" {
				s += "=" + t.Value
			}
			names = append(names, s+":"+string(t.Effect))
		}
	}
	sort.Strings(names)
	if len(names) > 2 {
		names = append(names[:2], "...")
	}
	return strings.Join(names, ", ")
}

// constraintText says in words what the Pod asks of its Node.
func constraintText(p *Placement) string {
	var parts []string
	if p.NodeName != "" {
		parts = append(parts, fmt.Sprintf("spec.nodeName %q", p.NodeName))
	}
	if len(p.NodeSelector) > 0 {
		parts = append(parts, "nodeSelector "+selectorText(p.NodeSelector))
	}
	if p.Affinity != nil {
		parts = append(parts, "required node affinity "+affinityText(p.Affinity))
	}
	return strings.Join(parts, " and ")
}

func constraintNoun(p *Placement) string {
	switch {
	case len(p.NodeSelector) > 0 && p.Affinity != nil:
		return "nodeSelector or required node affinity"
	case p.Affinity != nil:
		return "required node affinity"
	}
	return "nodeSelector"
}

// affinityText prints required node affinity compactly: (a In [x,y], b Exists) or (...).
func affinityText(ns *corev1.NodeSelector) string {
	const maxShown = 3
	var terms []string
	for i, t := range ns.NodeSelectorTerms {
		if i == maxShown {
			terms = append(terms, fmt.Sprintf("%d more terms", len(ns.NodeSelectorTerms)-maxShown))
			break
		}
		var reqs []string
		for _, r := range t.MatchExpressions {
			reqs = append(reqs, requirementText(r))
		}
		for _, r := range t.MatchFields {
			reqs = append(reqs, requirementText(r))
		}
		terms = append(terms, "("+strings.Join(reqs, ", ")+")")
	}
	return strings.Join(terms, " or ")
}

func requirementText(r corev1.NodeSelectorRequirement) string {
	const maxValues = 3
	switch r.Operator {
	case corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist:
		return r.Key + " " + string(r.Operator)
	}
	values := r.Values
	if len(values) > maxValues {
		values = append(append([]string(nil), values[:maxValues]...), "...")
	}
	return fmt.Sprintf("%s %s [%s]", r.Key, r.Operator, strings.Join(values, ","))
}
