package harness

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// Objects decodes the rendered documents of the given kinds (all kinds when none given).
func (r *Rendered) Objects(kinds ...string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, doc := range r.Documents {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			return nil, fmt.Errorf("rendered document: %w", err)
		}
		if len(u.Object) == 0 {
			continue
		}
		if len(kinds) == 0 || contains(kinds, u.GetKind()) {
			if u.GetNamespace() == "" && namespaced(u.GetKind()) {
				u.SetNamespace(Namespace)
			}
			out = append(out, u)
		}
	}
	return out, nil
}

// ApplyKinds creates the rendered objects of the given kinds with server-side apply.
func (r *Rendered) ApplyKinds(ctx context.Context, c client.Client, kinds ...string) error {
	objs, err := r.Objects(kinds...)
	if err != nil {
		return err
	}
	for _, u := range objs {
		if err := c.Patch(ctx, u, client.Apply, client.FieldOwner("runtimeguard-e2e"), client.ForceOwnership); err != nil {
			return fmt.Errorf("applying %s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	return nil
}

// ServiceAccountUser is the user name the chart's ServiceAccount authenticates as.
func (r *Rendered) ServiceAccountUser() (string, error) {
	objs, err := r.Objects("ServiceAccount")
	if err != nil {
		return "", err
	}
	if len(objs) != 1 {
		return "", fmt.Errorf("the chart rendered %d ServiceAccounts, want 1", len(objs))
	}
	return "system:serviceaccount:" + objs[0].GetNamespace() + ":" + objs[0].GetName(), nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func namespaced(kind string) bool {
	switch kind {
	case "ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
		"RuntimeClass", "Namespace", "ClusterIssuer", "PriorityClass", "CustomResourceDefinition",
		"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding":
		return false
	}
	return true
}
