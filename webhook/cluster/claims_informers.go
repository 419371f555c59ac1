package cluster

import (
	"context"
	"errors"
	"fmt"

	resourcev1 "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// notServed is the reason claims are unavailable on an API server without resource.k8s.io/v1.
const notServed = "the API server does not serve resource.k8s.io/v1 (Kubernetes 1.34 or later does); restart runtimeguard after enabling it"

func trimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion}
}

// trimSpec keeps one request per device class requested, with only its class name.
func trimSpec(spec *resourcev1.ResourceClaimSpec) resourcev1.ResourceClaimSpec {
	var out resourcev1.ResourceClaimSpec
	for _, class := range DeviceClasses(spec) {
		out.Devices.Requests = append(out.Devices.Requests, resourcev1.DeviceRequest{
			Exactly: &resourcev1.ExactDeviceRequest{DeviceClassName: class},
		})
	}
	return out
}

// trimClaimObject trims ResourceClaimTemplates and ResourceClaims in the informer cache to the
// device class names of their requests: claims carry allocation results and status that the
// view never reads. Other objects pass unchanged.
func trimClaimObject(obj any) (any, error) {
	switch o := obj.(type) {
	case *resourcev1.ResourceClaimTemplate:
		return &resourcev1.ResourceClaimTemplate{TypeMeta: o.TypeMeta, ObjectMeta: trimMeta(o.ObjectMeta),
			Spec: resourcev1.ResourceClaimTemplateSpec{Spec: trimSpec(&o.Spec.Spec)}}, nil
	case *resourcev1.ResourceClaim:
		return &resourcev1.ResourceClaim{TypeMeta: o.TypeMeta, ObjectMeta: trimMeta(o.ObjectMeta), Spec: trimSpec(&o.Spec)}, nil
	}
	return obj, nil
}

// WatchClaims feeds the view's Claims from informers of c and reads misses through reader
// (uncached; nil for none). Call it before starting c: Watch's sync then waits for these
// informers too. An API server that does not serve resource.k8s.io/v1 is not an error: claims
// then resolve to unresolved, with that reason, and admission goes on.
func WatchClaims(ctx context.Context, c cache.Cache, reader client.Reader, v *View) error {
	claims := v.Claims()
	templates, err := c.GetInformer(ctx, &resourcev1.ResourceClaimTemplate{})
	if meta.IsNoMatchError(err) {
		claims.SetUnavailable(notServed)
		return nil
	}
	if err != nil {
		return fmt.Errorf("resourceclaimtemplate informer: %w", err)
	}
	resourceClaims, err := c.GetInformer(ctx, &resourcev1.ResourceClaim{})
	if err != nil {
		return fmt.Errorf("resourceclaim informer: %w", err)
	}
	if reader != nil {
		claims.SetGetter(ClaimGetterFor(reader))
	}
	handlers := []struct {
		inf    cache.Informer
		upsert func(any)
		remove func(namespace, name string)
	}{
		{templates, func(o any) {
			if t, ok := o.(*resourcev1.ResourceClaimTemplate); ok {
				claims.UpsertTemplate(t)
			}
		}, claims.DeleteTemplate},
		{resourceClaims, func(o any) {
			if rc, ok := o.(*resourcev1.ResourceClaim); ok {
				claims.UpsertClaim(rc)
			}
		}, claims.DeleteClaim},
	}
	for _, h := range handlers {
		if err := feed(v, h.inf, h.upsert, func(m metav1.Object) { h.remove(m.GetNamespace(), m.GetName()) }); err != nil {
			return err
		}
	}
	return nil
}

// ClaimGetterFor returns a getter for Claims.SetGetter that reads a ResourceClaimTemplate or
// ResourceClaim straight from the API server (reader should be uncached).
func ClaimGetterFor(reader client.Reader) ClaimGetter {
	return func(ctx context.Context, kind, namespace, name string) ([]string, bool, error) {
		key := client.ObjectKey{Namespace: namespace, Name: name}
		t, rc := &resourcev1.ResourceClaimTemplate{}, &resourcev1.ResourceClaim{}
		var obj client.Object = rc
		spec := &rc.Spec
		if kind == KindResourceClaimTemplate {
			obj, spec = t, &t.Spec.Spec
		}
		err := reader.Get(ctx, key, obj)
		if apierrors.IsNotFound(err) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		return DeviceClasses(spec), true, nil
	}
}

// listClaims fills the view's Claims from one listing (List, for commands). Without
// resource.k8s.io/v1, or without the right to list it, claims are recorded as unavailable
// rather than failing the command: only Pods with claims need them.
func listClaims(ctx context.Context, reader client.Reader, v *View) error {
	claims := v.Claims()
	err := listPages(ctx, reader, func() *resourcev1.ResourceClaimTemplateList { return &resourcev1.ResourceClaimTemplateList{} },
		func(l *resourcev1.ResourceClaimTemplateList) {
			for i := range l.Items {
				claims.UpsertTemplate(&l.Items[i])
			}
		})
	if err == nil {
		err = listPages(ctx, reader, func() *resourcev1.ResourceClaimList { return &resourcev1.ResourceClaimList{} },
			func(l *resourcev1.ResourceClaimList) {
				for i := range l.Items {
					claims.UpsertClaim(&l.Items[i])
				}
			})
	}
	var status apierrors.APIStatus
	switch {
	case err == nil:
	case meta.IsNoMatchError(err) || apierrors.IsNotFound(err):
		claims.SetUnavailable(notServed)
	case apierrors.IsForbidden(err) && errors.As(err, &status):
		claims.SetUnavailable(fmt.Sprintf("listing resource.k8s.io/v1 claims is forbidden (%s); grant list on resourceclaimtemplates and resourceclaims", status.Status().Message))
	default:
		return fmt.Errorf("listing resource claims: %w", err)
	}
	return nil
}
