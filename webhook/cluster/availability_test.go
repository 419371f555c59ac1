package cluster

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Labels and taints the tests use, spelled as a platform team would.
const (
	gvisorLabel = "sandbox.runtimeguard.io/gvisor"
	kataLabel   = "katacontainers.io/kata-runtime"
)

type nodeOpt func(*corev1.Node)

// newNode returns a Ready, schedulable Node shaped like what a kubelet reports (conditions with
// heartbeats, capacity, node info), so that tests exercise the fields availability ignores too.
func newNode(name string, opts ...nodeOpt) *corev1.Node {
	beat := metav1.NewTime(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	n := &corev1.Node{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			UID:             types.UID("uid-" + name),
			ResourceVersion: "1000",
			Labels: map[string]string{
				"kubernetes.io/hostname":           name,
				"kubernetes.io/os":                 "linux",
				"kubernetes.io/arch":               "amd64",
				"topology.kubernetes.io/zone":      "eu-west-1a",
				"node.kubernetes.io/instance-type": "m6i.2xlarge",
			},
		},
		Spec: corev1.NodeSpec{PodCIDR: "10.244.1.0/24", ProviderID: "aws:///eu-west-1a/i-0" + name},
		Status: corev1.NodeStatus{
			Capacity: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("8"),
				corev1.ResourceMemory: resource.MustParse("32Gi"),
				corev1.ResourcePods:   resource.MustParse("110"),
			},
			Conditions: []corev1.NodeCondition{
				{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, LastHeartbeatTime: beat, Reason: "KubeletHasSufficientMemory"},
				{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, LastHeartbeatTime: beat, Reason: "KubeletHasNoDiskPressure"},
				{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, LastHeartbeatTime: beat, Reason: "KubeletHasSufficientPID"},
				{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: beat, Reason: "KubeletReady"},
			},
			NodeInfo: corev1.NodeSystemInfo{
				KubeletVersion:          "v1.31.4",
				ContainerRuntimeVersion: "containerd://2.0.2",
				OperatingSystem:         "linux",
				Architecture:            "amd64",
			},
		},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

func labelled(kv ...string) nodeOpt {
	return func(n *corev1.Node) {
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}

// handlers sets status.runtimeHandlers, always with the default ("") handler first, as
// containerd reports it.
func handlers(names ...string) nodeOpt {
	return func(n *corev1.Node) {
		n.Status.RuntimeHandlers = []corev1.NodeRuntimeHandler{{Name: ""}}
		for _, h := range names {
			n.Status.RuntimeHandlers = append(n.Status.RuntimeHandlers, corev1.NodeRuntimeHandler{Name: h})
		}
	}
}

func markNotReady(n *corev1.Node) {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			n.Status.Conditions[i].Status = corev1.ConditionFalse
			n.Status.Conditions[i].Reason = "KubeletNotReady"
		}
	}
}

func markCordoned(n *corev1.Node) { n.Spec.Unschedulable = true }

func tainted(key, value string, effect corev1.TaintEffect) nodeOpt {
	return func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: key, Value: value, Effect: effect})
	}
}

func newClass(name, handler string, selector map[string]string, tolerations ...corev1.Toleration) *nodev1.RuntimeClass {
	rc := &nodev1.RuntimeClass{
		TypeMeta:   metav1.TypeMeta{APIVersion: "node.k8s.io/v1", Kind: "RuntimeClass"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Handler:    handler,
		Overhead:   &nodev1.Overhead{PodFixed: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}},
	}
	if selector != nil || tolerations != nil {
		rc.Scheduling = &nodev1.Scheduling{NodeSelector: selector, Tolerations: tolerations}
	}
	return rc
}

func gvisorClass(tolerations ...corev1.Toleration) *nodev1.RuntimeClass {
	return newClass("gvisor", "runsc", map[string]string{gvisorLabel: "true"}, tolerations...)
}

var tolerateGvisor = corev1.Toleration{Key: gvisorLabel, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}

func viewOf(opts Options, nodes []*corev1.Node, classes []*nodev1.RuntimeClass) *View {
	v := NewView(opts)
	for _, n := range nodes {
		v.UpsertNode(n)
	}
	for _, c := range classes {
		v.UpsertRuntimeClass(c)
	}
	return v
}

func pretty(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

func TestAvailability(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		nodes   []*corev1.Node
		classes []*nodev1.RuntimeClass
		// want is the availability of the class "gvisor" unless class is set.
		class string
		want  Availability
	}{
		{
			name: "a Ready node listing the handler in status.runtimeHandlers makes the class available by status",
			nodes: []*corev1.Node{
				newNode("sandbox-1", labelled(gvisorLabel, "true"), handlers("runc", "runsc")),
				newNode("general-1", handlers("runc")),
			},
			classes: []*nodev1.RuntimeClass{gvisorClass()},
			want: Availability{
				Available: true, Known: true, Source: "status",
				Reason: `1 of 2 nodes can run handler "runsc" (1 via status.runtimeHandlers, 0 via labels sandbox.runtimeguard.io/gvisor=true)`,
				Counts: Counts{Nodes: 2, Reporting: 2, ByStatus: 1},
			},
		},
		{
			name: "a class without nodeSelector is available by status on any node listing its handler",
			nodes: []*corev1.Node{
				newNode("sandbox-1", handlers("runc", "runsc")),
				newNode("general-1", handlers("runc")),
			},
			classes: []*nodev1.RuntimeClass{newClass("gvisor", "runsc", nil)},
			want: Availability{
				Available: true, Known: true, Source: "status",
				Reason: `1 of 2 nodes can run handler "runsc" (1 via status.runtimeHandlers, 0 via labels (no scheduling.nodeSelector))`,
				Counts: Counts{Nodes: 2, Reporting: 2, ByStatus: 1},
			},
		},
		{
			name: "a node reporting no handlers but carrying the class's nodeSelector labels makes it available by labels",
			nodes: []*corev1.Node{
				newNode("sandbox-1", labelled(gvisorLabel, "true")),
				newNode("general-1"),
			},
			classes: []*nodev1.RuntimeClass{gvisorClass()},
			want: Availability{
				Available: true, Known: true, Source: "labels",
				Reason: `1 of 2 nodes can run handler "runsc" (0 via status.runtimeHandlers, 1 via labels sandbox.runtimeguard.io/gvisor=true)`,
				Counts: Counts{Nodes: 2, Reporting: 0, ByLabels: 1, Unlabelled: 1},
			},
		},
		{
			name: "nodes advertising through status and through labels both count",
			nodes: []*corev1.Node{
				newNode("sandbox-1", labelled(gvisorLabel, "true"), handlers("runc", "runsc")),
				newNode("sandbox-old", labelled(gvisorLabel, "true")),
			},
			classes: []*nodev1.RuntimeClass{gvisorClass()},
			want: Availability{
				Available: true, Known: true, Source: "status+labels",
				Reason: `2 of 2 nodes can run handler "runsc" (1 via status.runtimeHandlers, 1 via labels sandbox.runtimeguard.io/gvisor=true)`,
				Counts: Counts{Nodes: 2, Reporting: 1, ByStatus: 1, ByLabels: 1},
			},
		},
		{
			name: "labels matching the selector while status.runtimeHandlers lacks the handler is drift, not availability",
			nodes: []*corev1.Node{
				newNode("sandbox-1", labelled(gvisorLabel, "true"), handlers("runc")),
				newNode("general-1", handlers("runc")),
			},
			classes: []*nodev1.RuntimeClass{gvisorClass()},
			want: Availability{
				Available: false, Known: true, Source: "none",
				Reason: `no Ready, schedulable node advertises handler "runsc" (0 of 2 nodes; 1 match scheduling.nodeSelector sandbox.runtimeguard.io/gvisor=true but report status.runtimeHandlers without "runsc")`,
				Counts: Counts{Nodes: 2, Reporting: 2, Drift: 1},
			},
		},
		{
			name: "a NotReady node advertising the handler does not make the class available",
			nodes: []*corev1.Node{
				newNode("sandbox-1", labelled(gvisorLabel, "true"), handlers("runsc"), markNotReady),
			},
			classes: []*nodev1.RuntimeClass{gvisorClass()},
			want: Availability{
				Available: false, Known: true, Source: "none",
				Reason: `no Ready, schedulable node advertises handler "runsc" (0 of 1 nodes; 1 advertise it but are NotReady)`,
				Counts: Counts{Nodes: 1, Reporting: 1, NotReady: 1},
			},
		},
		{
			name: "a node without a Ready condition counts as NotReady",
			nodes: []*corev1.Node{
				newNode("sandbox-1", labelled(gvisorLabel, "true"), handlers("runsc"), func(n *corev1.Node) { n.Status.Conditions = nil }),
			},
			classes: []*nodev1.RuntimeClass{gvisorClass()},
			want: Availability{
				Available: false, Known: true, Source: "none",
				Reason: `no Ready, schedulable node advertises handler "runsc" (0 of 1 nodes; 1 advertise it but are NotReady)`,
				Counts: Counts{Nodes: 1, Reporting: 1, NotReady: 1},
			},
		},
		{
			name: "a cordoned node advertising the handler does not make the class available",
			nodes: []*corev1.Node{
				newNode("sandbox-1", labelled(gvisorLabel, "true"), handlers("runsc"), markCordoned),
			},
			classes: []*nodev1.RuntimeClass{gvisorClass()},
			want: Availability{
				Available: false, Known: true, Source: "none",
				Reason: `no Ready, schedulable node advertises handler "runsc" (0 of 1 nodes; 1 advertise it but are cordoned)`,
				Counts: Counts{Nodes: 1, Reporting: 1, Cordoned: 1},
			},
		},
		{
			name: "a node with a NoSchedule taint the class does not tolerate does not make it available",
			nodes: []*corev1.Node{
				newNode("sandbox-1", labelled(gvisorLabel, "true"), handlers("runsc"), tainted(gvisorLabel, "true", corev1.TaintEffectNoSchedule)),
			},
			classes: []*nodev1.RuntimeClass{gvisorClass()},
			want: Availability{
				Available: false, Known: true, Source: "none",
				Reason: `no Ready, schedulable node advertises handler "runsc" (0 of 1 nodes; 1 advertise it but have NoSchedule/NoExecute taints the RuntimeClass does not tolerate)`,
				Counts: Counts{Nodes: 1, Reporting: 1, Untolerated: 1},
			},
		},
		{
			name: "a NoExecute taint blocks as well",
			nodes: []*corev1.Node{
				newNode("sandbox-1", labelled(gvisorLabel, "true"), handlers("runsc"), tainted("maintenance", "", corev1.TaintEffectNoExecute)),
			},
			classes: []*nodev1.RuntimeClass{gvisorClass(tolerateGvisor)},
			want: Availability{
				Available: false, Known: true, Source: "none",
				Reason: `no Ready, schedulable node advertises handler "runsc" (0 of 1 nodes; 1 advertise it but have NoSchedule/NoExecute taints the RuntimeClass does not tolerate)`,
				Counts: Counts{Nodes: 1, Reporting: 1, Untolerated: 1},
			},
		},
		{
			name: "a taint the class's scheduling.tolerations tolerate does not block",
			nodes: []*corev1.Node{
				newNode("sandbox-1", labelled(gvisorLabel, "true"), handlers("runsc"), tainted(gvisorLabel, "true", corev1.TaintEffectNoSchedule)),
			},
			classes: []*nodev1.RuntimeClass{gvisorClass(tolerateGvisor)},
			want: Availability{
				Available: true, Known: true, Source: "status",
				Reason: `1 of 1 nodes can run handler "runsc" (1 via status.runtimeHandlers, 0 via labels sandbox.runtimeguard.io/gvisor=true)`,
				Counts: Counts{Nodes: 1, Reporting: 1, ByStatus: 1},
			},
		},
		{
			name: "a PreferNoSchedule taint never blocks",
			nodes: []*corev1.Node{
				newNode("sandbox-1", labelled(gvisorLabel, "true"), handlers("runsc"), tainted("spot", "true", corev1.TaintEffectPreferNoSchedule)),
			},
			classes: []*nodev1.RuntimeClass{gvisorClass()},
			want: Availability{
				Available: true, Known: true, Source: "status",
				Reason: `1 of 1 nodes can run handler "runsc" (1 via status.runtimeHandlers, 0 via labels sandbox.runtimeguard.io/gvisor=true)`,
				Counts: Counts{Nodes: 1, Reporting: 1, ByStatus: 1},
			},
		},
		{
			name: "a node listing the handler but missing the class's nodeSelector labels cannot take its Pods",
			nodes: []*corev1.Node{
				newNode("general-1", handlers("runc", "runsc")),
			},
			classes: []*nodev1.RuntimeClass{gvisorClass()},
			want: Availability{
				Available: false, Known: true, Source: "none",
				Reason: `no Ready, schedulable node advertises handler "runsc" (0 of 1 nodes; 1 advertise it but do not match scheduling.nodeSelector sandbox.runtimeguard.io/gvisor=true)`,
				Counts: Counts{Nodes: 1, Reporting: 1, SelectorMismatch: 1},
			},
		},
		{
			name: "nodes reporting no handlers and lacking the labels are counted as unlabelled",
			nodes: []*corev1.Node{
				newNode("general-1"),
				newNode("general-2", labelled(gvisorLabel, "false")),
			},
			classes: []*nodev1.RuntimeClass{gvisorClass()},
			want: Availability{
				Available: false, Known: true, Source: "none",
				Reason: `no Ready, schedulable node advertises handler "runsc" (0 of 2 nodes; 2 report no runtime handlers and lack labels sandbox.runtimeguard.io/gvisor=true)`,
				Counts: Counts{Nodes: 2, Unlabelled: 2},
			},
		},
		{
			name: "every reason that applies is listed",
			nodes: []*corev1.Node{
				newNode("drifted", labelled(gvisorLabel, "true"), handlers("runc")),
				newNode("old", labelled("kubernetes.io/role", "worker")),
				newNode("down", labelled(gvisorLabel, "true"), handlers("runsc"), markNotReady),
				newNode("drained", labelled(gvisorLabel, "true"), handlers("runsc"), markCordoned),
				newNode("tainted", labelled(gvisorLabel, "true"), handlers("runsc"), tainted("dedicated", "db", corev1.TaintEffectNoSchedule)),
				newNode("general", handlers("runsc")),
			},
			classes: []*nodev1.RuntimeClass{gvisorClass()},
			want: Availability{
				Available: false, Known: true, Source: "none",
				Reason: `no Ready, schedulable node advertises handler "runsc" (0 of 6 nodes; ` +
					`1 match scheduling.nodeSelector sandbox.runtimeguard.io/gvisor=true but report status.runtimeHandlers without "runsc"; ` +
					`1 report no runtime handlers and lack labels sandbox.runtimeguard.io/gvisor=true; ` +
					`1 advertise it but are NotReady; 1 advertise it but are cordoned; ` +
					`1 advertise it but have NoSchedule/NoExecute taints the RuntimeClass does not tolerate; ` +
					`1 advertise it but do not match scheduling.nodeSelector sandbox.runtimeguard.io/gvisor=true)`,
				Counts: Counts{Nodes: 6, Reporting: 5, NotReady: 1, Cordoned: 1, Untolerated: 1, SelectorMismatch: 1, Drift: 1, Unlabelled: 1},
			},
		},
		{
			name:    "with no nodes at all a class with a nodeSelector is unavailable",
			classes: []*nodev1.RuntimeClass{gvisorClass()},
			want: Availability{
				Available: false, Known: true, Source: "none",
				Reason: `no Ready, schedulable node advertises handler "runsc" (0 of 0 nodes)`,
				Counts: Counts{},
			},
		},
		{
			name:    "with no nodes at all a class without nodeSelector is unknowable",
			classes: []*nodev1.RuntimeClass{newClass("gvisor", "runsc", nil)},
			want: Availability{
				Available: true, Known: false, Source: "unknown",
				Reason: `cannot tell whether any node runs handler "runsc": no node reports status.runtimeHandlers and the RuntimeClass has no scheduling.nodeSelector (0 nodes)`,
				Counts: Counts{},
			},
		},
		{
			name:    "when no node reports handlers and the class has no nodeSelector, it is available but not known",
			nodes:   []*corev1.Node{newNode("general-1"), newNode("general-2")},
			classes: []*nodev1.RuntimeClass{newClass("gvisor", "runsc", nil)},
			want: Availability{
				Available: true, Known: false, Source: "unknown",
				Reason: `cannot tell whether any node runs handler "runsc": no node reports status.runtimeHandlers and the RuntimeClass has no scheduling.nodeSelector (2 nodes)`,
				Counts: Counts{Nodes: 2},
			},
		},
		{
			name:    "RequireAdvertisedHandlers makes an unknowable class unavailable",
			opts:    Options{RequireAdvertisedHandlers: true},
			nodes:   []*corev1.Node{newNode("general-1"), newNode("general-2")},
			classes: []*nodev1.RuntimeClass{newClass("gvisor", "runsc", nil)},
			want: Availability{
				Available: false, Known: false, Source: "unknown",
				Reason: `cannot tell whether any node runs handler "runsc": no node reports status.runtimeHandlers and the RuntimeClass has no scheduling.nodeSelector (2 nodes); --require-advertised-handlers is set`,
				Counts: Counts{Nodes: 2},
			},
		},
		{
			name:    "RequireAdvertisedHandlers does not touch a class nodes advertise",
			opts:    Options{RequireAdvertisedHandlers: true},
			nodes:   []*corev1.Node{newNode("sandbox-1", labelled(gvisorLabel, "true"))},
			classes: []*nodev1.RuntimeClass{gvisorClass()},
			want: Availability{
				Available: true, Known: true, Source: "labels",
				Reason: `1 of 1 nodes can run handler "runsc" (0 via status.runtimeHandlers, 1 via labels sandbox.runtimeguard.io/gvisor=true)`,
				Counts: Counts{Nodes: 1, ByLabels: 1},
			},
		},
		{
			// Pins current behaviour in a cluster mid-upgrade: once any node reports handlers,
			// silent nodes are not counted for a class without nodeSelector.
			name: "in a cluster mid-upgrade a node reporting no handlers leaves a selector-less class unknown, not unavailable",
			nodes: []*corev1.Node{
				newNode("new-1", handlers("runc")),
				newNode("old-1"),
			},
			classes: []*nodev1.RuntimeClass{newClass("gvisor", "runsc", nil)},
			want: Availability{
				Available: true, Known: false, Source: "unknown",
				Reason: `cannot tell whether any node runs handler "runsc": 1 of 2 nodes report no status.runtimeHandlers (older container runtimes) and the RuntimeClass has no scheduling.nodeSelector; the 1 that report handlers do not list it`,
				Counts: Counts{Nodes: 2, Reporting: 1},
			},
		},
		{
			name: "when every node reports handlers and none lists it, a selector-less class is unavailable",
			nodes: []*corev1.Node{
				newNode("new-1", handlers("runc")),
				newNode("new-2", handlers("runc")),
			},
			classes: []*nodev1.RuntimeClass{newClass("gvisor", "runsc", nil)},
			want: Availability{
				Available: false, Known: true, Source: "none",
				Reason: `no Ready, schedulable node advertises handler "runsc" (0 of 2 nodes)`,
				Counts: Counts{Nodes: 2, Reporting: 2},
			},
		},
		{
			name:    "a class with an empty handler is unavailable",
			nodes:   []*corev1.Node{newNode("general-1", handlers("runc"))},
			classes: []*nodev1.RuntimeClass{newClass("default", "", nil)},
			class:   "default",
			want: Availability{
				Available: false, Known: true, Source: "none",
				Reason: "the RuntimeClass has an empty handler, so no node can run it",
				Counts: Counts{Nodes: 1, Reporting: 1},
			},
		},
		{
			name: "each class is counted on its own",
			nodes: []*corev1.Node{
				newNode("sandbox-1", labelled(gvisorLabel, "true"), handlers("runsc")),
				newNode("kata-1", labelled(kataLabel, "true"), handlers("kata-qemu")),
			},
			classes: []*nodev1.RuntimeClass{gvisorClass(), newClass("kata", "kata-qemu", map[string]string{kataLabel: "true"})},
			class:   "kata",
			want: Availability{
				Available: true, Known: true, Source: "status",
				Reason: `1 of 2 nodes can run handler "kata-qemu" (1 via status.runtimeHandlers, 0 via labels katacontainers.io/kata-runtime=true)`,
				Counts: Counts{Nodes: 2, Reporting: 2, ByStatus: 1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			class := tt.class
			if class == "" {
				class = "gvisor"
			}
			// The order of events must not matter: classes before nodes and nodes before
			// classes reach the same snapshot.
			for _, order := range []string{"nodes first", "classes first"} {
				v := NewView(tt.opts)
				if order == "nodes first" {
					for _, n := range tt.nodes {
						v.UpsertNode(n)
					}
				}
				for _, c := range tt.classes {
					v.UpsertRuntimeClass(c)
				}
				if order == "classes first" {
					for _, n := range tt.nodes {
						v.UpsertNode(n)
					}
				}
				snap := v.Snapshot()
				c, ok := snap.Classes[class]
				if !ok {
					t.Fatalf("%s: class %q missing from snapshot with %v", order, class, snap.ClassNames())
				}
				if !reflect.DeepEqual(c.Availability, tt.want) {
					t.Errorf("%s: availability of %q:\n got %s\nwant %s", order, class, pretty(c.Availability), pretty(tt.want))
				}
				if snap.Nodes != len(tt.nodes) {
					t.Errorf("%s: snapshot.Nodes = %d, want %d", order, snap.Nodes, len(tt.nodes))
				}
			}
		})
	}
}

func TestClassCarriesItsSchedulingAndOverhead(t *testing.T) {
	v := viewOf(Options{}, nil, []*nodev1.RuntimeClass{gvisorClass(tolerateGvisor)})
	c := v.Snapshot().Classes["gvisor"]
	want := Class{
		Name: "gvisor", Handler: "runsc",
		NodeSelector: map[string]string{gvisorLabel: "true"},
		Tolerations:  []corev1.Toleration{tolerateGvisor},
		Overhead:     corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
	}
	got := *c
	got.Availability = Availability{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("class:\n got %s\nwant %s", pretty(got), pretty(want))
	}
}

// countsOf returns the availability counts of class in v's current snapshot.
func countsOf(t *testing.T, v *View, class string) Counts {
	t.Helper()
	c, ok := v.Snapshot().Classes[class]
	if !ok {
		t.Fatalf("class %q missing from snapshot with %v", class, v.Snapshot().ClassNames())
	}
	return c.Availability.Counts
}

func TestViewUpdates(t *testing.T) {
	type step struct {
		// what the step does, as a sentence
		does  string
		apply func(v *View)
		// gvisor's counts afterwards; nil when the class must be gone
		want *Counts
		// whether the snapshot generation must move
		bumps bool
	}
	sandbox := func(name string, opts ...nodeOpt) *corev1.Node {
		return newNode(name, append([]nodeOpt{labelled(gvisorLabel, "true"), handlers("runc", "runsc")}, opts...)...)
	}
	heartbeat := func(n *corev1.Node) *corev1.Node {
		n = n.DeepCopy()
		n.ResourceVersion = "1001"
		for i := range n.Status.Conditions {
			n.Status.Conditions[i].LastHeartbeatTime = metav1.NewTime(n.Status.Conditions[i].LastHeartbeatTime.Add(10 * time.Second))
		}
		n.Status.Images = append(n.Status.Images, corev1.ContainerImage{Names: []string{"nginx:1.27"}, SizeBytes: 70 << 20})
		return n
	}
	steps := []step{
		{
			does: "two sandbox nodes and a general node are added before any RuntimeClass",
			apply: func(v *View) {
				v.UpsertNode(sandbox("sandbox-1"))
				v.UpsertNode(sandbox("sandbox-2"))
				v.UpsertNode(newNode("general-1", handlers("runc")))
			},
			want: nil, bumps: true,
		},
		{
			does:  "a RuntimeClass added after the nodes is counted over them",
			apply: func(v *View) { v.UpsertRuntimeClass(gvisorClass()) },
			want:  &Counts{Nodes: 3, Reporting: 3, ByStatus: 2}, bumps: true,
		},
		{
			does:  "a heartbeat-only status update changes nothing, not even the generation",
			apply: func(v *View) { v.UpsertNode(heartbeat(sandbox("sandbox-1"))) },
			want:  &Counts{Nodes: 3, Reporting: 3, ByStatus: 2}, bumps: false,
		},
		{
			does:  "re-adding an identical node changes nothing",
			apply: func(v *View) { v.UpsertNode(sandbox("sandbox-2")) },
			want:  &Counts{Nodes: 3, Reporting: 3, ByStatus: 2}, bumps: false,
		},
		{
			does:  "a node going NotReady moves it from usable to NotReady",
			apply: func(v *View) { v.UpsertNode(sandbox("sandbox-1", markNotReady)) },
			want:  &Counts{Nodes: 3, Reporting: 3, ByStatus: 1, NotReady: 1}, bumps: true,
		},
		{
			does:  "cordoning the other one leaves no usable node",
			apply: func(v *View) { v.UpsertNode(sandbox("sandbox-2", markCordoned)) },
			want:  &Counts{Nodes: 3, Reporting: 3, NotReady: 1, Cordoned: 1}, bumps: true,
		},
		{
			does:  "a label change is a real change",
			apply: func(v *View) { v.UpsertNode(newNode("general-1", handlers("runc"), labelled("pool", "batch"))) },
			want:  &Counts{Nodes: 3, Reporting: 3, NotReady: 1, Cordoned: 1}, bumps: true,
		},
		{
			does: "a taint is a real change",
			apply: func(v *View) {
				v.UpsertNode(sandbox("sandbox-2", markCordoned, tainted(gvisorLabel, "true", corev1.TaintEffectNoSchedule)))
			},
			want: &Counts{Nodes: 3, Reporting: 3, NotReady: 1, Cordoned: 1}, bumps: true,
		},
		{
			does: "uncordoning a node the class does not tolerate makes it untolerated",
			apply: func(v *View) {
				v.UpsertNode(sandbox("sandbox-2", tainted(gvisorLabel, "true", corev1.TaintEffectNoSchedule)))
			},
			want: &Counts{Nodes: 3, Reporting: 3, NotReady: 1, Untolerated: 1}, bumps: true,
		},
		{
			does:  "updating the class to tolerate the taint recounts it",
			apply: func(v *View) { v.UpsertRuntimeClass(gvisorClass(tolerateGvisor)) },
			want:  &Counts{Nodes: 3, Reporting: 3, ByStatus: 1, NotReady: 1}, bumps: true,
		},
		{
			does:  "the runtime disappearing from status.runtimeHandlers is drift",
			apply: func(v *View) { v.UpsertNode(newNode("sandbox-2", labelled(gvisorLabel, "true"), handlers("runc"))) },
			want:  &Counts{Nodes: 3, Reporting: 3, NotReady: 1, Drift: 1}, bumps: true,
		},
		{
			does:  "deleting a node removes its contribution",
			apply: func(v *View) { v.DeleteNode("sandbox-1") },
			want:  &Counts{Nodes: 2, Reporting: 2, Drift: 1}, bumps: true,
		},
		{
			does:  "deleting an unknown node changes nothing",
			apply: func(v *View) { v.DeleteNode("no-such-node") },
			want:  &Counts{Nodes: 2, Reporting: 2, Drift: 1}, bumps: false,
		},
		{
			does:  "a node reporting no handlers lowers Reporting",
			apply: func(v *View) { v.UpsertNode(newNode("general-1", labelled("pool", "batch"))) },
			want:  &Counts{Nodes: 2, Reporting: 1, Drift: 1, Unlabelled: 1}, bumps: true,
		},
		{
			does:  "deleting the RuntimeClass removes it from the snapshot",
			apply: func(v *View) { v.DeleteRuntimeClass("gvisor") },
			want:  nil, bumps: true,
		},
		{
			does:  "deleting an unknown RuntimeClass changes nothing",
			apply: func(v *View) { v.DeleteRuntimeClass("gvisor") },
			want:  nil, bumps: false,
		},
		{
			does:  "recreating the RuntimeClass counts the nodes as they are now",
			apply: func(v *View) { v.UpsertRuntimeClass(gvisorClass()) },
			want:  &Counts{Nodes: 2, Reporting: 1, Drift: 1, Unlabelled: 1}, bumps: true,
		},
	}
	v := NewView(Options{})
	for i, s := range steps {
		before := v.Snapshot()
		s.apply(v)
		after := v.Snapshot()
		if moved := after.Generation != before.Generation; moved != s.bumps {
			t.Errorf("step %d, %s: generation %d -> %d, want moved=%v", i+1, s.does, before.Generation, after.Generation, s.bumps)
		}
		if !s.bumps && after != before {
			t.Errorf("step %d, %s: a new snapshot was published for no change", i+1, s.does)
		}
		c, ok := after.Classes["gvisor"]
		switch {
		case s.want == nil && ok:
			t.Errorf("step %d, %s: class gvisor still in the snapshot", i+1, s.does)
		case s.want != nil && !ok:
			t.Errorf("step %d, %s: class gvisor missing from the snapshot", i+1, s.does)
		case s.want != nil && c.Availability.Counts != *s.want:
			t.Errorf("step %d, %s: counts\n got %+v\nwant %+v", i+1, s.does, c.Availability.Counts, *s.want)
		}
	}
}

func TestSnapshotsAreImmutable(t *testing.T) {
	v := viewOf(Options{}, []*corev1.Node{newNode("sandbox-1", labelled(gvisorLabel, "true"), handlers("runsc"))}, []*nodev1.RuntimeClass{gvisorClass()})
	old := v.Snapshot()
	oldAvailability := old.Classes["gvisor"].Availability
	v.DeleteNode("sandbox-1")
	v.UpsertRuntimeClass(newClass("kata", "kata-qemu", nil))
	if got := old.Classes["gvisor"].Availability; !reflect.DeepEqual(got, oldAvailability) {
		t.Errorf("an old snapshot changed after updates:\n got %s\nwant %s", pretty(got), pretty(oldAvailability))
	}
	if old.Nodes != 1 || len(old.Classes) != 1 {
		t.Errorf("old snapshot has %d nodes and classes %v, want 1 node and [gvisor]", old.Nodes, old.ClassNames())
	}
	if got := countsOf(t, v, "gvisor"); got != (Counts{}) {
		t.Errorf("current counts = %+v, want zero after the only node was deleted", got)
	}
	if got, want := v.Snapshot().ClassNames(), []string{"gvisor", "kata"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ClassNames() = %v, want %v", got, want)
	}
}

func TestLoadFilesOfTheShippedExample(t *testing.T) {
	v, err := LoadFiles(Options{}, "../../policies/examples/cluster/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !v.Synced() {
		t.Error("a view loaded from files is not marked synced")
	}
	snap := v.Snapshot()
	got := map[string]string{}
	for name, c := range snap.Classes {
		got[name] = fmt.Sprintf("available=%v known=%v source=%s", c.Availability.Available, c.Availability.Known, c.Availability.Source)
	}
	want := map[string]string{
		"gvisor":        "available=true known=true source=status", // tainted, and tolerated by the class
		"kata":          "available=true known=true source=status",
		"nvidia":        "available=true known=true source=status",
		"gvisor-nvidia": "available=true known=true source=status",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("classes of the shipped example:\n got %v\nwant %v", got, want)
	}
	if snap.Nodes != 3 {
		t.Errorf("nodes = %d, want 3", snap.Nodes)
	}
	ns, found, err := v.Namespace(t.Context(), "payments")
	if err != nil || !found || ns.Labels["runtimeguard.io/tenancy"] != "financial" {
		t.Errorf("Namespace(payments) = %+v, %v, %v; want the fixture's labels", ns, found, err)
	}
}

func TestLoadFilesRefusesPodsAndBadFiles(t *testing.T) {
	tests := []struct {
		name string
		file string
		want string
	}{
		{
			name: "a Pod in a cluster file is refused, naming file and document",
			file: "../../policies/examples/pods/pods.yaml",
			want: "../../policies/examples/pods/pods.yaml#1: a cluster file holds Namespaces, Nodes, RuntimeClasses, ResourceClaimTemplates and ResourceClaims, not *v1.Pod",
		},
		{
			name: "a missing file is an error naming it",
			file: "testdata/no-such-file.yaml",
			want: "open testdata/no-such-file.yaml: no such file or directory",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := LoadFiles(Options{}, tt.file)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("LoadFiles(%s) = %v, %v; want error %q", tt.file, v, err, tt.want)
			}
		})
	}
}
