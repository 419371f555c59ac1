package cluster

import (
	"slices"
	"strings"
	"unique"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The informer caches store what the view keeps, not trimmed API objects: the transforms
// (CacheOptions) turn a Node into its *nodeFacts and a Namespace's metadata into a
// *namespaceRecord, and the view keeps those same pointers. One copy per object, a few hundred
// bytes where a trimmed corev1.Node with its label map took ~4 KB (docs/benchmarks.md).
// Both implement just enough of runtime.Object and metav1.ObjectMetaAccessor for the informer
// machinery (keys, indexes, tombstones); nothing reads them through a client.

// labelSet is a Node's labels sorted by key, each string interned: thousands of Nodes carry the
// same keys and mostly the same values, which a map per Node would hold thousands of times.
// Handles compare as pointers, and unique drops a string once no Node holds it.
type labelSet []labelPair

type labelPair struct{ key, value unique.Handle[string] }

func labelSetOf(m map[string]string) labelSet {
	if len(m) == 0 {
		return nil
	}
	s := make(labelSet, 0, len(m))
	for k, v := range m {
		s = append(s, labelPair{unique.Make(k), unique.Make(v)})
	}
	slices.SortFunc(s, func(a, b labelPair) int { return strings.Compare(a.key.Value(), b.key.Value()) })
	return s
}

// get returns the value of label k.
func (s labelSet) get(k string) (string, bool) {
	i, ok := slices.BinarySearchFunc(s, k, func(p labelPair, k string) int { return strings.Compare(p.key.Value(), k) })
	if !ok {
		return "", false
	}
	return s[i].value.Value(), true
}

// matches reports whether the labels hold every key=value of selector.
func (s labelSet) matches(selector map[string]string) bool {
	for k, v := range selector {
		if w, ok := s.get(k); !ok || w != v {
			return false
		}
	}
	return true
}

// handlerSet is the runtime handlers a Node reports, interned and sorted.
type handlerSet []unique.Handle[string]

func handlerSetOf(hs []corev1.NodeRuntimeHandler) handlerSet {
	s := make(handlerSet, 0, len(hs))
	for _, h := range hs {
		if u := unique.Make(h.Name); !slices.Contains(s, u) {
			s = append(s, u)
		}
	}
	slices.SortFunc(s, func(a, b unique.Handle[string]) int { return strings.Compare(a.Value(), b.Value()) })
	return s
}

func (s handlerSet) has(h string) bool { return slices.Contains(s, unique.Make(h)) }

// GetObjectMeta gives the informer machinery the Node's name (its cache key).
func (f *nodeFacts) GetObjectMeta() metav1.Object { return &metav1.ObjectMeta{Name: f.name} }

// GetObjectKind is the empty kind: the record is never serialized.
func (f *nodeFacts) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject copies the record; facts are never modified once built, so their slices are
// shared.
func (f *nodeFacts) DeepCopyObject() runtime.Object { c := *f; return &c }

// namespaceRecord is a Namespace as the informer cache stores it: the view's Namespace itself.
type namespaceRecord Namespace

// namespaceRecordOf keeps a Namespace's name, labels and annotations. The
// kubernetes.io/metadata.name label, on every Namespace, shares the name's string.
func namespaceRecordOf(m *metav1.PartialObjectMetadata) *namespaceRecord {
	r := &namespaceRecord{Name: m.Name, Labels: m.Labels, Annotations: m.Annotations}
	if v, ok := r.Labels[corev1.LabelMetadataName]; ok && v == r.Name {
		r.Labels[corev1.LabelMetadataName] = r.Name
	}
	return r
}

// GetObjectMeta gives the informer machinery the Namespace's name (its cache key).
func (r *namespaceRecord) GetObjectMeta() metav1.Object { return &metav1.ObjectMeta{Name: r.Name} }

// GetObjectKind is the empty kind: the record is never serialized.
func (r *namespaceRecord) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject copies the record (its maps are never modified, so they are shared).
func (r *namespaceRecord) DeepCopyObject() runtime.Object { c := *r; return &c }
