package cluster

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CacheOptions returns the informer settings the view needs. The caches hold the view's own
// records rather than API objects (records.go): a Node becomes the few facts availability and
// placement read (real Nodes carry status.images, often hundreds of KB, that would otherwise
// dominate memory in large clusters), a Namespace its name, labels and annotations (watched as
// metadata only). Resource claims are trimmed to their device classes (claims.go).
func CacheOptions() cache.Options {
	strip := cache.TransformStripManagedFields()
	nsMeta := &metav1.PartialObjectMetadata{}
	nsMeta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	return cache.Options{
		// Claims are trimmed here rather than through ByObject, which needs the REST mapping of
		// resource.k8s.io/v1 when the cache is built and would fail on API servers without it.
		DefaultTransform: func(obj any) (any, error) {
			obj, err := strip(obj)
			if err != nil {
				return nil, err
			}
			return trimClaimObject(obj)
		},
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Node{}: {Transform: nodeRecord},
			nsMeta:         {Transform: namespaceRecordTransform},
		},
	}
}

// nodeRecord turns a Node into the facts the view keeps (idempotent, as transforms must be).
func nodeRecord(obj any) (any, error) {
	if n, ok := obj.(*corev1.Node); ok {
		return factsOf(n), nil
	}
	return obj, nil
}

// namespaceRecordTransform turns a Namespace's metadata into the view's record of it.
func namespaceRecordTransform(obj any) (any, error) {
	if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
		return namespaceRecordOf(m), nil
	}
	return obj, nil
}

// Watch feeds the view from informers of c and marks it synced once they are. It returns after
// registering the handlers; call it before starting c.
func Watch(ctx context.Context, c cache.Cache, v *View) error {
	nodes, err := c.GetInformer(ctx, &corev1.Node{})
	if err != nil {
		return fmt.Errorf("node informer: %w", err)
	}
	classes, err := c.GetInformer(ctx, &nodev1.RuntimeClass{})
	if err != nil {
		return fmt.Errorf("runtimeclass informer: %w", err)
	}
	nsMeta := &metav1.PartialObjectMetadata{}
	nsMeta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	namespaces, err := c.GetInformer(ctx, nsMeta)
	if err != nil {
		return fmt.Errorf("namespace informer: %w", err)
	}
	handlers := []struct {
		inf    cache.Informer
		upsert func(any)
		remove func(name string)
	}{
		{nodes, func(o any) {
			switch n := o.(type) {
			case *nodeFacts:
				v.upsertFacts(n)
			case *corev1.Node: // a cache built without CacheOptions
				v.UpsertNode(n)
			}
		}, v.DeleteNode},
		{classes, func(o any) {
			if rc, ok := o.(*nodev1.RuntimeClass); ok {
				v.UpsertRuntimeClass(rc)
			}
		}, v.DeleteRuntimeClass},
		{namespaces, func(o any) {
			switch m := o.(type) {
			case *namespaceRecord:
				v.upsertNamespace((*Namespace)(m))
			case *metav1.PartialObjectMetadata: // a cache built without CacheOptions
				v.UpsertNamespace(Namespace{Name: m.Name, Labels: m.Labels, Annotations: m.Annotations})
			}
		}, v.DeleteNamespace},
	}
	for _, h := range handlers {
		if err := feed(v, h.inf, h.upsert, func(m metav1.Object) { h.remove(m.GetName()) }); err != nil {
			return err
		}
	}
	go func() {
		if !c.WaitForCacheSync(ctx) {
			return
		}
		// A synced informer has handed its initial list to the handlers' queues, not yet to
		// the view: wait until every handler has applied it, or /readyz would report a view
		// missing Nodes.
		err := wait.PollUntilContextCancel(ctx, 10*time.Millisecond, true, func(context.Context) (bool, error) {
			return v.handlersSynced(), nil
		})
		if err == nil {
			v.MarkSynced()
		}
	}()
	return nil
}

// feed sends an informer's events to the view: upsert for adds and updates, remove for deletes
// (including those only seen as a tombstone after a relist). The view is synced only once the
// handler has seen the informer's initial list.
func feed(v *View, inf cache.Informer, upsert func(any), remove func(metav1.Object)) error {
	reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    upsert,
		UpdateFunc: func(_, o any) { upsert(o) },
		DeleteFunc: func(o any) {
			if t, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			if m, err := meta.Accessor(o); err == nil {
				remove(m)
			}
		},
	})
	if err != nil {
		return err
	}
	v.syncMu.Lock()
	v.handlers = append(v.handlers, reg)
	v.syncMu.Unlock()
	return nil
}

// NamespaceGetter returns a getter for Options.NamespaceGetter that reads a Namespace's
// metadata straight from the API server (reader should be uncached).
func NamespaceGetter(reader client.Reader) func(ctx context.Context, name string) (*Namespace, error) {
	return func(ctx context.Context, name string) (*Namespace, error) {
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
		if err := reader.Get(ctx, client.ObjectKey{Name: name}, m); err != nil {
			if client.IgnoreNotFound(err) == nil {
				return nil, nil
			}
			return nil, err
		}
		return &Namespace{Name: m.Name, Labels: m.Labels, Annotations: m.Annotations}, nil
	}
}
