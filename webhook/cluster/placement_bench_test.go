package cluster

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
)

// benchCluster has n nodes in pools as the benchmark clusters have them (e2e/bench fixtures):
// one in ten runs gVisor (tainted), one in ten Kata, the rest runc; zones a, b, c in turn.
func benchCluster(n int) *View {
	nodes := make([]*corev1.Node, 0, n)
	for i := 0; i < n; i++ {
		opts := []nodeOpt{labelled("topology.kubernetes.io/zone", "eu-west-1"+[]string{"a", "b", "c"}[i%3])}
		switch i % 10 {
		case 0:
			opts = append(opts, labelled("pool", "sandbox", gvisorLabel, "true"), handlers("runc", "runsc"),
				tainted(gvisorLabel, "true", corev1.TaintEffectNoSchedule))
		case 1:
			opts = append(opts, labelled("pool", "kata", kataLabel, "true"), handlers("runc", "kata-qemu"))
		default:
			opts = append(opts, labelled("pool", "general"), handlers("runc"))
		}
		nodes = append(nodes, newNode(fmt.Sprintf("node-%05d", i), opts...))
	}
	return viewOf(Options{}, nodes, []*nodev1.RuntimeClass{
		gvisorClass(tolerateGvisor), newClass("kata", "kata-qemu", map[string]string{kataLabel: "true"}),
		newClass("runc", "runc", nil), newClass("nvidia", "nvidia", nil),
	})
}

// BenchmarkReach shows View.Reach's cost against cluster size for the constraints Pods
// commonly carry: it combines index bitmaps and should not grow with the number of nodes.
func BenchmarkReach(b *testing.B) {
	// The tolerations every Pod gets from the DefaultTolerationSeconds admission plugin.
	everyPod := []corev1.Toleration{
		{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
		{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	}
	daemonSet := append([]corev1.Toleration{
		{Key: "node.kubernetes.io/disk-pressure", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
		{Key: "node.kubernetes.io/memory-pressure", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
		{Key: "node.kubernetes.io/unschedulable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	}, everyPod...)
	cases := []struct {
		name string
		p    Placement
	}{
		{"trivial os=linux", Placement{NodeSelector: map[string]string{"kubernetes.io/os": "linux"}, Tolerations: everyPod}},
		{"pool selector", Placement{NodeSelector: map[string]string{"kubernetes.io/os": "linux", "pool": "sandbox"}, Tolerations: everyPod}},
		{"bound nodeName", Placement{NodeName: "node-00010", Tolerations: everyPod}},
		{"daemonset matchFields", Placement{Affinity: affinity(nameIs(corev1.NodeSelectorOpIn, "node-00010")), Tolerations: daemonSet}},
		{"zone In", Placement{Affinity: affinity(exprs(expr("topology.kubernetes.io/zone", corev1.NodeSelectorOpIn, "eu-west-1a"))), Tolerations: everyPod}},
		{"zone NotIn", Placement{Affinity: affinity(exprs(expr("topology.kubernetes.io/zone", corev1.NodeSelectorOpNotIn, "eu-west-1a", "eu-west-1b"))), Tolerations: everyPod}},
	}
	for _, c := range cases {
		if err := c.p.Validate(); err != nil {
			b.Fatal(err)
		}
		for _, n := range []int{50, 5000} {
			v := benchCluster(n)
			v.MarkSynced()
			// hit: replicas of one template (the reach cache answers); miss: the first Pod of a
			// placement after any node change (the cache is emptied each time).
			for _, miss := range []bool{false, true} {
				name := map[bool]string{false: "hit", true: "miss"}[miss]
				b.Run(fmt.Sprintf("%s/%s/nodes=%d", c.name, name, n), func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if miss {
							v.reaches.forget()
						}
						if _, r := v.Reach(&c.p, ""); r == nil {
							b.Fatal("no reach")
						}
					}
				})
			}
		}
	}
}
