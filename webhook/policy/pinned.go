package policy

import (
	"strings"

	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

// NodePlaceholder stands for the name of the node a Pod is bound or pinned to, in what the
// policy is given, unless data.config.reads declares nodeName in pod_fields.
//
// Why: a DaemonSet rollout or a batch of bound Pods puts one Pod on each node, and with the
// node's name in the input every one of them is a new decision (a Rego evaluation). The
// decision depends on what the node runs (input.placement's per-class reach), not on its name,
// which the default policy only prints. With the name replaced, Pods on nodes that look alike
// to the policy share one decision, and Decide writes the real name back into its messages.
// The brackets cannot occur in a node name, a label or a handler, so the swap is reversible.
const NodePlaceholder = "⟨node⟩"

// PinnedNode returns the one node the Pod is bound (spec.nodeName) or pinned to (every term of
// its required node affinity holds matchFields metadata.name In [that node], as the DaemonSet
// controller writes), or "".
func PinnedNode(p *Pod) string {
	if p.Spec.NodeName != "" {
		return p.Spec.NodeName
	}
	a := p.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.Required == nil {
		return ""
	}
	name := ""
	for _, t := range a.NodeAffinity.Required.NodeSelectorTerms {
		found := ""
		for _, f := range t.MatchFields {
			if f.Key == "metadata.name" && f.Operator == "In" && len(f.Values) == 1 {
				found = f.Values[0]
			}
		}
		if found == "" || (name != "" && found != name) {
			return ""
		}
		name = found
	}
	return name
}

// maskNode returns req with the node name replaced by NodePlaceholder in input.pod.nodeName
// and input.placement's texts; ok is false when there is nothing to replace, or the texts
// already hold the placeholder (then the swap would not be reversible).
func maskNode(req Request, name string) (masked Request, ok bool) {
	if name == "" || req.Reach == nil || (req.Cluster != nil && req.Reach == req.Cluster.Unconstrained()) {
		return req, false
	}
	r := req.Reach
	fields := []string{r.Constraint, r.Nodes, r.Fix}
	for _, c := range r.Classes {
		fields = append(fields, c.Detail, c.Reason)
	}
	for _, s := range fields {
		if strings.Contains(s, NodePlaceholder) {
			return req, false
		}
	}
	m := &cluster.PodReach{
		Constraint: replaceName(r.Constraint, name, NodePlaceholder),
		Nodes:      replaceName(r.Nodes, name, NodePlaceholder),
		Count:      r.Count,
		Fix:        replaceName(r.Fix, name, NodePlaceholder),
		Classes:    make(map[string]cluster.Reach, len(r.Classes)),
	}
	for class, c := range r.Classes {
		c.Detail = replaceName(c.Detail, name, NodePlaceholder)
		c.Reason = replaceName(c.Reason, name, NodePlaceholder)
		m.Classes[class] = c
	}
	masked = req
	masked.Reach = m
	if req.Pod.Spec.NodeName == name {
		pod := *req.Pod
		pod.Spec.NodeName = NodePlaceholder
		masked.Pod = &pod
	}
	return masked, true
}

// replaceName replaces the whole-word occurrences of name in s (not inside a longer name:
// node names are DNS subdomains, so a neighbouring letter, digit, '.' or '-' continues one).
func replaceName(s, name, with string) string {
	if !strings.Contains(s, name) {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, name)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(name)
		if (i > 0 && nameByte(s[i-1])) || (end < len(s) && nameByte(s[end])) {
			b.WriteString(s[:end])
		} else {
			b.WriteString(s[:i])
			b.WriteString(with)
		}
		s = s[end:]
	}
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_'
}

// withNode returns d with NodePlaceholder replaced by name in every text, or d itself when no
// text holds it. The copy is the request's own: perNode keeps it out of shared memos.
func (d *Decision) withNode(name string) *Decision {
	if !d.mentions(NodePlaceholder) {
		return d
	}
	out := *d
	out.perNode = true
	out.Class = strings.ReplaceAll(d.Class, NodePlaceholder, name)
	out.Acceptable = replaceAll(d.Acceptable, name)
	out.Deny = replaceAll(d.Deny, name)
	out.Warn = replaceAll(d.Warn, name)
	out.Reasons = replaceAll(d.Reasons, name)
	out.Traits = make(map[string][]string, len(d.Traits))
	for t, sources := range d.Traits {
		out.Traits[t] = replaceAll(sources, name)
	}
	return &out
}

func replaceAll(list []string, name string) []string {
	if list == nil {
		return nil
	}
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = strings.ReplaceAll(s, NodePlaceholder, name)
	}
	return out
}

func (d *Decision) mentions(s string) bool {
	if strings.Contains(d.Class, s) {
		return true
	}
	for _, list := range [][]string{d.Acceptable, d.Deny, d.Warn, d.Reasons} {
		for _, t := range list {
			if strings.Contains(t, s) {
				return true
			}
		}
	}
	for _, sources := range d.Traits {
		for _, t := range sources {
			if strings.Contains(t, s) {
				return true
			}
		}
	}
	return false
}

// PerNode says the decision was made for one request's node (its messages name it): answers
// built from it must not be shared with other requests.
func (d *Decision) PerNode() bool { return d.perNode }
