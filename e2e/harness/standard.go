package harness

import (
	"context"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Matches reports whether n is what ApplyNode(s) writes, in everything a cluster view reads:
// labels, spec.unschedulable, taints, the Ready condition and status.runtimeHandlers.
func (s NodeSpec) Matches(n *corev1.Node) bool {
	want := s.Object()
	if !maps.Equal(n.Labels, want.Labels) || n.Spec.Unschedulable != want.Spec.Unschedulable ||
		!equality.Semantic.DeepEqual(nonNilTaints(n.Spec.Taints), nonNilTaints(want.Spec.Taints)) {
		return false
	}
	ready := func(n *corev1.Node) corev1.ConditionStatus {
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status
			}
		}
		return ""
	}
	handlers := func(n *corev1.Node) []string {
		var out []string
		for _, h := range n.Status.RuntimeHandlers {
			out = append(out, h.Name)
		}
		return out
	}
	return ready(n) == ready(want) && slices.Equal(handlers(n), handlers(want))
}

func nonNilTaints(t []corev1.Taint) []corev1.Taint {
	if t == nil {
		return []corev1.Taint{}
	}
	return t
}

// classMatches reports whether the stored RuntimeClass got is the fixture want.
func classMatches(got, want *nodev1.RuntimeClass) bool {
	return got.Handler == want.Handler && equality.Semantic.DeepEqual(got.Overhead, want.Overhead) &&
		equality.Semantic.DeepEqual(got.Scheduling, want.Scheduling)
}

// RestoreStandardCluster makes the API objects the standard cluster again: StandardNodes and
// StandardClasses as the fixtures describe them, and no other Node or RuntimeClass. It writes
// only what differs, and returns what it had to change (nothing when every scenario cleaned
// up after itself). It does not wait for anyone to observe the result: see
// WaitForStandardView.
func RestoreStandardCluster(ctx context.Context, c client.Client) (changed []string, err error) {
	var nodes corev1.NodeList
	if err := c.List(ctx, &nodes); err != nil {
		return nil, err
	}
	have := map[string]*corev1.Node{}
	for i := range nodes.Items {
		have[nodes.Items[i].Name] = &nodes.Items[i]
	}
	standard := map[string]bool{}
	for _, spec := range StandardNodes() {
		standard[spec.Name] = true
		if n := have[spec.Name]; n != nil && spec.Matches(n) {
			continue
		}
		if err := ApplyNode(ctx, c, spec); err != nil {
			return changed, fmt.Errorf("restoring Node %s: %w", spec.Name, err)
		}
		changed = append(changed, "Node "+spec.Name+" restored")
	}
	for name, n := range have {
		if standard[name] {
			continue
		}
		if err := c.Delete(ctx, n); client.IgnoreNotFound(err) != nil {
			return changed, fmt.Errorf("deleting Node %s: %w", name, err)
		}
		changed = append(changed, "Node "+name+" deleted")
	}

	var classes nodev1.RuntimeClassList
	if err := c.List(ctx, &classes); err != nil {
		return changed, err
	}
	haveClass := map[string]*nodev1.RuntimeClass{}
	for i := range classes.Items {
		haveClass[classes.Items[i].Name] = &classes.Items[i]
	}
	standardClass := map[string]bool{}
	for _, rc := range StandardClasses() {
		standardClass[rc.Name] = true
		if got := haveClass[rc.Name]; got != nil && classMatches(got, rc) {
			continue
		}
		if err := ApplyClasses(ctx, c, []*nodev1.RuntimeClass{rc}); err != nil {
			return changed, fmt.Errorf("restoring RuntimeClass %s: %w", rc.Name, err)
		}
		changed = append(changed, "RuntimeClass "+rc.Name+" restored")
	}
	for name, rc := range haveClass {
		if standardClass[name] {
			continue
		}
		if err := c.Delete(ctx, rc); client.IgnoreNotFound(err) != nil {
			return changed, fmt.Errorf("deleting RuntimeClass %s: %w", name, err)
		}
		changed = append(changed, "RuntimeClass "+name+" deleted")
	}
	slices.Sort(changed)
	return changed, nil
}
