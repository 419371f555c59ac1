package cluster

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"unique"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// nodeFacts is what availability needs from a Node. Comparing facts lets the view ignore the
// status updates a kubelet sends every few seconds that change nothing here. Facts are never
// modified once built: an update builds new ones. They are also what the informer cache stores
// for a Node (records.go).
type nodeFacts struct {
	name        string
	labels      labelSet
	ready       bool
	schedulable bool
	// taints holds only NoSchedule and NoExecute taints: PreferNoSchedule never blocks a Pod.
	taints []corev1.Taint
	// reportsHandlers is true when status.runtimeHandlers is non-empty (Kubernetes 1.30+ with a
	// CRI that reports handlers). Then the list is the truth and labels are not consulted.
	reportsHandlers bool
	handlers        handlerSet
}

func factsOf(n *corev1.Node) *nodeFacts {
	f := &nodeFacts{labels: labelSetOf(n.Labels), schedulable: !n.Spec.Unschedulable}
	// The name shares the interned hostname label's string when they are equal, as they
	// usually are.
	f.name = unique.Make(n.Name).Value()
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			f.ready = c.Status == corev1.ConditionTrue
		}
	}
	for _, t := range n.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			f.taints = append(f.taints, corev1.Taint{Key: t.Key, Value: t.Value, Effect: t.Effect})
		}
	}
	if len(n.Status.RuntimeHandlers) > 0 {
		f.reportsHandlers = true
		f.handlers = handlerSetOf(n.Status.RuntimeHandlers)
	}
	return f
}

func (f *nodeFacts) equal(o *nodeFacts) bool {
	return f.ready == o.ready && f.schedulable == o.schedulable && f.reportsHandlers == o.reportsHandlers &&
		slices.Equal(f.labels, o.labels) && slices.Equal(f.handlers, o.handlers) &&
		slices.EqualFunc(f.taints, o.taints, func(a, b corev1.Taint) bool {
			return a.Key == b.Key && a.Value == b.Value && a.Effect == b.Effect
		})
}

// outcome is what one Node means for one RuntimeClass.
type outcome int

const (
	availableByStatus outcome = iota // Ready, schedulable, tolerated, status.runtimeHandlers lists the handler
	availableByLabels                // same, but the node reports no handlers and matches the class's nodeSelector
	notReady                         // advertises the handler but is not Ready
	cordoned                         // advertises the handler but spec.unschedulable
	untolerated                      // advertises the handler but has a taint the class does not tolerate
	selectorMismatch                 // status lists the handler but labels miss the class's nodeSelector
	drift                            // labels match the class's nodeSelector, status lacks the handler
	silent                           // reports no handlers and the class has no nodeSelector: unknowable
	unlabelled                       // reports no handlers and lacks the class's nodeSelector labels
	absent                           // does not run the handler
	numOutcomes
)

func classify(n *nodeFacts, c *Class) outcome {
	if c.Handler == "" {
		return absent
	}
	matches := n.labels.matches(c.NodeSelector)
	if n.reportsHandlers {
		if !n.handlers.has(c.Handler) {
			if len(c.NodeSelector) > 0 && matches {
				return drift
			}
			return absent
		}
		if !matches {
			return selectorMismatch
		}
	} else {
		if len(c.NodeSelector) == 0 {
			return silent
		}
		if !matches {
			return unlabelled
		}
	}
	switch {
	case !n.ready:
		return notReady
	case !n.schedulable:
		return cordoned
	case !tolerates(c.Tolerations, n.taints):
		return untolerated
	case n.reportsHandlers:
		return availableByStatus
	default:
		return availableByLabels
	}
}

func tolerates(tolerations []corev1.Toleration, taints []corev1.Taint) bool {
	for i := range taints {
		ok := false
		for j := range tolerations {
			if tolerations[j].ToleratesTaint(klog.Background(), &taints[i], true) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// Counts says how the cluster's Nodes relate to one RuntimeClass.
type Counts struct {
	// Nodes is the number of Nodes in the cluster.
	Nodes int `json:"nodes"`
	// Reporting is the number of Nodes that report status.runtimeHandlers at all.
	Reporting int `json:"reporting"`
	// ByStatus and ByLabels count usable Nodes (Ready, schedulable, tolerated) advertising the
	// handler through status.runtimeHandlers or through the class's nodeSelector labels.
	ByStatus int `json:"byStatus"`
	ByLabels int `json:"byLabels"`
	// Nodes that advertise the handler but cannot take the Pod.
	NotReady         int `json:"notReady"`
	Cordoned         int `json:"cordoned"`
	Untolerated      int `json:"untolerated"`
	SelectorMismatch int `json:"selectorMismatch"`
	// Drift counts Nodes whose labels match the class's nodeSelector while their
	// status.runtimeHandlers does not list the handler.
	Drift int `json:"drift"`
	// Unlabelled counts Nodes that report no runtime handlers and lack the class's nodeSelector.
	Unlabelled int `json:"unlabelled"`
}

func (c *Counts) add(o outcome, delta int) {
	switch o {
	case availableByStatus:
		c.ByStatus += delta
	case availableByLabels:
		c.ByLabels += delta
	case notReady:
		c.NotReady += delta
	case cordoned:
		c.Cordoned += delta
	case untolerated:
		c.Untolerated += delta
	case selectorMismatch:
		c.SelectorMismatch += delta
	case drift:
		c.Drift += delta
	case unlabelled:
		c.Unlabelled += delta
	}
}

// Availability says whether Pods of a RuntimeClass can run anywhere, and why.
type Availability struct {
	// Available: at least one usable Node advertises the handler, or nothing can be known and
	// unknown classes are allowed.
	Available bool `json:"available"`
	// Known is false when no Node reports runtime handlers and the class has no nodeSelector.
	Known bool `json:"known"`
	// Source is "status", "labels", "status+labels", "unknown" or "none".
	Source string `json:"source"`
	// Reason is a sentence for users; it names the handler, the node counts and the case that hit.
	Reason string `json:"reason"`
	Counts Counts `json:"counts"`
}

func availabilityOf(c *Class, counts Counts, requireAdvertised bool) Availability {
	a := Availability{Counts: counts, Known: true}
	usable := counts.ByStatus + counts.ByLabels
	switch {
	case c.Handler == "":
		a.Source = "none"
		a.Reason = "the RuntimeClass has an empty handler, so no node can run it"
	case usable > 0:
		a.Available = true
		switch {
		case counts.ByStatus > 0 && counts.ByLabels > 0:
			a.Source = "status+labels"
		case counts.ByStatus > 0:
			a.Source = "status"
		default:
			a.Source = "labels"
		}
		a.Reason = fmt.Sprintf("%d of %d nodes can run handler %q (%d via status.runtimeHandlers, %d via labels %s)",
			usable, counts.Nodes, c.Handler, counts.ByStatus, counts.ByLabels, selectorText(c.NodeSelector))
	case len(c.NodeSelector) == 0 && (counts.Reporting == 0 || counts.Reporting < counts.Nodes):
		// Nodes that report no handlers (older runtimes, or a cluster mid-upgrade) may run it,
		// and without a nodeSelector nothing says whether they do.
		a.Known = false
		a.Available = !requireAdvertised
		a.Source = "unknown"
		if counts.Reporting == 0 {
			a.Reason = fmt.Sprintf("cannot tell whether any node runs handler %q: no node reports status.runtimeHandlers "+
				"and the RuntimeClass has no scheduling.nodeSelector (%d nodes)", c.Handler, counts.Nodes)
		} else {
			a.Reason = fmt.Sprintf("cannot tell whether any node runs handler %q: %d of %d nodes report no status.runtimeHandlers "+
				"(older container runtimes) and the RuntimeClass has no scheduling.nodeSelector; the %d that report handlers do not list it",
				c.Handler, counts.Nodes-counts.Reporting, counts.Nodes, counts.Reporting)
		}
		if requireAdvertised {
			a.Reason += "; --require-advertised-handlers is set"
		}
	default:
		a.Source = "none"
		a.Reason = fmt.Sprintf("no Ready, schedulable node advertises handler %q (0 of %d nodes%s)",
			c.Handler, counts.Nodes, detailText(c, counts))
	}
	return a
}

func detailText(c *Class, n Counts) string {
	var parts []string
	if n.Drift > 0 {
		parts = append(parts, fmt.Sprintf("%d match scheduling.nodeSelector %s but report status.runtimeHandlers without %q",
			n.Drift, selectorText(c.NodeSelector), c.Handler))
	}
	if n.Unlabelled > 0 {
		parts = append(parts, fmt.Sprintf("%d report no runtime handlers and lack labels %s", n.Unlabelled, selectorText(c.NodeSelector)))
	}
	for _, p := range []struct {
		count int
		what  string
	}{
		{n.NotReady, "are NotReady"},
		{n.Cordoned, "are cordoned"},
		{n.Untolerated, "have NoSchedule/NoExecute taints the RuntimeClass does not tolerate"},
		{n.SelectorMismatch, "do not match scheduling.nodeSelector " + selectorText(c.NodeSelector)},
	} {
		if p.count > 0 {
			parts = append(parts, fmt.Sprintf("%d advertise it but %s", p.count, p.what))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, "; ")
}

func selectorText(selector map[string]string) string {
	if len(selector) == 0 {
		return "(no scheduling.nodeSelector)"
	}
	keys := make([]string, 0, len(selector))
	for k := range selector {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + selector[k]
	}
	return strings.Join(keys, ",")
}
