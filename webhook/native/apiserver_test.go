package native

import (
	"context"
	"strings"
	"testing"
	"time"

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
	for _, o := range []client.Object{b.Validating, b.ValidatingBindings[0], b.ValidatingBindings[1], b.Mutating, b.MutatingBinding, b.Params} {
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
