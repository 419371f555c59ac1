package cluster

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
)

// poolCluster is a cluster with node pools, zones and taints, as most clusters have.
func poolCluster(opts Options) *View {
	zone := func(z string) nodeOpt { return labelled("topology.kubernetes.io/zone", z) }
	pool := func(p string) nodeOpt { return labelled("pool", p) }
	nodes := []*corev1.Node{
		newNode("general-1", pool("general"), zone("a"), handlers("runc")),
		newNode("general-2", pool("general"), zone("b"), handlers("runc")),
		newNode("sandbox-1", pool("sandbox"), zone("a"), labelled(gvisorLabel, "true"), handlers("runc", "runsc"),
			tainted(gvisorLabel, "true", corev1.TaintEffectNoSchedule)),
		newNode("sandbox-2", pool("sandbox"), zone("b"), labelled(gvisorLabel, "true"), handlers("runc", "runsc"), markCordoned),
		newNode("sandbox-3", pool("sandbox"), zone("c"), labelled(gvisorLabel, "true"), handlers("runc", "runsc"), markNotReady,
			tainted("node.kubernetes.io/not-ready", "", corev1.TaintEffectNoExecute)),
		newNode("kata-1", pool("kata"), zone("b"), labelled(kataLabel, "true", "rank", "3"), handlers("runc", "kata-qemu")),
		// An older node whose runtime reports no handlers: the kata label says it runs kata.
		newNode("legacy-1", pool("legacy"), zone("a"), labelled(kataLabel, "true")),
		newNode("gpu-1", pool("gpu"), zone("a"), labelled("rank", "7"), handlers("runc", "nvidia"),
			tainted("nvidia.com/gpu", "present", corev1.TaintEffectNoExecute)),
	}
	classes := []*nodev1.RuntimeClass{
		gvisorClass(corev1.Toleration{Key: gvisorLabel, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}),
		newClass("kata", "kata-qemu", map[string]string{kataLabel: "true"}),
		newClass("runc", "runc", nil),
		newClass("nvidia", "nvidia", nil),
		newClass("mystery", "mystery", nil), // nobody reports it; legacy-1 might run it
	}
	return viewOf(opts, nodes, classes)
}

func affinity(terms ...corev1.NodeSelectorTerm) *corev1.NodeSelector {
	return &corev1.NodeSelector{NodeSelectorTerms: terms}
}

func expr(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

func exprs(rs ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
	return corev1.NodeSelectorTerm{MatchExpressions: rs}
}

func nameIs(op corev1.NodeSelectorOperator, name string) corev1.NodeSelectorTerm {
	return corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: op, Values: []string{name}}}}
}

// want is what a test expects of one class: the number of reachable nodes running its handler
// (-1: unknown, the class cannot tell) and words its reason must hold.
type want struct {
	nodes  int
	reason []string
}

func TestReach(t *testing.T) {
	tolerateGPU := []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists}}
	for _, tc := range []struct {
		name      string
		placement Placement
		// named is the class the Pod names: the API server has merged its scheduling in.
		named      string
		constraint string
		classes    map[string]want
	}{
		{
			name:       "nodeSelector: a pool without the handler leaves the class nowhere",
			placement:  Placement{NodeSelector: map[string]string{"pool": "general"}},
			constraint: "nodeSelector pool=general",
			classes: map[string]want{
				"gvisor": {0, []string{`nodeSelector pool=general matches 2 Ready nodes; handler "runsc" on 0 of them`}},
				"kata":   {0, []string{`handler "kata-qemu" on 0 of them`}},
				"runc":   {2, []string{`handler "runc" on 2 of them`}},
			},
		},
		{
			name:      "nodeSelector merged with the class's: cordoned and NotReady sandbox nodes do not count",
			placement: Placement{NodeSelector: map[string]string{"pool": "sandbox"}},
			classes:   map[string]want{"gvisor": {1, nil}, "kata": {0, nil}},
		},
		{
			name:      "the class's toleration lets it onto the tainted sandbox node; the pod's selector picks the zone",
			placement: Placement{NodeSelector: map[string]string{"topology.kubernetes.io/zone": "a"}},
			classes: map[string]want{
				"gvisor": {1, nil},
				"kata":   {1, []string{`handler "kata-qemu" on 1 of them`}}, // legacy-1, by its label
				"runc":   {1, []string{`handler "runc" on 3 of them, 1 of those reachable`}},
			},
		},
		{
			name:       "In: zone b has kata but no schedulable gVisor node",
			placement:  Placement{Affinity: affinity(exprs(expr("topology.kubernetes.io/zone", corev1.NodeSelectorOpIn, "b")))},
			constraint: "required node affinity (topology.kubernetes.io/zone In [b])",
			classes:    map[string]want{"gvisor": {0, []string{`handler "runsc" on 0 of them`}}, "kata": {1, nil}},
		},
		{
			name:      "NotIn also allows nodes without the key",
			placement: Placement{Affinity: affinity(exprs(expr("rank", corev1.NodeSelectorOpNotIn, "7")))},
			classes:   map[string]want{"runc": {3, nil}, "kata": {2, nil}},
		},
		{
			name:      "Exists",
			placement: Placement{Affinity: affinity(exprs(expr("rank", corev1.NodeSelectorOpExists)))},
			classes:   map[string]want{"kata": {1, nil}, "runc": {1, nil}},
		},
		{
			name:      "DoesNotExist",
			placement: Placement{Affinity: affinity(exprs(expr("rank", corev1.NodeSelectorOpDoesNotExist)))},
			classes:   map[string]want{"kata": {1, nil}, "gvisor": {1, nil}, "runc": {2, nil}},
		},
		{
			name:      "Gt compares integers; the GPU node's NoExecute taint keeps nvidia out",
			placement: Placement{Affinity: affinity(exprs(expr("rank", corev1.NodeSelectorOpGt, "5")))},
			classes: map[string]want{
				"nvidia": {0, []string{`handler "nvidia" on 1 of them, all with taints neither the pod nor the RuntimeClass tolerates (nvidia.com/gpu=present:NoExecute)`}},
				"kata":   {0, nil},
			},
		},
		{
			name:      "the pod's toleration adds to the class's",
			placement: Placement{Affinity: affinity(exprs(expr("rank", corev1.NodeSelectorOpGt, "5"))), Tolerations: tolerateGPU},
			classes:   map[string]want{"nvidia": {1, nil}},
		},
		{
			name:      "Lt",
			placement: Placement{Affinity: affinity(exprs(expr("rank", corev1.NodeSelectorOpLt, "5")))},
			classes:   map[string]want{"kata": {1, nil}, "nvidia": {0, nil}},
		},
		{
			name:      "requirements in a term are ANDed",
			placement: Placement{Affinity: affinity(exprs(expr("pool", corev1.NodeSelectorOpIn, "sandbox", "kata"), expr("topology.kubernetes.io/zone", corev1.NodeSelectorOpIn, "b")))},
			classes:   map[string]want{"gvisor": {0, nil}, "kata": {1, nil}},
		},
		{
			name:      "terms are ORed, matchFields picks a node by name",
			placement: Placement{Affinity: affinity(exprs(expr("pool", corev1.NodeSelectorOpIn, "general")), nameIs(corev1.NodeSelectorOpIn, "sandbox-1"))},
			classes:   map[string]want{"gvisor": {1, nil}, "runc": {2, nil}},
		},
		{
			name:      "matchFields NotIn",
			placement: Placement{Affinity: affinity(nameIs(corev1.NodeSelectorOpNotIn, "sandbox-1"))},
			classes:   map[string]want{"gvisor": {0, nil}, "kata": {2, nil}},
		},
		{
			name:       "a DaemonSet pod pinned to a general node cannot get gVisor",
			placement:  Placement{Affinity: affinity(nameIs(corev1.NodeSelectorOpIn, "general-2"))},
			constraint: "required node affinity (metadata.name In [general-2])",
			classes:    map[string]want{"gvisor": {0, []string{`handler "runsc" on 0 of them`}}, "runc": {1, nil}},
		},
		{
			name: "a pod naming gvisor arrives with the class's nodeSelector and toleration merged in: they are not its own",
			placement: Placement{
				NodeSelector: map[string]string{"pool": "general", gvisorLabel: "true"},
				Tolerations:  []corev1.Toleration{{Key: gvisorLabel, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
			},
			named:      "gvisor",
			constraint: "nodeSelector pool=general",
			classes: map[string]want{
				"gvisor": {0, []string{`nodeSelector pool=general matches 2 Ready nodes; handler "runsc" on 0 of them`}},
				"runc":   {2, nil},
			},
		},
		{
			name:      "a bound pod naming gvisor, merged selector and all",
			placement: Placement{NodeName: "general-1", NodeSelector: map[string]string{gvisorLabel: "true"}},
			named:     "gvisor",
			classes: map[string]want{
				"gvisor": {0, []string{`spec.nodeName "general-1" does not run handler "runsc" (RuntimeClass "gvisor"): the kubelet would fail the Pod`}},
			},
		},
		{
			name:      "a bound pod ignores cordon",
			placement: Placement{NodeName: "sandbox-2"},
			classes:   map[string]want{"gvisor": {1, []string{`spec.nodeName "sandbox-2" runs handler "runsc"`}}},
		},
		{
			name:      "a bound pod: a node without the handler fails it",
			placement: Placement{NodeName: "general-1"},
			classes: map[string]want{
				"gvisor": {0, []string{`spec.nodeName "general-1" does not run handler "runsc" (RuntimeClass "gvisor"): the kubelet would fail the Pod`}},
				"runc":   {1, nil},
			},
		},
		{
			name:      "a bound pod: NoSchedule is the scheduler's business, NoExecute is not",
			placement: Placement{NodeName: "gpu-1"},
			classes: map[string]want{
				"nvidia": {0, []string{`spec.nodeName "gpu-1" has a NoExecute taint neither the pod nor RuntimeClass "nvidia" tolerates`}},
			},
		},
		{
			name:      "a bound pod on a NotReady node that tolerates not-ready for a while",
			placement: Placement{NodeName: "sandbox-3", Tolerations: []corev1.Toleration{{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}}},
			classes:   map[string]want{"gvisor": {1, nil}},
		},
		{
			name:      "a bound pod whose own selector misses its node",
			placement: Placement{NodeName: "sandbox-1", NodeSelector: map[string]string{"pool": "general"}},
			classes:   map[string]want{"gvisor": {0, []string{`spec.nodeName "sandbox-1" does not match the pod's own nodeSelector`}}},
		},
		{
			name:      "a bound pod on a node the cluster does not have",
			placement: Placement{NodeName: "ghost"},
			classes:   map[string]want{"runc": {0, []string{`spec.nodeName "ghost" is not a Node in the cluster`}}},
		},
		{
			name:      "a node reporting no handlers: unknown for a class without a nodeSelector",
			placement: Placement{NodeSelector: map[string]string{"pool": "legacy"}},
			classes: map[string]want{
				"mystery": {-1, []string{`cannot tell whether handler "mystery" runs on any of them: 1 report no status.runtimeHandlers`}},
				"kata":    {1, nil},
			},
		},
		{
			name:       "a selector every usable node matches is the cluster-wide answer",
			placement:  Placement{NodeSelector: map[string]string{"kubernetes.io/os": "linux"}, Tolerations: []corev1.Toleration{{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}}},
			constraint: "",
			classes:    map[string]want{"gvisor": {1, []string{`1 of 8 nodes can run handler "runsc"`}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.placement.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			_, r := poolCluster(Options{}).Reach(&tc.placement, tc.named)
			if tc.constraint != "" || tc.name == "a selector every usable node matches is the cluster-wide answer" {
				if r.Constraint != tc.constraint {
					t.Errorf("constraint %q, want %q", r.Constraint, tc.constraint)
				}
			}
			for class, w := range tc.classes {
				got := r.Classes[class]
				switch {
				case w.nodes < 0 && (got.Known || !got.Available):
					t.Errorf("%s: known=%v available=%v, want unknown and allowed (%s)", class, got.Known, got.Available, got.Reason)
				case w.nodes >= 0 && (got.Nodes != w.nodes || got.Available != (w.nodes > 0) || !got.Known):
					t.Errorf("%s: %d nodes, available=%v known=%v, want %d (%s)", class, got.Nodes, got.Available, got.Known, w.nodes, got.Reason)
				}
				for _, s := range w.reason {
					if !strings.Contains(got.Reason, s) {
						t.Errorf("%s: reason %q lacks %q", class, got.Reason, s)
					}
				}
			}
		})
	}
}

func TestReachUnknownDeniedWhenAdvertisedHandlersAreRequired(t *testing.T) {
	_, r := poolCluster(Options{RequireAdvertisedHandlers: true}).Reach(&Placement{NodeSelector: map[string]string{"pool": "legacy"}}, "")
	if got := r.Classes["mystery"]; got.Available || got.Known || !strings.Contains(got.Reason, "--require-advertised-handlers") {
		t.Errorf("mystery: %+v, want unavailable and unknown, naming the flag", got)
	}
}

func TestReachFollowsNodeEvents(t *testing.T) {
	v := poolCluster(Options{})
	general := &Placement{NodeSelector: map[string]string{"pool": "general"}}
	if _, r := v.Reach(general, ""); r.Classes["gvisor"].Available {
		t.Fatal("gvisor reachable in the general pool before any general node runs it")
	}
	_, first := v.Reach(general, "")
	if _, again := v.Reach(general, ""); again != first {
		t.Error("the same placement on the same snapshot was computed twice (no cache hit)")
	}
	v.UpsertNode(newNode("general-1", labelled("pool", "general"), handlers("runc", "runsc")))
	if _, r := v.Reach(general, ""); r.Classes["gvisor"].Nodes != 0 {
		t.Errorf("general-1 runs runsc but lacks the class's nodeSelector: want 0 reachable, got %d", r.Classes["gvisor"].Nodes)
	}
	v.UpsertNode(newNode("general-1", labelled("pool", "general", gvisorLabel, "true"), handlers("runc", "runsc")))
	if _, r := v.Reach(general, ""); r.Classes["gvisor"].Nodes != 1 {
		t.Errorf("after labelling general-1: %d reachable, want 1 (%s)", r.Classes["gvisor"].Nodes, r.Classes["gvisor"].Reason)
	}
	v.DeleteNode("general-1")
	if _, r := v.Reach(general, ""); r.Count != 1 || r.Classes["gvisor"].Available {
		t.Errorf("after deleting general-1: %d general nodes, gvisor %+v; want 1 and unavailable", r.Count, r.Classes["gvisor"])
	}
}

func TestPlacementValidate(t *testing.T) {
	many := make([]corev1.NodeSelectorTerm, 10000)
	for i := range many {
		many[i] = exprs(expr("pool", corev1.NodeSelectorOpIn, fmt.Sprint(i)))
	}
	for _, tc := range []struct {
		name      string
		placement Placement
		want      string
	}{
		{"unknown operator", Placement{Affinity: affinity(exprs(expr("a", "Near", "b")))},
			`spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator: Unsupported value: "Near"`},
		{"Gt with a word", Placement{Affinity: affinity(exprs(expr("rank", corev1.NodeSelectorOpGt, "high")))},
			`nodeSelectorTerms[0].matchExpressions[0].values[0]: Invalid value: "high"`},
		{"In without values", Placement{Affinity: affinity(exprs(expr("pool", corev1.NodeSelectorOpIn)))},
			`nodeSelectorTerms[0].matchExpressions[0].values`},
		{"matchFields on a label", Placement{Affinity: affinity(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{expr("metadata.name", corev1.NodeSelectorOpExists)}})},
			`nodeSelectorTerms[0].matchFields[0].operator: Unsupported value: "Exists"`},
		{"no terms", Placement{Affinity: affinity()}, `nodeSelectorTerms: Required value`},
		{"an empty term", Placement{Affinity: affinity(corev1.NodeSelectorTerm{})}, `nodeSelectorTerms[0]: Invalid value: "{}": an empty term matches no node`},
		{"10,000 terms", Placement{Affinity: affinity(many...)}, `nodeSelectorTerms: Too many: 10000: must have at most 100 items`},
		{"a toleration with an unknown effect", Placement{Tolerations: []corev1.Toleration{{Key: "a", Operator: corev1.TolerationOpExists, Effect: "NoRun"}}},
			`spec.tolerations[0].effect: Unsupported value: "NoRun"`},
		{"a toleration with an unknown operator", Placement{Tolerations: []corev1.Toleration{{Key: "a", Operator: "Like"}}},
			`spec.tolerations[0].operator: Unsupported value: "Like"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.placement.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if err := (&Placement{NodeName: "n", NodeSelector: map[string]string{"a": "b"}, Affinity: affinity(exprs(expr("rank", corev1.NodeSelectorOpGt, "3")))}).Validate(); err != nil {
		t.Errorf("a valid placement: %v", err)
	}
}

// TestReachAgreesWithTheScheduler checks the index against the scheduler's own helpers applied
// Node by Node, over random clusters, churn and placements using every operator.
func TestReachAgreesWithTheScheduler(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	keys := []string{"pool", "zone", "rank", "gpu"}
	values := map[string][]string{"pool": {"a", "b", "c"}, "zone": {"x", "y"}, "rank": {"1", "5", "9", "ten"}, "gpu": {"true"}}
	randomNode := func(name string) *corev1.Node {
		n := newNode(name)
		for _, k := range keys {
			if rng.IntN(3) > 0 {
				n.Labels[k] = pick(values[k]...)
			}
		}
		if rng.IntN(4) > 0 {
			var hs []string
			for _, h := range []string{"runc", "runsc", "kata"} {
				if rng.IntN(2) == 0 {
					hs = append(hs, h)
				}
			}
			handlers(hs...)(n)
		} else {
			n.Status.RuntimeHandlers = nil
		}
		if rng.IntN(6) == 0 {
			markNotReady(n)
		}
		if rng.IntN(6) == 0 {
			markCordoned(n)
		}
		if rng.IntN(3) == 0 {
			tainted(pick("dedicated", "gpu"), pick("", "yes"), corev1.TaintEffect(pick("NoSchedule", "NoExecute", "PreferNoSchedule")))(n)
		}
		return n
	}
	randomRequirement := func() corev1.NodeSelectorRequirement {
		k := pick(keys...)
		switch op := corev1.NodeSelectorOperator(pick("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")); op {
		case corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist:
			return expr(k, op)
		case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
			return expr(k, op, pick("0", "4", "8"))
		default:
			return expr(k, op, pick(values[k]...), pick(values[k]...))
		}
	}
	classes := []*nodev1.RuntimeClass{
		newClass("runsc", "runsc", nil),
		newClass("kata", "kata", map[string]string{"pool": "b"}),
		newClass("runc", "runc", nil, corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpExists}),
	}
	const nodes = 40
	var all []*corev1.Node
	for i := range nodes {
		all = append(all, randomNode(fmt.Sprintf("n%d", i)))
	}
	v := viewOf(Options{}, all, classes)
	checked := 0
	for round := range 300 {
		// Churn: replace and delete nodes so slots are freed and reused.
		i := rng.IntN(nodes)
		if round%5 == 0 {
			v.DeleteNode(all[i].Name)
			all[i] = randomNode(all[i].Name)
		} else {
			all[i] = randomNode(all[i].Name)
		}
		v.UpsertNode(all[i])

		var p Placement
		if rng.IntN(5) == 0 {
			p.NodeName = fmt.Sprintf("n%d", rng.IntN(nodes+2))
		}
		if rng.IntN(2) == 0 {
			k := pick(keys...)
			p.NodeSelector = map[string]string{k: pick(values[k]...)}
		}
		if rng.IntN(2) == 0 {
			var terms []corev1.NodeSelectorTerm
			for range 1 + rng.IntN(3) {
				term := exprs()
				for range 1 + rng.IntN(3) {
					term.MatchExpressions = append(term.MatchExpressions, randomRequirement())
				}
				if rng.IntN(4) == 0 {
					term.MatchFields = nameIs(corev1.NodeSelectorOperator(pick("In", "NotIn")), fmt.Sprintf("n%d", rng.IntN(nodes))).MatchFields
				}
				terms = append(terms, term)
			}
			p.Affinity = affinity(terms...)
		}
		if rng.IntN(2) == 0 {
			p.Tolerations = []corev1.Toleration{{Key: pick("gpu", "dedicated"), Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffect(pick("", "NoSchedule", "NoExecute"))}}
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("round %d: generated an invalid placement: %v", round, err)
		}
		_, r := v.Reach(&p, "")
		for _, rc := range classes {
			want := schedulerCount(t, all, &p, rc)
			if got := r.Classes[rc.Name]; got.Nodes != want {
				t.Fatalf("round %d, class %s, placement %+v: index says %d nodes, the scheduler's helpers %d (%s)", round, rc.Name, p, got.Nodes, want, got.Reason)
			}
			checked++
		}
	}
	t.Logf("%d placements x classes agree", checked)
}

// schedulerCount counts, Node by Node with the scheduler's helpers, the Nodes where a Pod with
// placement p and class rc can run and whose status lists the handler (or, reporting none,
// carry the class's nodeSelector).
func schedulerCount(t *testing.T, nodes []*corev1.Node, p *Placement, rc *nodev1.RuntimeClass) int {
	t.Helper()
	// The RuntimeClass admission plugin merges the class's scheduling into the Pod.
	selector := maps.Clone(p.NodeSelector)
	if selector == nil {
		selector = map[string]string{}
	}
	tolerations := append([]corev1.Toleration(nil), p.Tolerations...)
	if rc.Scheduling != nil {
		for k, v := range rc.Scheduling.NodeSelector {
			if w, ok := selector[k]; ok && w != v {
				return 0 // the API server refuses the merge
			}
		}
		maps.Copy(selector, rc.Scheduling.NodeSelector)
		tolerations = append(tolerations, rc.Scheduling.Tolerations...)
	}
	pod := &corev1.Pod{Spec: corev1.PodSpec{NodeName: p.NodeName, NodeSelector: selector, Tolerations: tolerations}}
	if p.Affinity != nil {
		pod.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: p.Affinity}}
	}
	required := nodeaffinity.GetRequiredNodeAffinity(pod)
	count := 0
	for _, n := range nodes {
		bound := p.NodeName != ""
		if bound && n.Name != p.NodeName {
			continue
		}
		if !bound && (n.Spec.Unschedulable || !isReady(n)) {
			continue
		}
		if ok, err := required.Match(n); err != nil || !ok {
			continue
		}
		_, untolerated := corev1helpers.FindMatchingUntoleratedTaint(klog.Background(), n.Spec.Taints, tolerations, func(t *corev1.Taint) bool {
			return t.Effect == corev1.TaintEffectNoExecute || !bound && t.Effect == corev1.TaintEffectNoSchedule
		}, true)
		if untolerated {
			continue
		}
		runs := false
		for _, h := range n.Status.RuntimeHandlers {
			runs = runs || h.Name == rc.Handler
		}
		if len(n.Status.RuntimeHandlers) == 0 {
			runs = rc.Scheduling != nil && len(rc.Scheduling.NodeSelector) > 0
		}
		if runs {
			count++
		}
	}
	return count
}

func isReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
