package cluster

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	resourcev1 "k8s.io/api/resource/v1"

	"github.com/runtimeguard/runtimeguard/webhook/manifest"
)

// LoadFiles builds a synced view from fixture files holding Namespaces, Nodes, RuntimeClasses,
// ResourceClaimTemplates and ResourceClaims (what `kubectl get
// nodes,ns,runtimeclasses,resourceclaimtemplates,resourceclaims -A -o yaml` prints).
func LoadFiles(opts Options, paths ...string) (*View, error) {
	return LoadFrom(opts, nil, paths...)
}

// LoadFrom is LoadFiles where the path "-" reads files.In.
func LoadFrom(opts Options, files *manifest.Files, paths ...string) (*View, error) {
	v := NewView(opts)
	for _, p := range paths {
		objs, err := files.Read(p)
		if err != nil {
			return nil, err
		}
		if err := v.Load(objs); err != nil {
			return nil, err
		}
	}
	v.MarkSynced()
	return v, nil
}

// Load adds fixture objects to the view. Pods are refused: they are what is decided, not
// cluster state.
func (v *View) Load(objs []manifest.Object) error {
	for _, o := range objs {
		switch obj := o.Object.(type) {
		case *corev1.Node:
			v.UpsertNode(obj)
		case *nodev1.RuntimeClass:
			v.UpsertRuntimeClass(obj)
		case *corev1.Namespace:
			v.UpsertNamespace(Namespace{Name: obj.Name, Labels: obj.Labels, Annotations: obj.Annotations})
		case *resourcev1.ResourceClaimTemplate:
			v.Claims().UpsertTemplate(obj)
		case *resourcev1.ResourceClaim:
			v.Claims().UpsertClaim(obj)
		default:
			return fmt.Errorf("%s: a cluster file holds Namespaces, Nodes, RuntimeClasses, ResourceClaimTemplates and ResourceClaims, not %T", o.Source, o.Object)
		}
	}
	return nil
}
