package policy

import (
	"context"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/runtimeguard/runtimeguard/policies"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

// poolsView is the webhook's cluster of node pools: general-1/2 (runc), sandbox-1/2 (runsc,
// sandbox-2 cordoned), kata-1 (kata-qemu), legacy-1 (no handlers reported).
func poolsView(tb testing.TB) *cluster.View {
	tb.Helper()
	v, err := cluster.LoadFiles(cluster.Options{}, "../testdata/cluster-pools.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// pinnedPod is a Pod in ns bound to node (spec.nodeName) or, with pinned, placed there as the
// DaemonSet controller does (required affinity matchFields metadata.name In [node]).
func pinnedPod(tb testing.TB, ns, node, class string, pinned bool) *Pod {
	tb.Helper()
	p := mustPod(tb, `{"apiVersion":"v1","kind":"Pod","metadata":{"namespace":"`+ns+`"},"spec":{"containers":[{"name":"app","image":"app:1"}]}}`)
	if class != "" {
		p.Spec.RuntimeClassName = &class
	}
	if !pinned {
		p.Spec.NodeName = node
		return p
	}
	p.Spec.Affinity = &struct {
		NodeAffinity *struct {
			Required *corev1.NodeSelector `json:"requiredDuringSchedulingIgnoredDuringExecution"`
		} `json:"nodeAffinity"`
	}{NodeAffinity: &struct {
		Required *corev1.NodeSelector `json:"requiredDuringSchedulingIgnoredDuringExecution"`
	}{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
		MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
	}}}}}
	return p
}

func pinnedRequest(tb testing.TB, v *cluster.View, p *Pod) Request {
	tb.Helper()
	snap, reach := v.Reach(p.Placement(), p.RuntimeClassName())
	return Request{Operation: "CREATE", Namespace: namespace(tb, v, p.Metadata.Namespace), Pod: p, Cluster: snap, Reach: reach}
}

// engineReadingNodeNames is the default policy with data.config.reads declaring nodeName, so
// it is given node names as they are: what every decision must equal.
func engineReadingNodeNames(tb testing.TB) *Engine {
	tb.Helper()
	data, err := policies.FS.ReadFile("data.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	const at = "  reads:\n"
	if !strings.Contains(string(data), at) {
		tb.Fatalf("data.yaml has no %q to declare nodeName under", at)
	}
	declared := strings.Replace(string(data), at, at+"    node-names:\n      pod_fields: [nodeName]\n", 1)
	return mustEngine(tb, policyFiles(tb, true, map[string]string{"data.yaml": declared}), 0)
}

// TestPinnedDecisionsEqualThoseWithNodeNames decides every Pod bound or pinned to each node,
// in an untrusted and a plain namespace, naming no class, gvisor or kata, with the node's name
// hidden (the default) and given (nodeName declared): the decisions must be the same.
func TestPinnedDecisionsEqualThoseWithNodeNames(t *testing.T) {
	hidden, named := defaultEngine(t), engineReadingNodeNames(t)
	if !named.current.Load().reads.PodNodeName || hidden.current.Load().reads.PodNodeName {
		t.Fatal("the engines do not differ in reads.PodNodeName")
	}
	v := poolsView(t)
	ctx := context.Background()
	perNode := 0
	for _, node := range []string{"general-1", "general-2", "sandbox-1", "sandbox-2", "kata-1", "legacy-1", "no-such-node"} {
		for _, ns := range []string{"tenant-a", "default"} {
			for _, class := range []string{"", "gvisor", "kata"} {
				for _, pinned := range []bool{false, true} {
					req := pinnedRequest(t, v, pinnedPod(t, ns, node, class, pinned))
					got, _, err := hidden.Decide(ctx, req)
					if err != nil {
						t.Fatal(err)
					}
					want, _, err := named.Decide(ctx, req)
					if err != nil {
						t.Fatal(err)
					}
					if got.PerNode() {
						perNode++
					}
					g := *got
					g.perNode = false
					if !reflect.DeepEqual(&g, want) {
						t.Errorf("node %s, namespace %s, class %q, pinned %v:\n got %s\nwant %s", node, ns, class, pinned, pretty(got), pretty(want))
					}
				}
			}
		}
	}
	if perNode == 0 {
		t.Error("no decision named its node: the test does not reach the messages it guards")
	}
}

// TestPodsOnLookalikeNodesShareADecision: a DaemonSet rollout or a batch of bound Pods is one
// evaluation per kind of node, and each answer still names its own node.
func TestPodsOnLookalikeNodesShareADecision(t *testing.T) {
	e := defaultEngine(t)
	v := poolsView(t)
	ctx := context.Background()
	for _, tc := range []struct {
		first, second string
		pinned        bool
		class         string
		deny          bool
	}{
		{first: "sandbox-1", second: "sandbox-2", class: "gvisor"},
		{first: "general-1", second: "general-2", deny: true},
		{first: "general-1", second: "general-2", pinned: true, deny: true},
	} {
		d1, hit1, err := e.Decide(ctx, pinnedRequest(t, v, pinnedPod(t, "tenant-a", tc.first, "", tc.pinned)))
		if err != nil {
			t.Fatal(err)
		}
		d2, hit2, err := e.Decide(ctx, pinnedRequest(t, v, pinnedPod(t, "tenant-a", tc.second, "", tc.pinned)))
		if err != nil {
			t.Fatal(err)
		}
		if hit1 || !hit2 {
			t.Errorf("%s then %s (pinned %v): cache hits %v, %v; want a miss then a hit", tc.first, tc.second, tc.pinned, hit1, hit2)
		}
		if d1.Class != tc.class || d2.Class != tc.class {
			t.Errorf("%s, %s: classes %q, %q, want %q", tc.first, tc.second, d1.Class, d2.Class, tc.class)
		}
		if !tc.deny {
			continue
		}
		if len(d1.Deny) != 1 || len(d2.Deny) != 1 {
			t.Fatalf("%s, %s: denials %q, %q", tc.first, tc.second, d1.Deny, d2.Deny)
		}
		for node, msg := range map[string]string{tc.first: d1.Deny[0], tc.second: d2.Deny[0]} {
			if !strings.Contains(msg, node) || strings.Contains(msg, NodePlaceholder) {
				t.Errorf("denial for %s: %q, want it to name the node and not %s", node, msg, NodePlaceholder)
			}
		}
	}
	// Nodes that run different handlers are different decisions, and so are nodes the
	// scheduler treats differently: sandbox-2 is cordoned, which a bound Pod ignores and a
	// pinned one does not.
	if _, hit, err := e.Decide(ctx, pinnedRequest(t, v, pinnedPod(t, "tenant-a", "sandbox-2", "", true))); err != nil || hit {
		t.Errorf("pinned to cordoned sandbox-2 after bound to it: hit %v, err %v; want a miss", hit, err)
	}
	if _, hit, err := e.Decide(ctx, pinnedRequest(t, v, pinnedPod(t, "tenant-a", "kata-1", "", false))); err != nil || hit {
		t.Errorf("kata-1 after sandbox-1: hit %v, err %v; want a miss", hit, err)
	}
}

func TestPinnedNode(t *testing.T) {
	p := pinnedPod(t, "default", "node-7", "", true)
	if got := PinnedNode(p); got != "node-7" {
		t.Errorf("pinned: %q", got)
	}
	p.Spec.Affinity.NodeAffinity.Required.NodeSelectorTerms = append(p.Spec.Affinity.NodeAffinity.Required.NodeSelectorTerms,
		corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"node-8"}}}})
	if got := PinnedNode(p); got != "" {
		t.Errorf("two nodes ORed: %q, want none", got)
	}
	if got := PinnedNode(pinnedPod(t, "default", "node-7", "", false)); got != "node-7" {
		t.Errorf("bound: %q", got)
	}
}

func TestReplaceName(t *testing.T) {
	for _, tc := range []struct{ s, name, want string }{
		{`spec.nodeName "a" does not run handler "kata-qemu" (RuntimeClass "kata")`, "a", `spec.nodeName "⟨node⟩" does not run handler "kata-qemu" (RuntimeClass "kata")`},
		{`(metadata.name In [node-1]) matches 1 Ready node`, "node-1", `(metadata.name In [⟨node⟩]) matches 1 Ready node`},
		{`node-10 and node-1`, "node-1", `node-10 and ⟨node⟩`},
		{`nothing here`, "node-1", `nothing here`},
	} {
		if got := replaceName(tc.s, tc.name, NodePlaceholder); got != tc.want {
			t.Errorf("replaceName(%q, %q) = %q, want %q", tc.s, tc.name, got, tc.want)
		}
	}
}
