package cluster

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// findingKeys summarises findings as kind:classes:nodes for comparison.
func findingKeys(inv *Inventory) []string {
	out := []string{}
	for _, f := range inv.Findings {
		out = append(out, fmt.Sprintf("%s:%s:%s", f.Kind, strings.Join(f.RuntimeClasses, ","), strings.Join(f.Nodes, ",")))
	}
	return out
}

// nvidiaPolicy marks classes as GPU classes with the default data's GPU resource.
func nvidiaPolicy(classes ...string) GPUPolicy {
	p := GPUPolicy{Classes: map[string]bool{}, Resources: []string{"nvidia.com/gpu"}}
	for _, c := range classes {
		p.Classes[c] = true
	}
	return p
}

func TestInventoryFindings(t *testing.T) {
	kata := func(name, handler string) *nodev1.RuntimeClass {
		return newClass(name, handler, map[string]string{kataLabel: "true"})
	}
	gpuSelector := map[string]string{"nvidia.com/gpu.present": "true"}
	gpuToleration := corev1.Toleration{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	var manyDrifted []*corev1.Node
	for i := 1; i <= 7; i++ {
		manyDrifted = append(manyDrifted, newNode(fmt.Sprintf("n%d", i), labelled(gvisorLabel, "true"), handlers("runc")))
	}
	tests := []struct {
		name    string
		opts    Options
		nodes   []*corev1.Node
		classes []*nodev1.RuntimeClass
		gpu     GPUPolicy
		want    []string
		// message is a substring of the first finding's message.
		message string
	}{
		{
			name:    "a class its node runs: nothing to report",
			nodes:   []*corev1.Node{newNode("s1", labelled(gvisorLabel, "true"), handlers("runc", "runsc"))},
			classes: []*nodev1.RuntimeClass{gvisorClass()},
			want:    []string{},
		},
		{
			name:    "no node runs the handler",
			nodes:   []*corev1.Node{newNode("s1", handlers("runc"))},
			classes: []*nodev1.RuntimeClass{newClass("wasm", "spin", nil)},
			want:    []string{"class-unrunnable:wasm:"},
			message: `RuntimeClass "wasm": no Ready, schedulable node advertises handler "spin" (0 of 1 nodes)`,
		},
		{
			name:    "an empty handler",
			classes: []*nodev1.RuntimeClass{newClass("broken", "", nil)},
			want:    []string{"class-unrunnable:broken:"},
			message: "the RuntimeClass has an empty handler",
		},
		{
			name:    "unknowable availability is not a finding",
			nodes:   []*corev1.Node{newNode("old-1")},
			classes: []*nodev1.RuntimeClass{newClass("wasm", "spin", nil)},
			want:    []string{},
		},
		{
			name:    "unknowable availability is not a finding even when serve would deny it",
			opts:    Options{RequireAdvertisedHandlers: true},
			nodes:   []*corev1.Node{newNode("old-1")},
			classes: []*nodev1.RuntimeClass{newClass("wasm", "spin", nil)},
			want:    []string{},
		},
		{
			name:    "the only advertising node is NotReady",
			nodes:   []*corev1.Node{newNode("s1", labelled(gvisorLabel, "true"), handlers("runsc"), markNotReady)},
			classes: []*nodev1.RuntimeClass{gvisorClass()},
			want:    []string{"class-unrunnable:gvisor:"},
			message: "1 advertise it but are NotReady",
		},
		{
			name: "labels claim a handler the status does not report",
			nodes: []*corev1.Node{
				newNode("s1", labelled(gvisorLabel, "true"), handlers("runc")),
				newNode("s2", labelled(gvisorLabel, "true"), handlers("runc", "runsc")),
			},
			classes: []*nodev1.RuntimeClass{gvisorClass()},
			want:    []string{"label-drift:gvisor:s1"},
			message: `node s1 is labelled sandbox.runtimeguard.io/gvisor=true (RuntimeClass "gvisor"'s scheduling.nodeSelector) but status.runtimeHandlers does not list handler "runsc"`,
		},
		{
			name:    "many drifted nodes are summarised in the message, all listed",
			nodes:   manyDrifted,
			classes: []*nodev1.RuntimeClass{gvisorClass()},
			want:    []string{"class-unrunnable:gvisor:", "label-drift:gvisor:n1,n2,n3,n4,n5,n6,n7"},
			message: "0 of 7 nodes; 7 match scheduling.nodeSelector",
		},
		{
			name: "one label shared by classes with different handlers (kata-deploy)",
			nodes: []*corev1.Node{
				newNode("k1", labelled(kataLabel, "true"), handlers("kata-qemu", "kata-clh")),
				newNode("k2", labelled(kataLabel, "true")),
			},
			classes: []*nodev1.RuntimeClass{kata("kata-qemu", "kata-qemu"), kata("kata-clh", "kata-clh")},
			want:    []string{"shared-selector:kata-clh,kata-qemu:"},
			message: `label katacontainers.io/kata-runtime=true is the scheduling.nodeSelector of kata-clh (handler "kata-clh"), kata-qemu (handler "kata-qemu"): on a node that does not report status.runtimeHandlers the label cannot tell which handler it runs (2 nodes carry the label, 1 of them reports no handlers)`,
		},
		{
			name:    "one label shared by classes with the same handler is fine",
			nodes:   []*corev1.Node{newNode("k1", labelled(kataLabel, "true"), handlers("kata-qemu"))},
			classes: []*nodev1.RuntimeClass{kata("kata", "kata-qemu"), kata("kata-default", "kata-qemu")},
			want:    []string{},
		},
		{
			name:    "a GPU class without GPU scheduling",
			nodes:   []*corev1.Node{newNode("g1", handlers("nvidia"))},
			classes: []*nodev1.RuntimeClass{newClass("nvidia", "nvidia", nil)},
			gpu:     nvidiaPolicy("nvidia"),
			want:    []string{"gpu-class-unscheduled:nvidia:"},
			message: `RuntimeClass "nvidia" is a GPU class in the policy data (gpu: true) but neither its scheduling.nodeSelector nor its tolerations mention nvidia.com/gpu`,
		},
		{
			name:  "a GPU class selecting GPU nodes, or tolerating the GPU taint, is fine",
			nodes: []*corev1.Node{newNode("g1", labelled("nvidia.com/gpu.present", "true"), handlers("runc", "nvidia", "runsc-nvidia"))},
			classes: []*nodev1.RuntimeClass{
				newClass("nvidia", "nvidia", gpuSelector),
				newClass("gvisor-nvidia", "runsc-nvidia", nil, gpuToleration),
				newClass("plain", "runc", nil),
			},
			gpu:  nvidiaPolicy("nvidia", "gvisor-nvidia"),
			want: []string{},
		},
		{
			name:    "the GPU resource names come from the policy data",
			nodes:   []*corev1.Node{newNode("g1", labelled("nvidia.com/gpu.present", "true", "amd.com/gpu.present", "true"), handlers("nvidia", "rocm"))},
			classes: []*nodev1.RuntimeClass{newClass("nvidia", "nvidia", gpuSelector), newClass("rocm", "rocm", map[string]string{"amd.com/gpu.present": "true"})},
			gpu:     GPUPolicy{Classes: map[string]bool{"nvidia": true, "rocm": true}, Resources: []string{"amd.com/gpu", "example.com/accelerator"}},
			want:    []string{"gpu-class-unscheduled:nvidia:"},
			message: `RuntimeClass "nvidia" is a GPU class in the policy data (gpu: true) but neither its scheduling.nodeSelector nor its tolerations mention amd.com/gpu or example.com/accelerator`,
		},
		{
			name:    "without GPU resource names in the policy data there is nothing to check",
			nodes:   []*corev1.Node{newNode("g1", handlers("nvidia"))},
			classes: []*nodev1.RuntimeClass{newClass("nvidia", "nvidia", nil)},
			gpu:     GPUPolicy{Classes: map[string]bool{"nvidia": true}},
			want:    []string{},
		},
		{
			name: "findings come in kind order",
			nodes: []*corev1.Node{
				newNode("k1", labelled(kataLabel, "true"), handlers("kata-qemu")),
			},
			classes: []*nodev1.RuntimeClass{kata("kata", "kata-qemu"), kata("kata-clh", "kata-clh"), newClass("nvidia", "nvidia", nil)},
			gpu:     nvidiaPolicy("nvidia"),
			want: []string{
				"class-unrunnable:kata-clh:", "class-unrunnable:nvidia:",
				"label-drift:kata-clh:k1",
				"shared-selector:kata,kata-clh:",
				"gpu-class-unscheduled:nvidia:",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := viewOf(tc.opts, tc.nodes, tc.classes)
			inv := v.Inventory(tc.gpu)
			if got := findingKeys(inv); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("findings\n  %q\nwant\n  %q\n%s", got, tc.want, pretty(inv.Findings))
			}
			if tc.message != "" && (len(inv.Findings) == 0 || !strings.Contains(inv.Findings[0].Message, tc.message)) {
				t.Errorf("first finding's message lacks %q:\n%s", tc.message, pretty(inv.Findings))
			}
			counts := inv.CountFindings()
			if len(counts) != len(FindingKinds) {
				t.Errorf("CountFindings has %d kinds, want %d", len(counts), len(FindingKinds))
			}
			total := 0
			for _, n := range counts {
				total += n
			}
			if total != len(inv.Findings) {
				t.Errorf("CountFindings sums to %d, want %d", total, len(inv.Findings))
			}
		})
	}
}

func TestInventoryCounts(t *testing.T) {
	v := viewOf(Options{}, []*corev1.Node{
		newNode("ok", labelled(gvisorLabel, "true"), handlers("runsc"), tainted(gvisorLabel, "true", corev1.TaintEffectNoSchedule)),
		newNode("untolerated", labelled(gvisorLabel, "true"), handlers("runsc"), tainted("dedicated", "db", corev1.TaintEffectNoSchedule)),
		newNode("cordoned", labelled(gvisorLabel, "true"), handlers("runsc"), markCordoned),
		newNode("not-ready", labelled(gvisorLabel, "true"), handlers("runsc"), markNotReady),
		newNode("unlabelled-status", handlers("runsc")),     // selector mismatch: advertised, not usable
		newNode("by-labels", labelled(gvisorLabel, "true")), // reports nothing, matches the selector
		newNode("by-labels-cordoned", labelled(gvisorLabel, "true"), markCordoned),
		newNode("other", handlers("runc")),
	}, []*nodev1.RuntimeClass{gvisorClass(tolerateGvisor)})
	inv := v.Inventory(GPUPolicy{})
	if inv.Nodes != 8 || inv.Reporting != 6 {
		t.Errorf("nodes %d reporting %d, want 8 and 6", inv.Nodes, inv.Reporting)
	}
	if len(inv.Classes) != 1 {
		t.Fatalf("%d classes", len(inv.Classes))
	}
	c := inv.Classes[0]
	got := [6]int{c.AdvertisedByStatus, c.AdvertisedByLabels, c.Ready, c.Schedulable, c.Usable, c.Availability.Counts.ByStatus + c.Availability.Counts.ByLabels}
	// status: ok, untolerated, cordoned, not-ready, unlabelled-status; labels: by-labels,
	// by-labels-cordoned. Ready: all but not-ready. Schedulable: Ready and not cordoned.
	// Usable: ok and by-labels.
	want := [6]int{5, 2, 6, 4, 2, 2}
	if got != want {
		t.Errorf("status, labels, ready, schedulable, usable, availability usable = %v, want %v\n%s", got, want, pretty(c))
	}
	if c.Name != "gvisor" || c.Handler != "runsc" || c.GPU || !c.Availability.Available || c.Availability.Source != "status+labels" {
		t.Errorf("class %s", pretty(c))
	}
	if snap := v.Snapshot().Classes["gvisor"].Availability; !reflect.DeepEqual(snap, c.Availability) {
		t.Errorf("inventory availability differs from the snapshot's:\n%s\n%s", pretty(c.Availability), pretty(snap))
	}
}

func TestList(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tenant-a", Labels: map[string]string{"runtimeguard.io/tenancy": "untrusted"}, Annotations: map[string]string{"a": "b"}}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		newNode("s1", labelled(gvisorLabel, "true"), handlers("runsc")),
		newNode("s2", labelled(gvisorLabel, "true"), handlers("runc")),
		gvisorClass(),
		newClass("kata", "kata-qemu", nil),
		ns,
	).Build()
	v, err := List(context.Background(), c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !v.Synced() {
		t.Error("List returned a view that is not synced")
	}
	snap := v.Snapshot()
	if snap.Nodes != 2 || !reflect.DeepEqual(snap.ClassNames(), []string{"gvisor", "kata"}) {
		t.Errorf("snapshot: %d nodes, classes %v", snap.Nodes, snap.ClassNames())
	}
	if a := snap.Classes["gvisor"].Availability; !a.Available || a.Counts.ByStatus != 1 || a.Counts.Drift != 1 {
		t.Errorf("gvisor availability %s", pretty(a))
	}
	got, found, err := v.Namespace(context.Background(), "tenant-a")
	if err != nil || !found || got.Labels["runtimeguard.io/tenancy"] != "untrusted" || got.Annotations["a"] != "b" {
		t.Errorf("namespace tenant-a: %+v found=%v err=%v", got, found, err)
	}
	if got := findingKeys(v.Inventory(GPUPolicy{})); !reflect.DeepEqual(got, []string{"class-unrunnable:kata:", "label-drift:gvisor:s2"}) {
		t.Errorf("findings %q", got)
	}
}
