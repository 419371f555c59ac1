package cluster

import (
	"sync"

	"github.com/RoaringBitmap/roaring/v2"
	corev1 "k8s.io/api/core/v1"
)

// taintKey is a taint without its timestamp: what tolerations are matched against.
type taintKey struct {
	Key, Value string
	Effect     corev1.TaintEffect
}

// nodeIndex answers "which Nodes ..." with bitmaps over small integer slots, one per Node, so a
// decision costs about the same at 50 and at 5,000 Nodes: it combines a few bitmaps and never
// walks the Nodes. Roaring bitmaps stay small both for labels every Node has (kubernetes.io/os)
// and for labels only one Node has (kubernetes.io/hostname). Guarded by View.mu.
type nodeIndex struct {
	slots map[string]uint32
	names []string     // slot -> Node name, "" when the slot is free
	facts []*nodeFacts // slot -> what the view knows of that Node
	free  []uint32

	all, ready, schedulable, reporting *roaring.Bitmap
	// usable is ready AND schedulable: where the scheduler may put an unbound Pod.
	usable   *roaring.Bitmap
	keys     map[string]*roaring.Bitmap            // label key -> Nodes with it
	values   map[string]map[string]*roaring.Bitmap // label key -> value -> Nodes
	handlers map[string]*roaring.Bitmap            // runtime handler -> Nodes listing it in status
	taints   map[taintKey]*roaring.Bitmap          // NoSchedule/NoExecute taint -> Nodes with it

	// sets caches classSetsOf per class of the current snapshot (Classes are replaced, never
	// modified, so the pointer is the key); any Node change empties it. Readers fill it under
	// View.mu's read lock, hence its own mutex.
	setsMu sync.Mutex
	sets   map[*Class]*classSets
}

func newNodeIndex() *nodeIndex {
	return &nodeIndex{
		slots:       map[string]uint32{},
		all:         roaring.New(),
		ready:       roaring.New(),
		schedulable: roaring.New(),
		reporting:   roaring.New(),
		usable:      roaring.New(),
		keys:        map[string]*roaring.Bitmap{},
		values:      map[string]map[string]*roaring.Bitmap{},
		handlers:    map[string]*roaring.Bitmap{},
		taints:      map[taintKey]*roaring.Bitmap{},
		sets:        map[*Class]*classSets{},
	}
}

// put records f as Node name's facts, replacing what the index had for it.
func (x *nodeIndex) put(name string, f *nodeFacts) {
	x.forgetSets()
	slot, ok := x.slots[name]
	if ok {
		x.unset(slot)
	} else {
		slot = x.allocate(name)
	}
	x.facts[slot] = f
	// Sets most Nodes belong to (all, Ready, kubernetes.io/os=linux) are long runs of slots:
	// kept as run containers they cost a few bytes per combination instead of the 8 KB bitmap
	// container roaring uses past 4,096 members, which every And, Or and Clone would copy.
	add := func(b *roaring.Bitmap) {
		b.Add(slot)
		b.RunOptimize()
	}
	add(x.all)
	if f.ready {
		add(x.ready)
	}
	if f.schedulable {
		add(x.schedulable)
	}
	if f.reportsHandlers {
		add(x.reporting)
	}
	if f.ready && f.schedulable {
		add(x.usable)
	}
	for _, l := range f.labels {
		k, v := l.key.Value(), l.value.Value()
		add(bitmapOf(x.keys, k))
		vals := x.values[k]
		if vals == nil {
			vals = map[string]*roaring.Bitmap{}
			x.values[k] = vals
		}
		add(bitmapOf(vals, v))
	}
	for _, h := range f.handlers {
		add(bitmapOf(x.handlers, h.Value()))
	}
	for _, t := range f.taints {
		add(bitmapOf(x.taints, taintKey{t.Key, t.Value, t.Effect}))
	}
}

// remove forgets Node name.
func (x *nodeIndex) remove(name string) {
	x.forgetSets()
	slot, ok := x.slots[name]
	if !ok {
		return
	}
	x.unset(slot)
	delete(x.slots, name)
	x.names[slot] = ""
	x.facts[slot] = nil
	x.free = append(x.free, slot)
}

func (x *nodeIndex) allocate(name string) uint32 {
	var slot uint32
	if n := len(x.free); n > 0 {
		slot = x.free[n-1]
		x.free = x.free[:n-1]
		x.names[slot] = name
	} else {
		slot = uint32(len(x.names))
		x.names = append(x.names, name)
		x.facts = append(x.facts, nil)
	}
	x.slots[name] = slot
	return slot
}

// unset clears slot from every bitmap its current facts put it in, dropping bitmaps that become
// empty so churn in per-Node labels (hostnames) does not leak.
func (x *nodeIndex) unset(slot uint32) {
	f := x.facts[slot]
	if f == nil {
		return
	}
	x.all.Remove(slot)
	x.ready.Remove(slot)
	x.schedulable.Remove(slot)
	x.reporting.Remove(slot)
	x.usable.Remove(slot)
	for _, l := range f.labels {
		k, v := l.key.Value(), l.value.Value()
		removeFrom(x.keys, k, slot)
		if vals := x.values[k]; vals != nil {
			removeFrom(vals, v, slot)
			if len(vals) == 0 {
				delete(x.values, k)
			}
		}
	}
	for _, h := range f.handlers {
		removeFrom(x.handlers, h.Value(), slot)
	}
	for _, t := range f.taints {
		removeFrom(x.taints, taintKey{t.Key, t.Value, t.Effect}, slot)
	}
}

// labelled returns the Nodes whose labels include every key=value of selector (all Nodes for
// an empty selector). The result is the caller's to modify.
func (x *nodeIndex) labelled(selector map[string]string) *roaring.Bitmap {
	out := x.all.Clone()
	for k, v := range selector {
		b := x.values[k][v]
		if b == nil {
			return roaring.New()
		}
		out.And(b)
	}
	return out
}

// nodeSlot returns the bitmap holding only Node name, empty when the view has no such Node.
func (x *nodeIndex) nodeSlot(name string) *roaring.Bitmap {
	if slot, ok := x.slots[name]; ok {
		return roaring.BitmapOf(slot)
	}
	return roaring.New()
}

func (x *nodeIndex) forgetSets() {
	x.setsMu.Lock()
	x.sets = map[*Class]*classSets{}
	x.setsMu.Unlock()
}

func bitmapOf[K comparable](m map[K]*roaring.Bitmap, k K) *roaring.Bitmap {
	b := m[k]
	if b == nil {
		b = roaring.New()
		m[k] = b
	}
	return b
}

func removeFrom[K comparable](m map[K]*roaring.Bitmap, k K, slot uint32) {
	if b := m[k]; b != nil {
		b.Remove(slot)
		if b.IsEmpty() {
			delete(m, k)
		}
	}
}
