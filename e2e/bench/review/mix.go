package review

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// Variant is one kind of Pod in a mix and the class the mutating webhook must inject for it.
type Variant struct {
	Name     string
	Template *Template
	// Class is the class the patch must set; "" expects an allowed answer without a patch.
	Class string
	// Node, when set, names the node request i's Pod is bound or pinned to (it replaces
	// NodePlaceholder in the body).
	Node func(i uint64) string
}

// NodePlaceholder stands for a node name in a template; it has the length of the generated
// clusters' node names (node-00042), so bodies keep their length.
const NodePlaceholder = "node-NNNNN"

// The generated clusters' layout (e2e/bench/internal/fixtures), restated here so the
// expected answers do not come from the code under test: node i is named node-%05d, is in
// pool sandbox (gVisor, tainted) when i%10 == 0, kata when i%10 == 1, general (runc only)
// when i%10 >= 4, and in zone eu-west-1a, b, c by i%3.
const (
	poolLabel = "pool"
	zoneLabel = "topology.kubernetes.io/zone"
	osLabel   = "kubernetes.io/os"
)

func nodeName(i int) string { return fmt.Sprintf("node-%05d", i) }

// Mixes lists the mixes by name, for --mix.
var Mixes = map[string]string{
	"template": "the benchmark Pod as is (no placement constraint): gvisor",
	"pool":     "the benchmark Pod with nodeSelector kubernetes.io/os=linux plus pool=sandbox (gvisor), kata (kata) or general (nothing to inject), or os only (gvisor)",
	"bound":    "nodeName-bound and DaemonSet-pinned Pods (matchFields metadata.name, one node after another) on sandbox, kata and general nodes, and zone In / NotIn affinity",
}

// Mix returns the variants of mix name for a generated cluster of nodes nodes; requests
// take them in turn.
func Mix(name string, nodes int) ([]Variant, error) {
	var vs []Variant
	add := func(vname, class string, node func(uint64) string, edit func(*corev1.Pod)) error {
		pod := Pod()
		edit(pod)
		t, err := NewTemplate(pod)
		if err != nil {
			return fmt.Errorf("mix %s, %s: %w", name, vname, err)
		}
		vs = append(vs, Variant{Name: vname, Template: t, Class: class, Node: node})
		return nil
	}
	selector := func(pool string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.NodeSelector = map[string]string{osLabel: "linux"}
			if pool != "" {
				p.Spec.NodeSelector[poolLabel] = pool
			}
		}
	}
	// Bound and pinned Pods walk the pool's nodes, one turn of the mix's 6 variants after
	// another, as a DaemonSet rollout does: each is a distinct decision.
	groups := uint64(max(nodes/10, 1))
	in := func(offset int) func(uint64) string {
		return func(i uint64) string { return nodeName(10*int(i/6%groups) + offset) }
	}
	var err error
	switch name {
	case "template":
		err = add("template", ExpectedClass, nil, func(*corev1.Pod) {})
	case "pool":
		for _, v := range []struct{ pool, class string }{{"sandbox", "gvisor"}, {"kata", "kata"}, {"general", ""}, {"", "gvisor"}} {
			vname := "pool=" + v.pool
			if v.pool == "" {
				vname = "kubernetes.io/os=linux only"
			}
			if err = add(vname, v.class, nil, selector(v.pool)); err != nil {
				return nil, err
			}
		}
	case "bound":
		if nodes < 30 {
			// Below 30 nodes zone c has no gVisor node (node 20 is the first).
			return nil, fmt.Errorf("mix bound needs a generated cluster of at least 30 nodes, not %d", nodes)
		}
		bind := func(p *corev1.Pod) { p.Spec.NodeName = NodePlaceholder }
		pin := func(p *corev1.Pod) { daemonSetPod(p, NodePlaceholder) }
		zone := func(op corev1.NodeSelectorOperator, zones ...string) func(*corev1.Pod) {
			return func(p *corev1.Pod) {
				p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
					NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: zoneLabel, Operator: op, Values: zones}}}}}}}
			}
		}
		for _, v := range []struct {
			name, class string
			node        func(uint64) string
			edit        func(*corev1.Pod)
		}{
			{"nodeName sandbox", "gvisor", in(0), bind},
			{"nodeName kata", "kata", in(1), bind},
			{"daemonset sandbox", "gvisor", in(0), pin},
			{"daemonset general", "", in(4), pin},
			{"zone In [a]", "gvisor", nil, zone(corev1.NodeSelectorOpIn, "eu-west-1a")},
			{"zone NotIn [a,b]", "gvisor", nil, zone(corev1.NodeSelectorOpNotIn, "eu-west-1a", "eu-west-1b")},
		} {
			if err = add(v.name, v.class, v.node, v.edit); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("unknown mix %q (template, pool, bound)", name)
	}
	return vs, err
}

// daemonSetPod makes p what the DaemonSet controller creates for node: pinned with
// matchFields metadata.name, with the tolerations it adds to every DaemonSet Pod.
func daemonSetPod(p *corev1.Pod, node string) {
	p.OwnerReferences[0].Kind, p.OwnerReferences[0].Name = "DaemonSet", "node-agent"
	p.GenerateName = "node-agent-"
	p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{node}}}}}}}}
	p.Spec.Tolerations = nil
	for _, t := range []struct {
		key    string
		effect corev1.TaintEffect
	}{
		{"node.kubernetes.io/not-ready", corev1.TaintEffectNoExecute}, {"node.kubernetes.io/unreachable", corev1.TaintEffectNoExecute},
		{"node.kubernetes.io/disk-pressure", corev1.TaintEffectNoSchedule}, {"node.kubernetes.io/memory-pressure", corev1.TaintEffectNoSchedule},
		{"node.kubernetes.io/pid-pressure", corev1.TaintEffectNoSchedule}, {"node.kubernetes.io/unschedulable", corev1.TaintEffectNoSchedule},
	} {
		p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: t.key, Operator: corev1.TolerationOpExists, Effect: t.effect})
	}
	p.Spec.PriorityClassName, p.Spec.Priority = "system-node-critical", ptr.To[int32](2000001000)
}
