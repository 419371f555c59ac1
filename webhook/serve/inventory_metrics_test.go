package serve

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/runtimeguard/runtimeguard/policies"
	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/manifest"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

const inventoryHelp = `# HELP runtimeguard_drift_findings Drift findings of ` + "`runtimeguard inventory`" + `, by kind (class-unrunnable, label-drift, shared-selector, gpu-class-unscheduled).
# TYPE runtimeguard_drift_findings gauge
`

// driftCluster has one finding of each kind with the default policy's data (see the comments).
const driftCluster = `
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: kata}
handler: kata-qemu
scheduling: {nodeSelector: {katacontainers.io/kata-runtime: "true"}}
---
# shares kata's label with another handler (shared-selector); kata-1 is labelled for it but does
# not run it (label-drift), so nothing can run it (class-unrunnable)
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: kata-clh}
handler: kata-clh
scheduling: {nodeSelector: {katacontainers.io/kata-runtime: "true"}}
---
# a GPU class in data.yaml with no GPU scheduling (gpu-class-unscheduled)
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: nvidia}
handler: nvidia
---
apiVersion: v1
kind: Node
metadata:
  name: kata-1
  labels: {katacontainers.io/kata-runtime: "true"}
status:
  conditions: [{type: Ready, status: "True"}]
  runtimeHandlers: [{name: runc}, {name: kata-qemu}]
---
apiVersion: v1
kind: Node
metadata:
  name: old-1
  labels: {katacontainers.io/kata-runtime: "true"}
status:
  conditions: [{type: Ready, status: "True"}]
---
apiVersion: v1
kind: Node
metadata: {name: gpu-1}
status:
  conditions: [{type: Ready, status: "True"}]
  runtimeHandlers: [{name: runc}, {name: nvidia}]
`

// collectText registers c alone in a pedantic registry (which also checks that Collect matches
// Describe and that every metric is consistent), gathers, and prints the families named (all when
// none) in the text exposition format, sorted by name and labels. It is what
// prometheus/testutil.CollectAndCompare does; testutil itself needs a go.sum entry for
// github.com/kylelemons/godebug that go.mod does not have yet.
func collectText(t *testing.T, c prometheus.Collector, names ...string) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, mf := range families {
		if len(names) > 0 && !containsString(names, mf.GetName()) {
			continue
		}
		if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
			t.Fatal(err)
		}
	}
	return buf.String()
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func compareMetrics(t *testing.T, c prometheus.Collector, want string, names ...string) {
	t.Helper()
	if got := collectText(t, c, names...); got != want {
		t.Errorf("metrics\n%s\nwant\n%s", got, want)
	}
}

func viewFromYAML(t *testing.T, doc string) *cluster.View {
	t.Helper()
	objs, err := manifest.Read(strings.NewReader(doc), "test")
	if err != nil {
		t.Fatal(err)
	}
	v := cluster.NewView(cluster.Options{})
	if err := v.Load(objs); err != nil {
		t.Fatal(err)
	}
	v.MarkSynced()
	return v
}

func TestInventoryCollector(t *testing.T) {
	set, err := policy.LoadFS(policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := policy.NewEngine(context.Background(), set, 0)
	if err != nil {
		t.Fatal(err)
	}
	// kata-clh is available by labels through old-1 (which reports no handlers): the label-drift
	// on kata-1 stays a finding, but the class is not unrunnable.
	c := NewInventoryCollector(viewFromYAML(t, driftCluster), engine.GPUPolicy)
	want := inventoryHelp + `runtimeguard_drift_findings{kind="class-unrunnable"} 0
runtimeguard_drift_findings{kind="gpu-class-unscheduled"} 1
runtimeguard_drift_findings{kind="label-drift"} 1
runtimeguard_drift_findings{kind="shared-selector"} 1
# HELP runtimeguard_runtimeclass_available 1 when runtimeguard counts the RuntimeClass as available (what admission decides with), 0 otherwise.
# TYPE runtimeguard_runtimeclass_available gauge
runtimeguard_runtimeclass_available{runtimeclass="kata"} 1
runtimeguard_runtimeclass_available{runtimeclass="kata-clh"} 1
runtimeguard_runtimeclass_available{runtimeclass="nvidia"} 1
# HELP runtimeguard_runtimeclass_nodes Nodes advertising a RuntimeClass's handler, by source: status (status.runtimeHandlers lists it) or labels (the node reports no handlers and matches the class's scheduling.nodeSelector).
# TYPE runtimeguard_runtimeclass_nodes gauge
runtimeguard_runtimeclass_nodes{handler="kata-clh",runtimeclass="kata-clh",source="labels"} 1
runtimeguard_runtimeclass_nodes{handler="kata-clh",runtimeclass="kata-clh",source="status"} 0
runtimeguard_runtimeclass_nodes{handler="kata-qemu",runtimeclass="kata",source="labels"} 1
runtimeguard_runtimeclass_nodes{handler="kata-qemu",runtimeclass="kata",source="status"} 1
runtimeguard_runtimeclass_nodes{handler="nvidia",runtimeclass="nvidia",source="labels"} 0
runtimeguard_runtimeclass_nodes{handler="nvidia",runtimeclass="nvidia",source="status"} 1
# HELP runtimeguard_runtimeclass_usable_nodes Nodes a Pod of the RuntimeClass can be scheduled to: advertising the handler, Ready, not cordoned, taints tolerated, nodeSelector matched.
# TYPE runtimeguard_runtimeclass_usable_nodes gauge
runtimeguard_runtimeclass_usable_nodes{handler="kata-clh",runtimeclass="kata-clh"} 1
runtimeguard_runtimeclass_usable_nodes{handler="kata-qemu",runtimeclass="kata"} 2
runtimeguard_runtimeclass_usable_nodes{handler="nvidia",runtimeclass="nvidia"} 1
`
	compareMetrics(t, c, want)

	// The collector registers next to the pipeline's metrics, as Run does.
	reg := prometheus.NewPedanticRegistry()
	webhook.NewMetrics(reg)
	newReloadMetrics(reg)
	reg.MustRegister(NewInventoryCollector(viewFromYAML(t, driftCluster), engine.GPUPolicy))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range families {
		if mf.GetName() == "runtimeguard_drift_findings" {
			found = len(mf.GetMetric()) == 4
		}
	}
	if !found {
		t.Error("runtimeguard_drift_findings with 4 series not gathered next to NewMetrics")
	}
}

func TestInventoryCollectorFollowsThePolicyData(t *testing.T) {
	view := viewFromYAML(t, driftCluster)
	gpuTraits := map[string]any{"gpu": map[string]any{"extended_resources": []any{"nvidia.com/gpu"}, "requires": map[string]any{"gpu": true}}}
	data := map[string]any{"config": map[string]any{"traits": gpuTraits, "classes": []any{map[string]any{"name": "nvidia", "gpu": false}}}}
	c := NewInventoryCollector(view, func() cluster.GPUPolicy { return (&policy.Set{Data: data}).GPUPolicy() })
	want := inventoryHelp + `runtimeguard_drift_findings{kind="class-unrunnable"} 0
runtimeguard_drift_findings{kind="gpu-class-unscheduled"} 0
runtimeguard_drift_findings{kind="label-drift"} 1
runtimeguard_drift_findings{kind="shared-selector"} 1
`
	compareMetrics(t, c, want, "runtimeguard_drift_findings")
	// A policy reload that marks nvidia as a GPU class shows at the next scrape.
	data = map[string]any{"config": map[string]any{"traits": gpuTraits, "classes": []any{map[string]any{"name": "nvidia", "gpu": true}}}}
	compareMetrics(t, c, strings.Replace(want, `"gpu-class-unscheduled"} 0`, `"gpu-class-unscheduled"} 1`, 1), "runtimeguard_drift_findings")
	// So does one that names another GPU resource, which nvidia's scheduling does not mention.
	gpuTraits["gpu"].(map[string]any)["extended_resources"] = []any{"amd.com/gpu"}
	compareMetrics(t, c, strings.Replace(want, `"gpu-class-unscheduled"} 0`, `"gpu-class-unscheduled"} 1`, 1), "runtimeguard_drift_findings")
	// nil gpu: no GPU classes.
	compareMetrics(t, NewInventoryCollector(view, nil), want, "runtimeguard_drift_findings")
}

func TestInventoryCollectorWaitsForTheView(t *testing.T) {
	v := cluster.NewView(cluster.Options{})
	c := NewInventoryCollector(v, nil)
	if got := collectText(t, c); got != "" {
		t.Errorf("an unsynced view exported metrics:\n%s", got)
	}
	v.MarkSynced()
	want := inventoryHelp + `runtimeguard_drift_findings{kind="class-unrunnable"} 0
runtimeguard_drift_findings{kind="gpu-class-unscheduled"} 0
runtimeguard_drift_findings{kind="label-drift"} 0
runtimeguard_drift_findings{kind="shared-selector"} 0
`
	compareMetrics(t, c, want)
}
