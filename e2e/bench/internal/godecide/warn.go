package godecide

import (
	"fmt"
	"sort"
	"strings"
)

// noTraitLabels is data.config.no_trait_labels.
type noTraitLabels struct {
	Namespace map[string][]string `json:"namespace"`
	Pod       map[string][]string `json:"pod"`
}

// knownLabels are the runtimeguard.io/ label values the policy knows, per kind of object
// (runtimeguard.rego's known_namespace_labels and known_pod_labels), and the device classes any
// trait reads (trait_device_classes).
type knownLabels struct {
	namespace, pod map[string]map[string]bool
	deviceClasses  []string
}

func newKnownLabels(traits map[string]*Trait, extra noTraitLabels) knownLabels {
	k := knownLabels{
		namespace: map[string]map[string]bool{
			"runtimeguard.io/ignore":      {"true": true, "false": true},
			"runtimeguard.io/enforcement": {"enforce": true, "warn": true},
		},
		pod: map[string]map[string]bool{},
	}
	add := func(m map[string]map[string]bool, key, value string) {
		if m[key] == nil {
			m[key] = map[string]bool{}
		}
		m[key][value] = true
	}
	classes := map[string]bool{}
	for _, t := range traits {
		for key, value := range t.NamespaceLabels {
			add(k.namespace, key, value)
		}
		for key, value := range t.PodLabels {
			add(k.pod, key, value)
		}
		for _, c := range t.DeviceClasses {
			classes[c] = true
		}
	}
	for key, values := range extra.Namespace {
		for _, v := range values {
			add(k.namespace, key, v)
		}
	}
	for key, values := range extra.Pod {
		for _, v := range values {
			add(k.pod, key, v)
		}
	}
	k.deviceClasses = sortedKeys(classes)
	return k
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// warnings are the default policy's warn rules: unresolved claims and unknown labels, sorted
// (decision.warn is a set).
func (d *decider) warnings() []string {
	k := d.p.labels
	var out []string
	if len(k.deviceClasses) > 0 {
		for _, c := range d.claims {
			if !c.Resolved {
				out = append(out, fmt.Sprintf("resource claim %q of the pod in namespace %q is not resolved: %s; until it is, runtimeguard cannot tell whether it requests device class %s and decides without it",
					c.Name, d.pod.Metadata.Namespace, c.Reason, strings.Join(k.deviceClasses, " or ")))
			}
		}
	}
	for key, value := range d.ns.Labels {
		if msg := labelWarning(fmt.Sprintf("namespace %q", d.ns.Name), key, value, k.namespace, "namespaces", k.pod, "pods"); msg != "" {
			out = append(out, msg)
		}
	}
	for key, value := range d.pod.Metadata.Labels {
		if msg := labelWarning("pod", key, value, k.pod, "pods", k.namespace, "namespaces"); msg != "" {
			out = append(out, msg)
		}
	}
	sort.Strings(out)
	return out
}

func labelWarning(where, key, value string, known map[string]map[string]bool, kind string, other map[string]map[string]bool, otherKind string) string {
	if !strings.HasPrefix(key, "runtimeguard.io/") {
		return ""
	}
	values, ok := known[key]
	switch {
	case ok && !values[value]:
		return fmt.Sprintf("%s label %s=%s has no effect: runtimeguard knows the values %s (case-sensitive); fix the value or remove the label",
			where, key, value, strings.Join(sortedKeys(values), ", "))
	case ok:
		return ""
	case other[key] != nil:
		return fmt.Sprintf("%s label %s=%s has no effect: runtimeguard reads %s on %s, not on %s; move the label or remove it", where, key, value, key, otherKind, kind)
	}
	keys := "none"
	if len(known) > 0 {
		keys = strings.Join(sortedKeys(known), ", ")
	}
	return fmt.Sprintf("%s label %s=%s has no effect: runtimeguard reads no such label on %s (it reads %s); fix the key or remove the label", where, key, value, kind, keys)
}
