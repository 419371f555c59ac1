package cluster

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Kinds of drift finding. They are metric label values too (runtimeguard_drift_findings{kind}):
// keep them stable.
const (
	// FindingUnrunnable: a RuntimeClass no Ready, schedulable node can run, while the view can
	// tell (some node reports runtime handlers, or the class has a nodeSelector).
	FindingUnrunnable = "class-unrunnable"
	// FindingLabelDrift: nodes whose labels match a class's scheduling.nodeSelector (so the
	// labels claim the handler) while their status.runtimeHandlers does not list it.
	FindingLabelDrift = "label-drift"
	// FindingSharedSelector: one nodeSelector label key=value selected by classes with different
	// handlers (kata-deploy labels every kata node katacontainers.io/kata-runtime=true for all
	// its handlers). On nodes that do not report status.runtimeHandlers such a label cannot tell
	// which handler a node runs.
	FindingSharedSelector = "shared-selector"
	// FindingGPUUnscheduled: a class the policy data marks gpu: true whose scheduling mentions
	// none of the GPU resource names of the policy data (GPUPolicy.Resources, such as
	// nvidia.com/gpu): no scheduling.nodeSelector key or value and no toleration key contains
	// one. The cluster view keeps no node capacity, so this is a check of the RuntimeClass
	// alone: its Pods may land on nodes without a GPU.
	FindingGPUUnscheduled = "gpu-class-unscheduled"
)

// FindingKinds lists every kind, in report order.
var FindingKinds = []string{FindingUnrunnable, FindingLabelDrift, FindingSharedSelector, FindingGPUUnscheduled}

// GPUPolicy is what the policy data says about GPUs (policy.Set.GPUPolicy): the classes it
// marks gpu: true and the extended resource names that request a GPU (nvidia.com/gpu), by
// which GPU scheduling is recognised.
type GPUPolicy struct {
	Classes   map[string]bool
	Resources []string
}

// Inventory is every RuntimeClass with the nodes that can run it, and what looks wrong.
type Inventory struct {
	// Nodes is the number of Nodes; Reporting how many report status.runtimeHandlers.
	Nodes     int              `json:"nodes"`
	Reporting int              `json:"reportingHandlers"`
	Classes   []ClassInventory `json:"runtimeClasses"`
	Findings  []Finding        `json:"findings"`
}

// ClassInventory is one RuntimeClass's nodes.
type ClassInventory struct {
	Name         string            `json:"name"`
	Handler      string            `json:"handler"`
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// GPU is true when the policy data marks the class gpu: true.
	GPU bool `json:"gpu"`
	// AdvertisedByStatus counts nodes whose status.runtimeHandlers lists the handler;
	// AdvertisedByLabels nodes that report no handlers and match the class's nodeSelector.
	AdvertisedByStatus int `json:"advertisedByStatus"`
	AdvertisedByLabels int `json:"advertisedByLabels"`
	// Ready counts advertising nodes that are Ready; Schedulable those also not cordoned.
	Ready       int `json:"ready"`
	Schedulable int `json:"schedulable"`
	// Usable counts nodes a Pod of the class can be scheduled to: advertising, Ready, not
	// cordoned, taints tolerated and nodeSelector matched (what availability counts).
	Usable       int          `json:"usable"`
	Availability Availability `json:"availability"`
}

// Finding is one drift finding.
type Finding struct {
	Kind           string   `json:"kind"`
	RuntimeClasses []string `json:"runtimeClasses"`
	Nodes          []string `json:"nodes,omitempty"`
	// Label is the key=value of a shared-selector finding.
	Label   string `json:"label,omitempty"`
	Message string `json:"message"`
}

// CountFindings returns the number of findings of each kind, every kind present.
func (inv *Inventory) CountFindings() map[string]int {
	out := make(map[string]int, len(FindingKinds))
	for _, k := range FindingKinds {
		out[k] = 0
	}
	for _, f := range inv.Findings {
		out[f.Kind]++
	}
	return out
}

// Inventory walks every node for every class: O(nodes x classes), for the inventory command and
// metric scrapes, never for admission. gpu is what the current policy data says about GPUs.
func (v *View) Inventory(gpu GPUPolicy) *Inventory {
	v.mu.RLock()
	defer v.mu.RUnlock()
	inv := &Inventory{Nodes: len(v.nodes), Reporting: v.reporting, Classes: []ClassInventory{}, Findings: []Finding{}}
	nodeNames := make([]string, 0, len(v.nodes))
	for name := range v.nodes {
		nodeNames = append(nodeNames, name)
	}
	sort.Strings(nodeNames)
	classNames := make([]string, 0, len(v.classes))
	for name := range v.classes {
		classNames = append(classNames, name)
	}
	sort.Strings(classNames)

	for _, cn := range classNames {
		e := v.classes[cn]
		c := e.class
		counts := e.counts
		counts.Nodes, counts.Reporting = len(v.nodes), v.reporting
		ci := ClassInventory{Name: cn, Handler: c.Handler, NodeSelector: c.NodeSelector, GPU: gpu.Classes[cn],
			Availability: availabilityOf(&c, counts, v.opts.RequireAdvertisedHandlers)}
		var drifted []string
		for _, nn := range nodeNames {
			n := v.nodes[nn]
			advertises := false
			switch {
			case c.Handler == "":
			case n.reportsHandlers:
				if advertises = n.handlers.has(c.Handler); advertises {
					ci.AdvertisedByStatus++
				}
			case len(c.NodeSelector) > 0 && n.labels.matches(c.NodeSelector):
				advertises = true
				ci.AdvertisedByLabels++
			}
			if advertises && n.ready {
				ci.Ready++
				if n.schedulable {
					ci.Schedulable++
				}
			}
			switch classify(n, &c) {
			case availableByStatus, availableByLabels:
				ci.Usable++
			case drift:
				drifted = append(drifted, nn)
			}
		}
		inv.Classes = append(inv.Classes, ci)

		if a := ci.Availability; !a.Available && a.Known {
			inv.Findings = append(inv.Findings, Finding{Kind: FindingUnrunnable, RuntimeClasses: []string{cn},
				Message: fmt.Sprintf("RuntimeClass %q: %s", cn, a.Reason)})
		}
		if len(drifted) > 0 {
			inv.Findings = append(inv.Findings, Finding{Kind: FindingLabelDrift, RuntimeClasses: []string{cn}, Nodes: drifted,
				Message: fmt.Sprintf("%s labelled %s (RuntimeClass %q's scheduling.nodeSelector) but status.runtimeHandlers does not list handler %q: the labels claim a runtime the node does not report",
					nodesText(drifted), selectorText(c.NodeSelector), cn, c.Handler)})
		}
		// Without GPU resource names in the policy data there is nothing to look for.
		if ci.GPU && len(gpu.Resources) > 0 && !mentionsGPU(&c, gpu.Resources) {
			inv.Findings = append(inv.Findings, Finding{Kind: FindingGPUUnscheduled, RuntimeClasses: []string{cn},
				Message: fmt.Sprintf("RuntimeClass %q is a GPU class in the policy data (gpu: true) but neither its scheduling.nodeSelector nor its tolerations mention %s: its Pods may be scheduled to nodes without a GPU",
					cn, strings.Join(gpu.Resources, " or "))})
			// (the view keeps no node capacity, so nodes are not checked for GPU capacity)
		}
	}
	inv.Findings = append(inv.Findings, v.sharedSelectorsLocked(classNames, nodeNames)...)
	order := map[string]int{}
	for i, k := range FindingKinds {
		order[k] = i
	}
	sort.SliceStable(inv.Findings, func(i, j int) bool { return order[inv.Findings[i].Kind] < order[inv.Findings[j].Kind] })
	return inv
}

// sharedSelectorsLocked finds nodeSelector labels that classes with different handlers share.
func (v *View) sharedSelectorsLocked(classNames, nodeNames []string) []Finding {
	byLabel := map[string][]string{}
	for _, cn := range classNames {
		for k, val := range v.classes[cn].class.NodeSelector {
			label := k + "=" + val
			byLabel[label] = append(byLabel[label], cn)
		}
	}
	labels := make([]string, 0, len(byLabel))
	for l := range byLabel {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	var out []Finding
	for _, label := range labels {
		classes := byLabel[label]
		handlers := map[string]bool{}
		parts := make([]string, 0, len(classes))
		for _, cn := range classes {
			h := v.classes[cn].class.Handler
			handlers[h] = true
			parts = append(parts, fmt.Sprintf("%s (handler %q)", cn, h))
		}
		if len(handlers) < 2 {
			continue
		}
		k, val, _ := strings.Cut(label, "=")
		labelled, silent := 0, 0
		for _, nn := range nodeNames {
			n := v.nodes[nn]
			if got, ok := n.labels.get(k); ok && got == val {
				labelled++
				if !n.reportsHandlers {
					silent++
				}
			}
		}
		out = append(out, Finding{Kind: FindingSharedSelector, RuntimeClasses: classes, Label: label,
			Message: fmt.Sprintf("label %s is the scheduling.nodeSelector of %s: on a node that does not report status.runtimeHandlers the label cannot tell which handler it runs (%d %s the label, %d of them %s no handlers)",
				label, strings.Join(parts, ", "), labelled, plural(labelled, "node carries", "nodes carry"), silent, plural(silent, "reports", "report"))})
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// mentionsGPU reports whether the class's scheduling names one of resources (nvidia.com/gpu
// also matches the GPU operator's label nvidia.com/gpu.present).
func mentionsGPU(c *Class, resources []string) bool {
	for _, r := range resources {
		for k, val := range c.NodeSelector {
			if strings.Contains(k, r) || strings.Contains(val, r) {
				return true
			}
		}
		for _, t := range c.Tolerations {
			if strings.Contains(t.Key, r) {
				return true
			}
		}
	}
	return false
}

func nodesText(nodes []string) string {
	const show = 5
	switch {
	case len(nodes) == 1:
		return fmt.Sprintf("node %s is", nodes[0])
	case len(nodes) <= show:
		return fmt.Sprintf("nodes %s are", strings.Join(nodes, ", "))
	}
	return fmt.Sprintf("nodes %s and %d more are", strings.Join(nodes[:show], ", "), len(nodes)-show)
}

// List builds a synced view from one listing of the Nodes, RuntimeClasses, Namespaces and
// resource claims (ResourceClaimTemplates, ResourceClaims) that reader sees: a one-shot
// picture for commands (explain, inventory), no informers.
func List(ctx context.Context, reader client.Reader, opts Options) (*View, error) {
	v := NewView(opts)
	if err := listPages(ctx, reader, func() *corev1.NodeList { return &corev1.NodeList{} }, func(l *corev1.NodeList) {
		for i := range l.Items {
			v.UpsertNode(&l.Items[i])
		}
	}); err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	if err := listPages(ctx, reader, func() *nodev1.RuntimeClassList { return &nodev1.RuntimeClassList{} }, func(l *nodev1.RuntimeClassList) {
		for i := range l.Items {
			v.UpsertRuntimeClass(&l.Items[i])
		}
	}); err != nil {
		return nil, fmt.Errorf("listing runtimeclasses: %w", err)
	}
	if err := listPages(ctx, reader, func() *corev1.NamespaceList { return &corev1.NamespaceList{} }, func(l *corev1.NamespaceList) {
		for _, ns := range l.Items {
			v.UpsertNamespace(Namespace{Name: ns.Name, Labels: ns.Labels, Annotations: ns.Annotations})
		}
	}); err != nil {
		return nil, fmt.Errorf("listing namespaces: %w", err)
	}
	if err := listClaims(ctx, reader, v); err != nil {
		return nil, err
	}
	v.MarkSynced()
	return v, nil
}

// listPages lists in pages of 500, handing each page to each.
func listPages[L client.ObjectList](ctx context.Context, reader client.Reader, newList func() L, each func(L)) error {
	token := ""
	for {
		page := newList()
		if err := reader.List(ctx, page, client.Limit(500), client.Continue(token)); err != nil {
			return err
		}
		each(page)
		if token = page.GetContinue(); token == "" {
			return nil
		}
	}
}
