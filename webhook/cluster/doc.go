// Package cluster is runtimeguard's view of the cluster: RuntimeClasses, Namespaces (metadata
// only) and, for each RuntimeClass, how many Nodes can run it.
//
// Every admission reads the view, so it is built for reads: node events update per-class
// counters incrementally (O(classes) per changed node, nothing when only a heartbeat changed)
// and publish an immutable Snapshot; a decision never walks the Nodes.
//
// The view is fed either by informers (Informers) or by fixture files (LoadFiles); both call
// the same Upsert/Delete methods, so tests of the view cover both.
package cluster
