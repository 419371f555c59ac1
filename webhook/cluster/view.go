package cluster

import (
	"context"
	"maps"
	"sort"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	toolscache "k8s.io/client-go/tools/cache"
)

// Class is a RuntimeClass as decisions see it.
type Class struct {
	Name         string              `json:"name"`
	Handler      string              `json:"handler"`
	NodeSelector map[string]string   `json:"nodeSelector,omitempty"`
	Tolerations  []corev1.Toleration `json:"tolerations,omitempty"`
	Overhead     corev1.ResourceList `json:"overhead,omitempty"`
	Availability Availability        `json:"availability"`
}

// Namespace is the metadata of a Namespace that policies may read.
type Namespace struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Snapshot is an immutable picture of the RuntimeClasses and their availability. Generation
// changes whenever anything in it changes, so callers can cache work derived from it.
type Snapshot struct {
	Generation uint64
	Classes    map[string]*Class
	// Nodes is the number of Nodes the view knows.
	Nodes int
	// unconstrained is the reach of a Pod that asks nothing of its Node.
	unconstrained *PodReach
}

// Unconstrained is the reach of a Pod that asks nothing of its Node (View.Reach returns this very
// pointer for such Pods): it follows from the snapshot alone.
func (s *Snapshot) Unconstrained() *PodReach { return s.unconstrained }

// ClassNames returns the class names in sorted order.
func (s *Snapshot) ClassNames() []string {
	names := make([]string, 0, len(s.Classes))
	for n := range s.Classes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Options configures a View.
type Options struct {
	// RequireAdvertisedHandlers makes classes whose availability cannot be known unavailable
	// instead of available-with-a-warning. Default false.
	RequireAdvertisedHandlers bool
	// NamespaceGetter, when set, is asked for a Namespace the view does not have (the informer
	// may lag behind a Namespace created a moment ago). Default: none.
	NamespaceGetter func(ctx context.Context, name string) (*Namespace, error)
}

type classEntry struct {
	class  Class // without Availability
	counts Counts
}

// View is the cluster view. It is safe for concurrent use; reads never block on writers for
// long (Snapshot is an atomic load).
type View struct {
	opts Options

	mu        sync.RWMutex // guards nodes, index, classes, reporting, generation
	nodes     map[string]*nodeFacts
	index     *nodeIndex
	reaches   reachCache
	classes   map[string]*classEntry
	reporting int
	gen       uint64
	snap      atomic.Pointer[Snapshot]

	nsMu       sync.RWMutex
	namespaces map[string]*Namespace
	// nsLabels counts changes of Namespaces' labels (NamespaceLabelChanges).
	nsLabels atomic.Uint64

	synced atomic.Bool
	// handlers are the informer event handlers feeding the view (informers.go): it is synced
	// once each has processed its informer's initial list.
	syncMu   sync.Mutex
	handlers []toolscache.ResourceEventHandlerRegistration

	claims Claims // claims.go
}

// generations numbers snapshots across every View in the process, so that a cache keyed on a
// generation (the policy engine's) never mistakes one view's snapshot for another's.
var generations atomic.Uint64

// NewView returns an empty view.
func NewView(opts Options) *View {
	v := &View{
		opts:       opts,
		nodes:      map[string]*nodeFacts{},
		index:      newNodeIndex(),
		classes:    map[string]*classEntry{},
		namespaces: map[string]*Namespace{},
	}
	v.publishLocked()
	return v
}

// Snapshot returns the current snapshot. Never nil.
func (v *View) Snapshot() *Snapshot { return v.snap.Load() }

// MarkSynced records that the view holds a complete picture (informers synced, or fixtures
// loaded). Until then decisions must not be trusted.
func (v *View) MarkSynced() { v.synced.Store(true) }

// Synced reports whether MarkSynced was called.
func (v *View) Synced() bool { return v.synced.Load() }

// handlersSynced reports whether every informer handler feeding the view has processed its
// informer's initial list.
func (v *View) handlersSynced() bool {
	v.syncMu.Lock()
	defer v.syncMu.Unlock()
	for _, h := range v.handlers {
		if !h.HasSynced() {
			return false
		}
	}
	return true
}

// UpsertNode adds or updates a Node.
func (v *View) UpsertNode(n *corev1.Node) { v.upsertFacts(factsOf(n)) }

// upsertFacts adds or updates a Node from its facts (what the informer cache stores).
func (v *View) upsertFacts(facts *nodeFacts) {
	v.mu.Lock()
	defer v.mu.Unlock()
	old := v.nodes[facts.name]
	if old != nil && old.equal(facts) {
		return // a heartbeat: nothing availability depends on changed
	}
	v.nodes[facts.name] = facts
	v.index.put(facts.name, facts)
	v.moveNodeLocked(old, facts)
	v.publishLocked()
}

// DeleteNode removes a Node.
func (v *View) DeleteNode(name string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	old, ok := v.nodes[name]
	if !ok {
		return
	}
	delete(v.nodes, name)
	v.index.remove(name)
	v.moveNodeLocked(old, nil)
	v.publishLocked()
}

// moveNodeLocked replaces old's contribution to every class's counters with updated's (either
// may be nil).
func (v *View) moveNodeLocked(old, updated *nodeFacts) {
	if old != nil && old.reportsHandlers {
		v.reporting--
	}
	if updated != nil && updated.reportsHandlers {
		v.reporting++
	}
	for _, e := range v.classes {
		if old != nil {
			e.counts.add(classify(old, &e.class), -1)
		}
		if updated != nil {
			e.counts.add(classify(updated, &e.class), +1)
		}
	}
}

// UpsertRuntimeClass adds or updates a RuntimeClass. It recounts that class over all Nodes:
// RuntimeClasses change rarely, Nodes often.
func (v *View) UpsertRuntimeClass(rc *nodev1.RuntimeClass) {
	c := Class{Name: rc.Name, Handler: rc.Handler}
	if rc.Scheduling != nil {
		c.NodeSelector = rc.Scheduling.NodeSelector
		c.Tolerations = rc.Scheduling.Tolerations
	}
	if rc.Overhead != nil {
		c.Overhead = rc.Overhead.PodFixed
	}
	e := &classEntry{class: c}
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, n := range v.nodes {
		e.counts.add(classify(n, &e.class), +1)
	}
	v.classes[rc.Name] = e
	v.publishLocked()
}

// DeleteRuntimeClass removes a RuntimeClass.
func (v *View) DeleteRuntimeClass(name string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.classes[name]; !ok {
		return
	}
	delete(v.classes, name)
	v.publishLocked()
}

// publishLocked builds a new Snapshot: O(classes), never O(nodes).
func (v *View) publishLocked() {
	v.gen = generations.Add(1)
	s := &Snapshot{Generation: v.gen, Classes: make(map[string]*Class, len(v.classes)), Nodes: len(v.nodes)}
	for name, e := range v.classes {
		c := e.class
		counts := e.counts
		counts.Nodes = len(v.nodes)
		counts.Reporting = v.reporting
		c.Availability = availabilityOf(&c, counts, v.opts.RequireAdvertisedHandlers)
		s.Classes[name] = &c
	}
	s.unconstrained = unconstrainedReach(s.Classes)
	v.snap.Store(s)
}

// UpsertNamespace adds or updates a Namespace's metadata. Namespaces do not change the
// snapshot's generation: decisions key their caches on the namespace metadata itself.
func (v *View) UpsertNamespace(ns Namespace) { v.upsertNamespace(&ns) }

// upsertNamespace keeps ns itself, which is never modified afterwards.
func (v *View) upsertNamespace(ns *Namespace) {
	v.nsMu.Lock()
	old := v.namespaces[ns.Name]
	v.namespaces[ns.Name] = ns
	v.nsMu.Unlock()
	if old == nil || !maps.Equal(old.Labels, ns.Labels) {
		v.nsLabels.Add(1)
	}
}

// DeleteNamespace removes a Namespace.
func (v *View) DeleteNamespace(name string) {
	v.nsMu.Lock()
	_, ok := v.namespaces[name]
	delete(v.namespaces, name)
	v.nsMu.Unlock()
	if ok {
		v.nsLabels.Add(1)
	}
}

// NamespaceLabelChanges counts the Namespaces added, deleted or relabelled since the view was
// made: the background audit re-runs when it moves, since labels decide what a namespace
// requires (tenancy, enforcement, ignore). Annotation-only updates do not count.
func (v *View) NamespaceLabelChanges() uint64 { return v.nsLabels.Load() }

// Namespace returns the metadata of a Namespace. On a cache miss it asks the NamespaceGetter,
// like the in-tree admission plugins do, because the informer may lag behind a Namespace
// created a moment ago. found is false when the Namespace exists nowhere.
func (v *View) Namespace(ctx context.Context, name string) (ns *Namespace, found bool, err error) {
	v.nsMu.RLock()
	ns = v.namespaces[name]
	v.nsMu.RUnlock()
	if ns != nil {
		return ns, true, nil
	}
	if v.opts.NamespaceGetter == nil {
		return &Namespace{Name: name}, false, nil
	}
	ns, err = v.opts.NamespaceGetter(ctx, name)
	if err != nil {
		return nil, false, err
	}
	if ns == nil {
		return &Namespace{Name: name}, false, nil
	}
	return ns, true, nil
}
