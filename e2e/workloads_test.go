package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/runtimeguard/runtimeguard/e2e/controlplane"
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

// cronJob is a CronJob whose job template names class.
func cronJob(namespace, class string) *batchv1.CronJob {
	return &batchv1.CronJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: uniqueName("e2e-cron")},
		Spec: batchv1.CronJobSpec{
			Schedule: "0 3 * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy:    corev1.RestartPolicyNever,
				RuntimeClassName: ptr.To(class),
				Containers:       []corev1.Container{{Name: "report", Image: "registry.example.com/report:1"}},
			}}}},
		},
	}
}

// wantRefused fails t unless kubectl failed with output holding every substring.
func wantRefused(t *testing.T, out string, ok bool, substrings ...string) {
	t.Helper()
	if ok {
		t.Fatalf("kubectl apply succeeded, want it refused with %q:\n%s", substrings, out)
	}
	for _, sub := range substrings {
		if !strings.Contains(out, sub) {
			t.Errorf("kubectl apply output\n%s\ndoes not contain %q", out, sub)
		}
	}
}

// Scenario 34.
func TestDeploymentWhosePodsWouldBeRejectedIsDeniedAtCreate(t *testing.T) {
	ensureStandardCluster(t)
	ctx := context.Background()

	// kubectl apply, as a user or a GitOps tool does it.
	weak := deployment(nsFinancial, "gvisor")
	weak.TypeMeta = metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}
	out, ok := kubectlApply(t, weak)
	if ok {
		t.Cleanup(func() { _ = s.client.Delete(ctx, weak) })
	}
	wantRefused(t, out, ok, `admission webhook "validate.runtimeguard.io" denied the request: `,
		fmt.Sprintf(`deployment %q: its pods would be rejected: namespace "financial-e2e" is runtimeguard.io/tenancy=financial, which needs isolation >= 2 (runtime class "kata" or stronger); spec.runtimeClassName is "gvisor"`, weak.Name))
	cron := cronJob(nsFinancial, "gvisor")
	out, ok = kubectlApply(t, cron)
	if ok {
		t.Cleanup(func() { _ = s.client.Delete(ctx, cron) })
	}
	wantRefused(t, out, ok, fmt.Sprintf(`cronjob %q: its pods would be rejected: namespace "financial-e2e" is runtimeguard.io/tenancy=financial, which needs isolation >= 2`, cron.Name))

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
	// kube-controller-manager's ReplicaSet controller creates its Pod, through the webhook.
	var pods corev1.PodList
	err := controlplane.Wait(ctx, time.Minute, func(ctx context.Context) (bool, error) {
		if err := s.client.List(ctx, &pods, client.InNamespace(nsUntrusted), client.MatchingLabels(plain.Spec.Selector.MatchLabels)); err != nil {
			return false, err
		}
		return len(pods.Items) > 0, nil
	})
	if err != nil {
		t.Fatalf("waiting for a pod of deployment %s: %v", plain.Name, err)
	}
	if c := className(&pods.Items[0]); c != "gvisor" {
		t.Errorf("pod %s of deployment %s runs under %q, want gvisor injected", pods.Items[0].Name, plain.Name, c)
	}

	// Scaling it leaves the template alone: allowed without a decision.
	// A patch, not an update: the controllers write the Deployment's status meanwhile.
	scaled := plain.DeepCopy()
	scaled.Spec.Replicas = ptr.To[int32](2)
	if err := s.client.Patch(ctx, scaled, client.MergeFrom(plain)); err != nil {
		t.Fatalf("scaling deployment %s: %v", plain.Name, err)
	}
	// An update to a template too weak for its namespace is denied like a create.
	fin := deployment(nsFinancial, "kata")
	if err := s.client.Create(ctx, fin); err != nil {
		t.Fatalf("a deployment naming kata in %s was refused: %v", nsFinancial, err)
	}
	t.Cleanup(func() { _ = s.client.Delete(ctx, fin) })
	weaker := fin.DeepCopy()
	weaker.Spec.Template.Spec.RuntimeClassName = ptr.To("gvisor")
	wantDenied(t, s.client.Patch(ctx, weaker, client.MergeFrom(fin)), fmt.Sprintf(`deployment %q: its pods would be rejected: `, fin.Name), `spec.runtimeClassName is "gvisor"`)
}
