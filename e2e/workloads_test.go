package e2e

import (
	"context"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// deployment is a one-replica Deployment of its own name whose template names class ("": none).
func deployment(namespace, class string) *appsv1.Deployment {
	name := uniqueName("e2e-workload")
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/app:1"}}},
			},
		},
	}
	if class != "" {
		d.Spec.Template.Spec.RuntimeClassName = ptr.To(class)
	}
	return d
}

// Scenario 34.
func TestDeploymentWhosePodsWouldBeRejectedIsDeniedAtCreate(t *testing.T) {
	ensureStandardCluster(t)
	ctx := context.Background()

	weak := deployment(nsFinancial, "gvisor")
	err := s.client.Create(ctx, weak)
	if err == nil {
		t.Cleanup(func() { _ = s.client.Delete(ctx, weak) })
	}
	wantDenied(t, err, `admission webhook "validate.runtimeguard.io" denied the request: `,
		fmt.Sprintf(`deployment %q: its pods would be rejected: namespace "financial-e2e" is runtimeguard.io/tenancy=financial, which needs isolation >= 2 (runtime class "kata" or stronger); spec.runtimeClassName is "gvisor"`, weak.Name))

	// Without a class it is created untouched: the class is injected into its Pods, never
	// into the template (GitOps tools would see drift).
	plain := deployment(nsUntrusted, "")
	if err := s.client.Create(ctx, plain); err != nil {
		t.Fatalf("a deployment without class in %s was refused: %v", nsUntrusted, err)
	}
	t.Cleanup(func() { _ = s.client.Delete(ctx, plain) })
	if c := plain.Spec.Template.Spec.RuntimeClassName; c != nil {
		t.Errorf("the stored template names runtime class %q, want none (templates are never mutated)", *c)
	}

	// Scaling it leaves the template alone: allowed without a decision.
	plain.Spec.Replicas = ptr.To[int32](2)
	if err := s.client.Update(ctx, plain); err != nil {
		t.Fatalf("scaling deployment %s: %v", plain.Name, err)
	}
	// An update to a template too weak for its namespace is denied like a create.
	fin := deployment(nsFinancial, "kata")
	if err := s.client.Create(ctx, fin); err != nil {
		t.Fatalf("a deployment naming kata in %s was refused: %v", nsFinancial, err)
	}
	t.Cleanup(func() { _ = s.client.Delete(ctx, fin) })
	fin.Spec.Template.Spec.RuntimeClassName = ptr.To("gvisor")
	wantDenied(t, s.client.Update(ctx, fin), fmt.Sprintf(`deployment %q: its pods would be rejected: `, fin.Name), `spec.runtimeClassName is "gvisor"`)
}
