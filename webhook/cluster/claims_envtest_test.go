package cluster

import (
	"reflect"
	"testing"
	"time"

	"github.com/runtimeguard/runtimeguard/e2e/apitest"
	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The informers of a real kube-apiserver (etcd and kube-apiserver from <repo>/bin, as `make
// unit` builds them) feed the claim store through the cache options serve uses: templates and
// claims created, updated and deleted while the view runs resolve accordingly, trimmed.
func TestWatchClaimsAgainstKubeAPIServer(t *testing.T) {
	cfg, c := apitest.Start(t)
	ctx := t.Context()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ml"}}); err != nil {
		t.Fatal(err)
	}
	full := template("ml", "single-gpu", exactly("gpu.nvidia.com"))
	full.Labels = map[string]string{"team": "ml"}
	full.Spec.Spec.Devices.Requests[0].Exactly.Selectors = []resourcev1.DeviceSelector{{CEL: &resourcev1.CELDeviceSelector{Expression: `device.driver == "gpu.nvidia.com"`}}}
	if err := c.Create(ctx, full); err != nil {
		t.Fatal(err)
	}

	opts := CacheOptions()
	opts.Scheme = c.Scheme()
	informers, err := cache.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	v := NewView(Options{})
	if err := Watch(ctx, informers, v); err != nil {
		t.Fatal(err)
	}
	if err := WatchClaims(ctx, informers, nil, v); err != nil {
		t.Fatal(err)
	}
	go func() { _ = informers.Start(ctx) }()
	waitFor(t, "the view to sync", v.Synced)

	refs := []ClaimRef{{Name: "gpu", ResourceClaimTemplateName: ptr.To("single-gpu")}, {Name: "shared", ResourceClaimName: ptr.To("team-gpu")}}
	resolve := func() []ResolvedClaim { return v.Claims().Resolve(ctx, "ml", refs) }
	if got := resolve(); !got[0].Resolved || !reflect.DeepEqual(got[0].DeviceClasses, []string{"gpu.nvidia.com"}) || got[1].Resolved {
		t.Fatalf("after sync: %+v, want the template resolved and the claim not", got)
	}
	cached := &resourcev1.ResourceClaimTemplate{}
	if err := informers.Get(ctx, client.ObjectKey{Namespace: "ml", Name: "single-gpu"}, cached); err != nil {
		t.Fatal(err)
	}
	if cached.Labels != nil || cached.Spec.Spec.Devices.Requests[0].Exactly.Selectors != nil {
		t.Errorf("the cached template is not trimmed: %+v", cached)
	}

	claim := resourceClaim("ml", "team-gpu", firstAvailable("gpu.nvidia.com", "mig.nvidia.com"))
	if err := c.Create(ctx, claim); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new claim to resolve", func() bool { return resolve()[1].Resolved })
	if got := resolve()[1].DeviceClasses; !reflect.DeepEqual(got, []string{"gpu.nvidia.com", "mig.nvidia.com"}) {
		t.Errorf("claim device classes = %q", got)
	}

	if err := c.Delete(ctx, full); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted template to be unresolved", func() bool { return !resolve()[0].Resolved })
	if got := resolve()[0].Reason; got != `ResourceClaimTemplate "single-gpu" not found in namespace "ml"; create it before the Pod` {
		t.Errorf("reason after delete = %q", got)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
