package cluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CacheOptions returns the informer settings the view needs. Node objects are trimmed to what
// availability reads: real Nodes carry status.images (often hundreds of KB each) that would
// otherwise dominate memory in large clusters. Namespaces are watched as metadata only, and
// resource claims trimmed to their device classes (claims.go).
func CacheOptions() cache.Options {
	strip := cache.TransformStripManagedFields()
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
			&corev1.Node{}: {Transform: trimNode},
		},
	}
}

// trimNode keeps only what availability reads: labels, unschedulable, taints, the Ready
// condition and status.runtimeHandlers.
func trimNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	trimmed := &corev1.Node{
		TypeMeta: n.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: n.Name, UID: n.UID, ResourceVersion: n.ResourceVersion, Labels: n.Labels,
		},
		Spec: corev1.NodeSpec{Unschedulable: n.Spec.Unschedulable, Taints: n.Spec.Taints},
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			trimmed.Status.Conditions = []corev1.NodeCondition{{Type: c.Type, Status: c.Status}}
		}
	}
	trimmed.Status.RuntimeHandlers = n.Status.RuntimeHandlers
	return trimmed, nil
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
			if n, ok := o.(*corev1.Node); ok {
				v.UpsertNode(n)
			}
		}, v.DeleteNode},
		{classes, func(o any) {
			if rc, ok := o.(*nodev1.RuntimeClass); ok {
				v.UpsertRuntimeClass(rc)
			}
		}, v.DeleteRuntimeClass},
		{namespaces, func(o any) {
			if m, ok := o.(*metav1.PartialObjectMetadata); ok {
				v.UpsertNamespace(Namespace{Name: m.Name, Labels: m.Labels, Annotations: m.Annotations})
			}
		}, v.DeleteNamespace},
	}
	for _, h := range handlers {
		if err := feed(h.inf, h.upsert, func(m metav1.Object) { h.remove(m.GetName()) }); err != nil {
			return err
		}
	}
	go func() {
		if c.WaitForCacheSync(ctx) {
			v.MarkSynced()
		}
	}()
	return nil
}

// feed sends an informer's events to a store: upsert for adds and updates, remove for deletes
// (including those only seen as a tombstone after a relist).
func feed(inf cache.Informer, upsert func(any), remove func(metav1.Object)) error {
	_, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    upsert,
		UpdateFunc: func(_, o any) { upsert(o) },
		DeleteFunc: func(o any) {
			if t, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			if m, ok := o.(metav1.Object); ok {
				remove(m)
			}
		},
	})
	return err
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
