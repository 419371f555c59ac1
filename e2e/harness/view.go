package harness

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/runtimeguard/runtimeguard/e2e/controlplane"
)

// ClassState is one RuntimeClass as a webhook's cluster view sees it, read from its /metrics:
// runtimeguard_runtimeclass_usable_nodes and runtimeguard_runtimeclass_available, which the
// webhook computes at scrape time from the same view (informer caches) admission decides
// with.
type ClassState struct {
	Handler   string
	Usable    int
	Available bool
}

// ClusterView is every RuntimeClass of a webhook's view, by name. It is empty until the
// webhook's view is synced (the collector exports nothing before).
type ClusterView map[string]ClassState

// Equal reports whether v and o have the same classes in the same states.
func (v ClusterView) Equal(o ClusterView) bool { return maps.Equal(v, o) }

// String lists the classes in name order: "gvisor(runsc) usable=1 available, ...".
func (v ClusterView) String() string {
	if len(v) == 0 {
		return "(no RuntimeClass: the view is not synced or empty)"
	}
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(v)) {
		c := v[name]
		avail := "available"
		if !c.Available {
			avail = "unavailable"
		}
		parts = append(parts, fmt.Sprintf("%s(%s) usable=%d %s", name, c.Handler, c.Usable, avail))
	}
	return strings.Join(parts, ", ")
}

// ParseClusterView reads the classes from the text of a webhook's /metrics.
func ParseClusterView(metrics string) (ClusterView, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(metrics))
	if err != nil {
		return nil, fmt.Errorf("parsing /metrics: %w", err)
	}
	v := ClusterView{}
	label := func(m *dto.Metric, name string) string {
		for _, l := range m.GetLabel() {
			if l.GetName() == name {
				return l.GetValue()
			}
		}
		return ""
	}
	if f := families["runtimeguard_runtimeclass_usable_nodes"]; f != nil {
		for _, m := range f.GetMetric() {
			name := label(m, "runtimeclass")
			c := v[name]
			c.Handler = label(m, "handler")
			c.Usable = int(m.GetGauge().GetValue())
			v[name] = c
		}
	}
	if f := families["runtimeguard_runtimeclass_available"]; f != nil {
		for _, m := range f.GetMetric() {
			name := label(m, "runtimeclass")
			c := v[name]
			c.Available = m.GetGauge().GetValue() == 1
			v[name] = c
		}
	}
	return v, nil
}

// ClusterView returns the webhook's current view of the RuntimeClasses.
func (w *Webhook) ClusterView() (ClusterView, error) {
	m, err := w.Metrics()
	if err != nil {
		return nil, err
	}
	return ParseClusterView(m)
}

// StandardView is the view of a webhook once it has seen StandardClasses and StandardNodes,
// and nothing else: every class is available on exactly one usable node (gvisor on
// sandbox-1, kata on kata-1, nvidia and gvisor-nvidia on gpu-1).
func StandardView() ClusterView {
	v := ClusterView{}
	for _, rc := range StandardClasses() {
		v[rc.Name] = ClassState{Handler: rc.Handler, Usable: 1, Available: true}
	}
	return v
}

// WaitForView polls w's /metrics until its view satisfies cond, for at most timeout. The
// error names the last view seen.
func WaitForView(ctx context.Context, w *Webhook, timeout time.Duration, what string, cond func(ClusterView) bool) error {
	var last ClusterView
	err := controlplane.Wait(ctx, timeout, func(context.Context) (bool, error) {
		v, err := w.ClusterView()
		if err != nil {
			return false, err
		}
		last = v
		return cond(v), nil
	})
	if err != nil {
		return fmt.Errorf("the webhook (log %s) did not observe %s: its view is %s: %w", w.LogPath, what, last, err)
	}
	return nil
}

// WaitForStandardView waits until w's view is StandardView().
func WaitForStandardView(ctx context.Context, w *Webhook, timeout time.Duration) error {
	want := StandardView()
	return WaitForView(ctx, w, timeout, "the standard cluster ("+want.String()+")", want.Equal)
}

// MetricSum returns the sum of the samples of a counter or gauge on w's /metrics whose labels
// include every label in match (all samples when match is empty); 0 when there is none.
func (w *Webhook) MetricSum(name string, match map[string]string) (float64, error) {
	m, err := w.Metrics()
	if err != nil {
		return 0, err
	}
	return SumMetric(m, name, match)
}

// SumMetric is MetricSum on the text of a /metrics answer.
func SumMetric(metrics, name string, match map[string]string) (float64, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(metrics))
	if err != nil {
		return 0, fmt.Errorf("parsing /metrics: %w", err)
	}
	sum := 0.0
	for _, sample := range families[name].GetMetric() {
		labels := map[string]string{}
		for _, l := range sample.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		ok := true
		for k, v := range match {
			ok = ok && labels[k] == v
		}
		if !ok {
			continue
		}
		switch {
		case sample.Counter != nil:
			sum += sample.GetCounter().GetValue()
		case sample.Gauge != nil:
			sum += sample.GetGauge().GetValue()
		case sample.Untyped != nil:
			sum += sample.GetUntyped().GetValue()
		}
	}
	return sum, nil
}
