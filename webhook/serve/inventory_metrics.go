package serve

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

// InventoryCollector exports `runtimeguard inventory` as metrics, computed from the cluster view
// at scrape time (one walk of nodes x classes per scrape, never on the admission path). Until the
// view is synced it exports nothing, so alerts do not fire on a half-filled view.
type InventoryCollector struct {
	view *cluster.View
	gpu  func() cluster.GPUPolicy

	nodes     *prometheus.Desc
	usable    *prometheus.Desc
	available *prometheus.Desc
	findings  *prometheus.Desc
}

// NewInventoryCollector returns a collector over view. gpu returns what the current policy's
// data says about GPUs (policy.Engine.GPUPolicy: GPU classes and the resource names that request
// a GPU), read at each scrape so a policy reload shows; it may be nil.
func NewInventoryCollector(view *cluster.View, gpu func() cluster.GPUPolicy) *InventoryCollector {
	return &InventoryCollector{
		view: view,
		gpu:  gpu,
		nodes: prometheus.NewDesc("runtimeguard_runtimeclass_nodes",
			"Nodes advertising a RuntimeClass's handler, by source: status (status.runtimeHandlers lists it) or labels (the node reports no handlers and matches the class's scheduling.nodeSelector).",
			[]string{"runtimeclass", "handler", "source"}, nil),
		usable: prometheus.NewDesc("runtimeguard_runtimeclass_usable_nodes",
			"Nodes a Pod of the RuntimeClass can be scheduled to: advertising the handler, Ready, not cordoned, taints tolerated, nodeSelector matched.",
			[]string{"runtimeclass", "handler"}, nil),
		available: prometheus.NewDesc("runtimeguard_runtimeclass_available",
			"1 when runtimeguard counts the RuntimeClass as available (what admission decides with), 0 otherwise.",
			[]string{"runtimeclass"}, nil),
		findings: prometheus.NewDesc("runtimeguard_drift_findings",
			"Drift findings of `runtimeguard inventory`, by kind (class-unrunnable, label-drift, shared-selector, gpu-class-unscheduled).",
			[]string{"kind"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *InventoryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.nodes
	ch <- c.usable
	ch <- c.available
	ch <- c.findings
}

// Collect implements prometheus.Collector.
func (c *InventoryCollector) Collect(ch chan<- prometheus.Metric) {
	if !c.view.Synced() {
		return
	}
	var gpu cluster.GPUPolicy
	if c.gpu != nil {
		gpu = c.gpu()
	}
	inv := c.view.Inventory(gpu)
	for _, ci := range inv.Classes {
		ch <- prometheus.MustNewConstMetric(c.nodes, prometheus.GaugeValue, float64(ci.AdvertisedByStatus), ci.Name, ci.Handler, "status")
		ch <- prometheus.MustNewConstMetric(c.nodes, prometheus.GaugeValue, float64(ci.AdvertisedByLabels), ci.Name, ci.Handler, "labels")
		ch <- prometheus.MustNewConstMetric(c.usable, prometheus.GaugeValue, float64(ci.Usable), ci.Name, ci.Handler)
		available := 0.0
		if ci.Availability.Available {
			available = 1
		}
		ch <- prometheus.MustNewConstMetric(c.available, prometheus.GaugeValue, available, ci.Name)
	}
	counts := inv.CountFindings()
	for _, kind := range cluster.FindingKinds {
		ch <- prometheus.MustNewConstMetric(c.findings, prometheus.GaugeValue, float64(counts[kind]), kind)
	}
}
