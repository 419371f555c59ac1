package native

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/runtimeguard/runtimeguard/e2e/apitest"
)

// TestInKubeAPIServer applies the generated policies to a real kube-apiserver with no webhook
// at all: the API server itself injects and denies.
func TestInKubeAPIServer(t *testing.T) {
	cfg, c := apitest.Start(t)
	ctx := t.Context()
	const home = "runtimeguard"
	for _, ns := range []struct {
		name   string
		labels map[string]string
	}{
		{home, nil},
		{"tenant", map[string]string{"runtimeguard.io/tenancy": "untrusted"}},
		{"payments", map[string]string{"runtimeguard.io/tenancy": "financial"}},
		{"trial", map[string]string{"runtimeguard.io/tenancy": "financial", "runtimeguard.io/enforcement": "warn"}},
		{"skipped", map[string]string{"runtimeguard.io/tenancy": "untrusted", "runtimeguard.io/ignore": "true"}},
	} {
		mustCreate(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.name, Labels: ns.labels}})
	}
	for name, handler := range map[string]string{"gvisor": "runsc", "kata": "kata-qemu", "nvidia": "nvidia"} {
		mustCreate(t, c, &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Handler: handler})
	}
	b := generateDefault(t, Options{Namespace: home, Available: map[string]bool{"gvisor": true, "kata": true, "nvidia": true}})
	for _, o := range []client.Object{b.Validating, b.ValidatingBindings[0], b.ValidatingBindings[1], b.Workloads, b.WorkloadsBindings[0], b.WorkloadsBindings[1], b.Mutating, b.MutatingBinding, b.Params} {
		mustCreate(t, c, o)
	}

	// The API server compiles policies asynchronously: wait until the mutating one acts.
	waitFor(t, "the policies to act", func() (bool, error) {
		p, err := createPod(ctx, c, "tenant", "", nil)
		return err == nil && p.Spec.RuntimeClassName != nil, nil
	})

	t.Run("an untrusted pod without a class gets gvisor", func(t *testing.T) {
		p, err := createPod(ctx, c, "tenant", "", nil)
		if err != nil || deref(p.Spec.RuntimeClassName) != "gvisor" {
			t.Fatalf("pod class %q, error %v; want gvisor injected", deref(p.Spec.RuntimeClassName), err)
		}
	})
	t.Run("a financial pod naming gvisor is denied with the reason", func(t *testing.T) {
		_, err := createPod(ctx, c, "payments", "gvisor", nil)
		want := `pod rejected: namespace "payments" is runtimeguard.io/tenancy=financial, which needs isolation >= 2 (runtime class "kata" or stronger); spec.runtimeClassName is "gvisor"`
		if err == nil || !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v, want it to say %q", err, want)
		}
	})
	t.Run("a pod in kube-system or an ignored namespace is untouched", func(t *testing.T) {
		for _, ns := range []string{"kube-system", "skipped"} {
			p, err := createPod(ctx, c, ns, "", nil)
			if err != nil || p.Spec.RuntimeClassName != nil {
				t.Errorf("%s: pod class %q, error %v; want it created untouched", ns, deref(p.Spec.RuntimeClassName), err)
			}
		}
	})
	t.Run("warn mode admits with a warning and injects nothing", func(t *testing.T) {
		var warnings warningsRecorder
		wc := withWarnings(t, cfg, &warnings)
		p, err := createPod(ctx, wc, "trial", "gvisor", nil)
		if err != nil || deref(p.Spec.RuntimeClassName) != "gvisor" {
			t.Fatalf("pod class %q, error %v; want it admitted as written", deref(p.Spec.RuntimeClassName), err)
		}
		if !warnings.contains("which needs isolation >= 2") {
			t.Errorf("warnings %q, want the denial as a warning", warnings.list)
		}
	})
	t.Run("a GPU pod gets the nvidia class", func(t *testing.T) {
		p, err := createPod(ctx, c, "default", "", corev1.ResourceList{"nvidia.com/gpu": resourceOne})
		if err != nil || deref(p.Spec.RuntimeClassName) != "nvidia" {
			t.Fatalf("pod class %q, error %v; want nvidia", deref(p.Spec.RuntimeClassName), err)
		}
	})
	t.Run("a workload whose pods would be denied is denied, its template never mutated", func(t *testing.T) {
		// The workloads policy may compile after the Pod one: wait for its first denial.
		var err error
		waitFor(t, "the workloads policy", func() (bool, error) {
			d := deployment("payments", "gvisor")
			if err = c.Create(ctx, d); err == nil {
				_ = c.Delete(ctx, d)
			}
			return err != nil, nil
		})
		want := `deployment "weak": its pods would be rejected: namespace "payments" is runtimeguard.io/tenancy=financial, which needs isolation >= 2 (runtime class "kata" or stronger); spec.runtimeClassName is "gvisor"`
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
		cron := &batchv1.CronJob{
			ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: "payments"},
			Spec:       batchv1.CronJobSpec{Schedule: "0 3 * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: podTemplate("gvisor", corev1.RestartPolicyNever)}}},
		}
		if err := c.Create(ctx, cron); err == nil || !strings.Contains(err.Error(), `cronjob "nightly": its pods would be rejected: `) {
			t.Errorf("cronjob: error %v, want it denied", err)
		}
		plain := deployment("tenant", "")
		if err := c.Create(ctx, plain); err != nil || plain.Spec.Template.Spec.RuntimeClassName != nil {
			t.Errorf("an untrusted deployment without class: error %v, class %q; want it created untouched", err, deref(plain.Spec.Template.Spec.RuntimeClassName))
		}
		fin := deployment("payments", "kata")
		if err := c.Create(ctx, fin); err != nil {
			t.Fatalf("a financial deployment naming kata: %v", err)
		}
		scaled := fin.DeepCopy()
		scaled.Spec.Replicas = ptr(int32(3))
		if err := c.Patch(ctx, scaled, client.MergeFrom(fin)); err != nil {
			t.Errorf("scaling (template unchanged): %v", err)
		}
		weaker := scaled.DeepCopy()
		weaker.Spec.Template.Spec.RuntimeClassName = ptr("gvisor")
		if err := c.Patch(ctx, weaker, client.MergeFrom(scaled)); err == nil || !strings.Contains(err.Error(), "its pods would be rejected") {
			t.Errorf("weakening the template: error %v, want it denied", err)
		}
	})
	t.Run("an update that leaves the template alone is not decided", func(t *testing.T) {
		// A Deployment created while its namespace required nothing, then the namespace
		// turns financial: its template would be denied now, but scaling it is allowed.
		mustCreate(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "later"}})
		old := deployment("later", "gvisor")
		if err := c.Create(ctx, old); err != nil {
			t.Fatal(err)
		}
		ns := &corev1.Namespace{}
		if err := c.Get(ctx, client.ObjectKey{Name: "later"}, ns); err != nil {
			t.Fatal(err)
		}
		ns.Labels["runtimeguard.io/tenancy"] = "financial"
		if err := c.Update(ctx, ns); err != nil {
			t.Fatal(err)
		}
		// The policy sees the new label once a template change is denied.
		waitFor(t, "the namespace label to reach the policy", func() (bool, error) {
			changed := old.DeepCopy()
			changed.Spec.Template.Spec.Containers[0].Image = "registry.example.com/app:" + time.Now().Format("150405.000000")
			return c.Patch(ctx, changed, client.MergeFrom(old)) != nil, nil
		})
		if err := c.Get(ctx, client.ObjectKeyFromObject(old), old); err != nil {
			t.Fatal(err)
		}
		scaled := old.DeepCopy()
		scaled.Spec.Replicas = ptr(int32(2))
		if err := c.Patch(ctx, scaled, client.MergeFrom(old)); err != nil {
			t.Errorf("scaling a deployment whose template is unchanged: %v, want it allowed", err)
		}
	})
	t.Run("when gvisor becomes unavailable, untrusted pods get kata within seconds", func(t *testing.T) {
		params := Params(home, map[string]bool{"gvisor": false, "kata": true, "nvidia": true})
		if err := c.Update(ctx, params); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		waitFor(t, "kata to be injected", func() (bool, error) {
			p, err := createPod(ctx, c, "tenant", "", nil)
			return err == nil && deref(p.Spec.RuntimeClassName) == "kata", nil
		})
		t.Logf("the injected class followed the parameter object in %s", time.Since(start).Round(10*time.Millisecond))
		_, err := createPod(ctx, c, "tenant", "gvisor", nil)
		if err == nil || !strings.Contains(err.Error(), `spec.runtimeClassName is "gvisor", but no Ready node runs that class's handler`) {
			t.Errorf("naming the unavailable class: error %v, want it denied", err)
		}
	})
}

var resourceOne = mustQuantity("1")

func generateDefault(t *testing.T, o Options) *Bundle {
	t.Helper()
	b, err := Generate(defaultData(t), o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustCreate(t *testing.T, c client.Client, o client.Object) {
	t.Helper()
	if err := c.Create(t.Context(), o); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
	}
}

func createPod(ctx context.Context, c client.Client, ns, class string, gpu corev1.ResourceList) (*corev1.Pod, error) {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "p-", Namespace: ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "registry.example.com/app:1",
			Resources: corev1.ResourceRequirements{Limits: gpu},
		}}},
	}
	if class != "" {
		p.Spec.RuntimeClassName = &class
	}
	return p, c.Create(ctx, p)
}

func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) { return cond() })
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

type warningsRecorder struct{ list []string }

func (w *warningsRecorder) HandleWarningHeader(_ int, _ string, text string) {
	w.list = append(w.list, text)
}

func (w *warningsRecorder) contains(s string) bool {
	for _, x := range w.list {
		if strings.Contains(x, s) {
			return true
		}
	}
	return false
}

func withWarnings(t *testing.T, cfg *rest.Config, w *warningsRecorder) client.Client {
	t.Helper()
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandler = w
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func podTemplate(class string, restart corev1.RestartPolicy) corev1.PodTemplateSpec {
	t := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}},
		Spec:       corev1.PodSpec{RestartPolicy: restart, Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/app:1"}}},
	}
	if class != "" {
		t.Spec.RuntimeClassName = &class
	}
	return t
}

// deployment is Deployment "weak" (naming class) or "plain" (class ""), one replica.
func deployment(ns, class string) *appsv1.Deployment {
	name := "weak"
	if class == "" {
		name = "plain"
	} else if class == "kata" {
		name = "strong"
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}},
			Template: podTemplate(class, corev1.RestartPolicyAlways),
		},
	}
}
