package webhook

import (
	"fmt"
	"sort"
	"strings"

	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// checkClass holds the checks that are product guarantees rather than policy, for the class a
// Pod names: it exists, a node the Pod can reach runs it, and it does not contradict the Pod's
// nodeSelector. The contradictions are found by the policy (decision.conflicts); this words them.
func checkClass(class string, d *policy.Decision, snap *cluster.Snapshot, reach *cluster.PodReach) (denials, warnings []string) {
	rc, ok := snap.Classes[class]
	if !ok {
		return []string{fmt.Sprintf("pod rejected: RuntimeClass %q not found; existing runtime classes: %s; create it or fix spec.runtimeClassName",
			class, listOrNone(snap.ClassNames()))}, nil
	}
	for _, c := range d.Conflicts {
		denials = append(denials, fmt.Sprintf("pod rejected: conflict: runtimeClass.scheduling.nodeSelector[%s] = %s; pod.spec.nodeSelector[%s] = %s; RuntimeClass %q only runs on nodes labelled %s=%s, so remove %s from spec.nodeSelector or choose another runtime class",
			c.Key, c.ClassValue, c.Key, c.PodValue, class, c.Key, c.ClassValue, c.Key))
	}
	if len(denials) > 0 {
		return denials, nil // the merged selector matches nothing: saying so again adds nothing
	}
	r := rc.Availability.Reach()
	if reach != nil {
		r = reach.Classes[class]
	}
	switch {
	case !r.Available && (reach == nil || reach.Constraint == ""):
		denials = append(denials, fmt.Sprintf("pod rejected: RuntimeClass %q (handler %q): %s; run the handler on a node (its CRI must report it in status.runtimeHandlers, or label the node %s) or choose another runtime class",
			class, rc.Handler, r.Reason, selectorOrHint(rc.NodeSelector)))
	case !r.Available:
		denials = append(denials, fmt.Sprintf("pod rejected: RuntimeClass %q (handler %q) cannot run this pod: %s; %s, or choose another runtime class",
			class, rc.Handler, r.Reason, reach.Fix))
	case !r.Known:
		warnings = append(warnings, fmt.Sprintf("RuntimeClass %q (handler %q): %s; admitted anyway (runtimeguard --require-advertised-handlers would deny)",
			class, rc.Handler, r.Reason))
	}
	return denials, warnings
}

func selectorOrHint(sel map[string]string) string {
	if len(sel) == 0 {
		return "and give the RuntimeClass a scheduling.nodeSelector"
	}
	keys := make([]string, 0, len(sel))
	for k, v := range sel {
		keys = append(keys, k+"="+v)
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
