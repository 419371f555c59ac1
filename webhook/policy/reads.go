package policy

import (
	"fmt"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Reads is what of a Pod's and its Namespace's labels and annotations the policy reads, from
// data.config.reads (policies/README.md). runtimeguard gives the policy only those, so Pods
// that differ in nothing else (a StatefulSet Pod's statefulset.kubernetes.io/pod-name, a Job
// Pod's batch.kubernetes.io/controller-uid) share one decision instead of each paying a full
// evaluation. Without data.config.reads the policy is given every label and annotation.
type Reads struct {
	PodLabels, NamespaceLabels, PodAnnotations, NamespaceAnnotations KeySet
	// PodGenerateName says whether the policy reads input.pod.generateName, which is unique per
	// Indexed Job Pod and per CronJob run (pod_fields: [generateName]).
	PodGenerateName bool
	// PodNodeName says whether the policy compares node names (pod_fields: [nodeName]). When
	// it does not, the node a Pod is bound or pinned to is given as NodePlaceholder (pinned.go).
	PodNodeName bool
}

// KeySet is a set of label or annotation keys: exact keys, and prefixes (keys ending in "/").
type KeySet struct {
	all      bool
	exact    map[string]bool
	prefixes []string
}

// Has says whether key is in the set.
func (s *KeySet) Has(key string) bool {
	if s.all || s.exact[key] {
		return true
	}
	for _, p := range s.prefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// Filter returns the entries of m whose keys are in the set; m itself when all are.
func (s *KeySet) Filter(m map[string]string) map[string]string {
	if s.all || len(m) == 0 {
		return m
	}
	var out map[string]string
	for k, v := range m {
		if s.Has(k) {
			if out == nil {
				out = make(map[string]string, 2)
			}
			out[k] = v
		}
	}
	return out
}

func (s *KeySet) add(key string) {
	if strings.HasSuffix(key, "/") {
		s.prefixes = append(s.prefixes, key)
		return
	}
	if s.exact == nil {
		s.exact = map[string]bool{}
	}
	s.exact[key] = true
}

// readsFields are the lists an entry of data.config.reads may hold.
var readsFields = []string{"pod_labels", "namespace_labels", "pod_annotations", "namespace_annotations", "pod_fields"}

// podFields are the input.pod fields given only when declared in pod_fields.
var podFields = []string{"generateName", "nodeName"}

// readsOf reads data.config.reads: an object of entries, one per policy module that reads
// labels or annotations (so that layered data files merge instead of conflicting), each with
// any of readsFields as lists of keys. The label keys of data.config.traits and
// data.config.no_trait_labels are always read.
func readsOf(data map[string]any) (*Reads, error) {
	config, _ := data["config"].(map[string]any)
	raw, declared := config["reads"]
	if !declared {
		all := KeySet{all: true}
		return &Reads{PodLabels: all, NamespaceLabels: all, PodAnnotations: all, NamespaceAnnotations: all, PodGenerateName: true, PodNodeName: true}, nil
	}
	entries, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("data.config.reads is %s, want an object of entries (one per policy module)", typeName(raw))
	}
	r := &Reads{}
	sets := map[string]*KeySet{"pod_fields": nil, "pod_labels": &r.PodLabels, "namespace_labels": &r.NamespaceLabels, "pod_annotations": &r.PodAnnotations, "namespace_annotations": &r.NamespaceAnnotations}
	for _, name := range sortedKeys(entries) {
		entry, ok := entries[name].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("data.config.reads.%s is %s, want an object with any of %s", name, typeName(entries[name]), strings.Join(readsFields, ", "))
		}
		for _, field := range sortedKeys(entry) {
			set, known := sets[field]
			if !known {
				return nil, fmt.Errorf("data.config.reads.%s.%s is not known: an entry holds %s", name, field, strings.Join(readsFields, ", "))
			}
			keys, ok := entry[field].([]any)
			if !ok {
				return nil, fmt.Errorf("data.config.reads.%s.%s is %s, want a list of keys", name, field, typeName(entry[field]))
			}
			if field == "pod_fields" {
				for i, k := range keys {
					switch k {
					case "generateName":
						r.PodGenerateName = true
					case "nodeName":
						r.PodNodeName = true
					default:
						return nil, fmt.Errorf("data.config.reads.%s.pod_fields[%d] is not a field runtimeguard gives only on request: the fields are %s", name, i, strings.Join(podFields, ", "))
					}
				}
				continue
			}
			for i, k := range keys {
				s, ok := k.(string)
				if !ok || s == "" {
					return nil, fmt.Errorf("data.config.reads.%s.%s[%d] is %s, want a label or annotation key (a key ending in / is a prefix)", name, field, i, typeName(k))
				}
				set.add(s)
			}
		}
	}
	traits, _ := config["traits"].(map[string]any)
	for _, t := range traits {
		def, _ := t.(map[string]any)
		for k := range asObject(def["pod_labels"]) {
			r.PodLabels.add(k)
		}
		for k := range asObject(def["namespace_labels"]) {
			r.NamespaceLabels.add(k)
		}
	}
	noTrait, _ := config["no_trait_labels"].(map[string]any)
	for k := range asObject(noTrait["pod"]) {
		r.PodLabels.add(k)
	}
	for k := range asObject(noTrait["namespace"]) {
		r.NamespaceLabels.add(k)
	}
	return r, nil
}

func asObject(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkReads refuses a module that reads a label or annotation by a literal key that
// data.config.reads leaves out: the policy would silently never see it. Keys read through a
// variable (some key, value in input.pod.labels) cannot be checked; policies/README.md says so.
func checkReads(set *Set, reads *Reads) error {
	var problems []string
	for _, file := range sortedModuleNames(set) {
		ast.WalkRefs(set.Modules[file], func(ref ast.Ref) bool {
			if !reads.PodGenerateName && len(ref) >= 3 && ref[0].Equal(ast.InputRootDocument) &&
				ref[1].Equal(ast.StringTerm("pod")) && ref[2].Equal(ast.StringTerm("generateName")) {
				problems = append(problems, fmt.Sprintf("%s:%d: reads %s, but data.config.reads does not declare it: add generateName to a config.reads entry's pod_fields",
					file, ref[0].Location.Row, ref))
			}
			if len(ref) < 4 || !ref[0].Equal(ast.InputRootDocument) {
				return false
			}
			obj, ok1 := ref[1].Value.(ast.String)
			kind, ok2 := ref[2].Value.(ast.String)
			if !ok1 || !ok2 {
				return false
			}
			field := string(obj) + "_" + string(kind)
			keys := map[string]*KeySet{
				"pod_labels": &reads.PodLabels, "namespace_labels": &reads.NamespaceLabels,
				"pod_annotations": &reads.PodAnnotations, "namespace_annotations": &reads.NamespaceAnnotations,
			}[field]
			if keys == nil {
				return false
			}
			key, ok := ref[3].Value.(ast.String)
			if ok && !keys.Has(string(key)) {
				problems = append(problems, fmt.Sprintf("%s:%d: reads %s, but data.config.reads does not declare %q: add it to a config.reads entry's %s",
					file, ref[0].Location.Row, ref, string(key), field))
			}
			return false
		})
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

func sortedModuleNames(set *Set) []string {
	names := make([]string, 0, len(set.Modules))
	for n := range set.Modules {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
