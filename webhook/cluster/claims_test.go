package cluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	resourcev1 "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// dns turns a device class name into a request name the API server accepts (no dots).
func dns(class string) string { return "r-" + strings.ReplaceAll(class, ".", "-") }

func exactly(class string) resourcev1.DeviceRequest {
	return resourcev1.DeviceRequest{Name: dns(class), Exactly: &resourcev1.ExactDeviceRequest{DeviceClassName: class}}
}

func firstAvailable(classes ...string) resourcev1.DeviceRequest {
	r := resourcev1.DeviceRequest{Name: "first"}
	for _, c := range classes {
		r.FirstAvailable = append(r.FirstAvailable, resourcev1.DeviceSubRequest{Name: dns(c), DeviceClassName: c})
	}
	return r
}

func spec(requests ...resourcev1.DeviceRequest) resourcev1.ResourceClaimSpec {
	return resourcev1.ResourceClaimSpec{Devices: resourcev1.DeviceClaim{Requests: requests}}
}

func template(ns, name string, requests ...resourcev1.DeviceRequest) *resourcev1.ResourceClaimTemplate {
	return &resourcev1.ResourceClaimTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: resourcev1.ResourceClaimTemplateSpec{Spec: spec(requests...)}}
}

func resourceClaim(ns, name string, requests ...resourcev1.DeviceRequest) *resourcev1.ResourceClaim {
	return &resourcev1.ResourceClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec(requests...)}
}

func TestDeviceClasses(t *testing.T) {
	tests := []struct {
		name string
		spec resourcev1.ResourceClaimSpec
		want []string
	}{
		{"no requests request no class", spec(), []string{}},
		{"exactly names one class", spec(exactly("gpu.nvidia.com")), []string{"gpu.nvidia.com"}},
		{"every firstAvailable alternative counts, since the Pod may get any", spec(firstAvailable("gpu.nvidia.com", "cpu.example.com")), []string{"cpu.example.com", "gpu.nvidia.com"}},
		{"classes are sorted and distinct", spec(exactly("b"), exactly("a"), firstAvailable("b", "a")), []string{"a", "b"}},
		{"empty class names and a request with neither field are skipped", spec(exactly(""), firstAvailable(""), resourcev1.DeviceRequest{Name: "x"}), []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DeviceClasses(&tc.spec); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("DeviceClasses = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestResolveClaims(t *testing.T) {
	gpuTemplate := template("ml", "single-gpu", exactly("gpu.nvidia.com"))
	sharedClaim := resourceClaim("ml", "team-gpu", firstAvailable("gpu.nvidia.com", "mig.nvidia.com"))
	fill := func(c *Claims) {
		c.UpsertTemplate(gpuTemplate)
		c.UpsertClaim(sharedClaim)
		c.UpsertTemplate(template("other", "elsewhere", exactly("gpu.nvidia.com")))
	}
	type getterCall struct{ kind, ns, name string }
	tests := []struct {
		name   string
		setup  func(c *Claims, calls *[]getterCall)
		nilSet bool
		ns     string
		refs   []ClaimRef
		want   []ResolvedClaim
		calls  int
	}{
		{
			name: "a template and a claim in the cache resolve to their device classes",
			ns:   "ml",
			refs: []ClaimRef{{Name: "gpu", ResourceClaimTemplateName: ptr.To("single-gpu")}, {Name: "shared", ResourceClaimName: ptr.To("team-gpu")}},
			want: []ResolvedClaim{
				{Name: "gpu", Source: `ResourceClaimTemplate "single-gpu"`, DeviceClasses: []string{"gpu.nvidia.com"}, Resolved: true},
				{Name: "shared", Source: `ResourceClaim "team-gpu"`, DeviceClasses: []string{"gpu.nvidia.com", "mig.nvidia.com"}, Resolved: true},
			},
		},
		{
			name: "a template of another namespace is not found, naming the namespace and the fix",
			ns:   "ml",
			refs: []ClaimRef{{Name: "gpu", ResourceClaimTemplateName: ptr.To("elsewhere")}},
			want: []ResolvedClaim{{Name: "gpu", Source: `ResourceClaimTemplate "elsewhere"`,
				Reason: `ResourceClaimTemplate "elsewhere" not found in namespace "ml"; create it before the Pod`}},
			calls: 1,
		},
		{
			name: "a claim neither in the cache nor found by the getter is unresolved",
			ns:   "ml",
			refs: []ClaimRef{{Name: "shared", ResourceClaimName: ptr.To("later")}},
			want: []ResolvedClaim{{Name: "shared", Source: `ResourceClaim "later"`,
				Reason: `ResourceClaim "later" not found in namespace "ml"; create it before the Pod`}},
			calls: 1,
		},
		{
			name: "entries naming both, neither or an empty name say which entry and the fix",
			ns:   "ml",
			refs: []ClaimRef{
				{Name: "both", ResourceClaimName: ptr.To("a"), ResourceClaimTemplateName: ptr.To("b")},
				{Name: "neither"},
				{ResourceClaimTemplateName: ptr.To("")},
			},
			want: []ResolvedClaim{
				{Name: "both", Reason: "spec.resourceClaims[0] sets both resourceClaimName and resourceClaimTemplateName; set exactly one"},
				{Name: "neither", Reason: "spec.resourceClaims[1] sets neither resourceClaimName nor resourceClaimTemplateName; set exactly one"},
				{Reason: "spec.resourceClaims[2] sets neither resourceClaimName nor resourceClaimTemplateName; set exactly one"},
			},
		},
		{
			name: "a miss is read through the getter",
			ns:   "ml",
			refs: []ClaimRef{{Name: "gpu", ResourceClaimTemplateName: ptr.To("fresh")}, {Name: "gone", ResourceClaimName: ptr.To("missing")}},
			want: []ResolvedClaim{
				{Name: "gpu", Source: `ResourceClaimTemplate "fresh"`, DeviceClasses: []string{"gpu.nvidia.com"}, Resolved: true},
				{Name: "gone", Source: `ResourceClaim "missing"`, Reason: `ResourceClaim "missing" not found in namespace "ml"; create it before the Pod`},
			},
			calls: 2,
		},
		{
			name: "a getter error is named with the claim and the namespace",
			setup: func(c *Claims, calls *[]getterCall) {
				c.SetGetter(func(_ context.Context, kind, ns, name string) ([]string, bool, error) {
					*calls = append(*calls, getterCall{kind, ns, name})
					return nil, false, errors.New("connection refused")
				})
			},
			ns:   "ml",
			refs: []ClaimRef{{Name: "gpu", ResourceClaimTemplateName: ptr.To("fresh")}},
			want: []ResolvedClaim{{Name: "gpu", Source: `ResourceClaimTemplate "fresh"`,
				Reason: `reading ResourceClaimTemplate "fresh" in namespace "ml": connection refused`}},
			calls: 1,
		},
		{
			name: "the getter is asked at most maxClaimGets times per Pod",
			ns:   "ml",
			refs: []ClaimRef{
				{Name: "a", ResourceClaimName: ptr.To("m1")}, {Name: "b", ResourceClaimName: ptr.To("m2")},
				{Name: "c", ResourceClaimName: ptr.To("m3")}, {Name: "d", ResourceClaimName: ptr.To("m4")},
				{Name: "e", ResourceClaimName: ptr.To("m5")},
			},
			want: []ResolvedClaim{
				{Name: "a", Source: `ResourceClaim "m1"`, Reason: `ResourceClaim "m1" not found in namespace "ml"; create it before the Pod`},
				{Name: "b", Source: `ResourceClaim "m2"`, Reason: `ResourceClaim "m2" not found in namespace "ml"; create it before the Pod`},
				{Name: "c", Source: `ResourceClaim "m3"`, Reason: `ResourceClaim "m3" not found in namespace "ml"; create it before the Pod`},
				{Name: "d", Source: `ResourceClaim "m4"`, Reason: `ResourceClaim "m4" not found in namespace "ml"; create it before the Pod`},
				{Name: "e", Source: `ResourceClaim "m5"`, Reason: `ResourceClaim "m5" not found in namespace "ml"; create it before the Pod`},
			},
			calls: maxClaimGets,
		},
		{
			name: "claims that cannot be seen at all say why",
			setup: func(c *Claims, _ *[]getterCall) {
				c.SetUnavailable(notServed)
			},
			ns:   "ml",
			refs: []ClaimRef{{Name: "gpu", ResourceClaimTemplateName: ptr.To("fresh")}},
			want: []ResolvedClaim{{Name: "gpu", Source: `ResourceClaimTemplate "fresh"`,
				Reason: `ResourceClaimTemplate "fresh" in namespace "ml" cannot be read: ` + notServed}},
		},
		{
			name:   "a nil store resolves nothing and says so",
			nilSet: true,
			ns:     "ml",
			refs:   []ClaimRef{{Name: "gpu", ResourceClaimTemplateName: ptr.To("single-gpu")}},
			want:   []ResolvedClaim{{Name: "gpu", Source: `ResourceClaimTemplate "single-gpu"`, Reason: "runtimeguard has no view of ResourceClaimTemplates"}},
		},
		{
			name: "a Pod without claims resolves to nil",
			ns:   "ml",
			want: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls []getterCall
			c := &NewView(Options{}).claims
			fill(c)
			if tc.setup != nil {
				tc.setup(c, &calls)
			} else {
				c.SetGetter(func(_ context.Context, kind, ns, name string) ([]string, bool, error) {
					calls = append(calls, getterCall{kind, ns, name})
					if kind == KindResourceClaimTemplate && name == "fresh" {
						return []string{"gpu.nvidia.com"}, true, nil
					}
					return nil, false, nil
				})
			}
			if tc.nilSet {
				c = nil
			}
			got := c.Resolve(t.Context(), tc.ns, tc.refs)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Resolve\n got %+v\nwant %+v", got, tc.want)
			}
			if len(calls) != tc.calls {
				t.Errorf("getter called %d times (%v), want %d", len(calls), calls, tc.calls)
			}
		})
	}
}

func TestClaimsUpsertAndDelete(t *testing.T) {
	v := NewView(Options{})
	c := v.Claims()
	gen := v.Snapshot().Generation
	ref := []ClaimRef{{Name: "gpu", ResourceClaimTemplateName: ptr.To("t")}}
	c.UpsertTemplate(template("ml", "t", exactly("gpu.nvidia.com")))
	if got := c.Resolve(t.Context(), "ml", ref); !got[0].Resolved || !reflect.DeepEqual(got[0].DeviceClasses, []string{"gpu.nvidia.com"}) {
		t.Fatalf("after upsert: %+v", got)
	}
	c.UpsertTemplate(template("ml", "t", exactly("fpga.example.com")))
	if got := c.Resolve(t.Context(), "ml", ref); !reflect.DeepEqual(got[0].DeviceClasses, []string{"fpga.example.com"}) {
		t.Errorf("after update: %+v, want the new class", got)
	}
	c.DeleteTemplate("ml", "t")
	if got := c.Resolve(t.Context(), "ml", ref); got[0].Resolved {
		t.Errorf("after delete: %+v, want unresolved", got)
	}
	c.UpsertClaim(resourceClaim("ml", "t", exactly("gpu.nvidia.com")))
	claimRef := []ClaimRef{{Name: "gpu", ResourceClaimName: ptr.To("t")}}
	if got := c.Resolve(t.Context(), "ml", claimRef); !got[0].Resolved {
		t.Errorf("claim after upsert: %+v", got)
	}
	if got := c.Resolve(t.Context(), "ml", ref); got[0].Resolved {
		t.Errorf("a ResourceClaim must not resolve a template of the same name: %+v", got)
	}
	c.DeleteClaim("ml", "t")
	if got := c.Resolve(t.Context(), "ml", claimRef); got[0].Resolved {
		t.Errorf("claim after delete: %+v, want unresolved", got)
	}
	if v.Snapshot().Generation != gen {
		t.Error("claim events moved the snapshot generation: every cached decision would be dropped")
	}
}

func TestTrimClaimObject(t *testing.T) {
	full := template("ml", "t", exactly("gpu.nvidia.com"), firstAvailable("mig.nvidia.com", "gpu.nvidia.com"))
	full.Labels = map[string]string{"a": "b"}
	full.Spec.Spec.Devices.Requests[0].Exactly.Selectors = []resourcev1.DeviceSelector{{CEL: &resourcev1.CELDeviceSelector{Expression: "true"}}}
	got, err := trimClaimObject(full)
	if err != nil {
		t.Fatal(err)
	}
	trimmed := got.(*resourcev1.ResourceClaimTemplate)
	if trimmed.Name != "t" || trimmed.Namespace != "ml" || trimmed.Labels != nil {
		t.Errorf("metadata not trimmed to namespace/name: %+v", trimmed.ObjectMeta)
	}
	if want := []string{"gpu.nvidia.com", "mig.nvidia.com"}; !reflect.DeepEqual(DeviceClasses(&trimmed.Spec.Spec), want) {
		t.Errorf("trimmed template requests %q, want %q", DeviceClasses(&trimmed.Spec.Spec), want)
	}
	rc := resourceClaim("ml", "c", exactly("gpu.nvidia.com"))
	rc.Status.ReservedFor = []resourcev1.ResourceClaimConsumerReference{{Resource: "pods", Name: "p"}}
	got, _ = trimClaimObject(rc)
	if c := got.(*resourcev1.ResourceClaim); len(c.Status.ReservedFor) != 0 || !reflect.DeepEqual(DeviceClasses(&c.Spec), []string{"gpu.nvidia.com"}) {
		t.Errorf("trimmed claim = %+v", c)
	}
	other := &metav1.PartialObjectMetadata{}
	if got, _ := trimClaimObject(other); got != other {
		t.Error("other objects must pass unchanged")
	}
}

func TestLoadFilesReadsClaims(t *testing.T) {
	path := filepath.Join(t.TempDir(), "claims.yaml")
	const fixture = `apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: single-gpu, namespace: ml}
spec:
  spec:
    devices:
      requests:
        - name: gpu
          exactly: {deviceClassName: gpu.nvidia.com}
---
apiVersion: resource.k8s.io/v1
kind: ResourceClaim
metadata: {name: team-gpu, namespace: ml}
spec:
  devices:
    requests:
      - name: gpu
        firstAvailable:
          - {name: big, deviceClassName: gpu.nvidia.com}
          - {name: small, deviceClassName: mig.nvidia.com}
`
	if err := os.WriteFile(path, []byte(fixture), 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := LoadFiles(Options{}, path)
	if err != nil {
		t.Fatal(err)
	}
	got := v.Claims().Resolve(t.Context(), "ml", []ClaimRef{
		{Name: "a", ResourceClaimTemplateName: ptr.To("single-gpu")}, {Name: "b", ResourceClaimName: ptr.To("team-gpu")},
	})
	want := []ResolvedClaim{
		{Name: "a", Source: `ResourceClaimTemplate "single-gpu"`, DeviceClasses: []string{"gpu.nvidia.com"}, Resolved: true},
		{Name: "b", Source: `ResourceClaim "team-gpu"`, DeviceClasses: []string{"gpu.nvidia.com", "mig.nvidia.com"}, Resolved: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Resolve\n got %+v\nwant %+v", got, want)
	}
}

func claimScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := resourcev1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestListClaims(t *testing.T) {
	gr := schema.GroupResource{Group: "resource.k8s.io", Resource: "resourceclaimtemplates"}
	failList := func(err error) interceptor.Funcs {
		return interceptor.Funcs{List: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error { return err }}
	}
	tests := []struct {
		name      string
		funcs     interceptor.Funcs
		wantErr   string
		wantClaim ResolvedClaim
	}{
		{
			name:      "listed templates resolve",
			wantClaim: ResolvedClaim{Name: "gpu", Source: `ResourceClaimTemplate "single-gpu"`, DeviceClasses: []string{"gpu.nvidia.com"}, Resolved: true},
		},
		{
			name:  "an API server without resource.k8s.io/v1 makes claims unavailable, not the command fail",
			funcs: failList(&meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "resource.k8s.io", Kind: "ResourceClaimTemplate"}, SearchedVersions: []string{"v1"}}),
			wantClaim: ResolvedClaim{Name: "gpu", Source: `ResourceClaimTemplate "single-gpu"`,
				Reason: `ResourceClaimTemplate "single-gpu" in namespace "ml" cannot be read: ` + notServed},
		},
		{
			name:  "a forbidden listing makes claims unavailable naming the RBAC fix",
			funcs: failList(apierrors.NewForbidden(gr, "", errors.New("no RBAC"))),
			wantClaim: ResolvedClaim{Name: "gpu", Source: `ResourceClaimTemplate "single-gpu"`,
				Reason: `ResourceClaimTemplate "single-gpu" in namespace "ml" cannot be read: listing resource.k8s.io/v1 claims is forbidden (resourceclaimtemplates.resource.k8s.io is forbidden: no RBAC); grant list on resourceclaimtemplates and resourceclaims`},
		},
		{
			name:    "other errors fail the listing",
			funcs:   failList(errors.New("connection refused")),
			wantErr: "listing resource claims: connection refused",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := fake.NewClientBuilder().WithScheme(claimScheme(t)).
				WithObjects(template("ml", "single-gpu", exactly("gpu.nvidia.com"))).
				WithInterceptorFuncs(tc.funcs).Build()
			v := NewView(Options{})
			err := listClaims(t.Context(), c, v)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("listClaims = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := v.Claims().Resolve(t.Context(), "ml", []ClaimRef{{Name: "gpu", ResourceClaimTemplateName: ptr.To("single-gpu")}})
			if !reflect.DeepEqual(got, []ResolvedClaim{tc.wantClaim}) {
				t.Errorf("Resolve\n got %+v\nwant %+v", got, tc.wantClaim)
			}
		})
	}
}

func TestClaimGetterFor(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(claimScheme(t)).
		WithObjects(template("ml", "t", exactly("gpu.nvidia.com")), resourceClaim("ml", "c", firstAvailable("mig.nvidia.com"))).Build()
	get := ClaimGetterFor(c)
	tests := []struct {
		kind, name string
		classes    []string
		found      bool
	}{
		{KindResourceClaimTemplate, "t", []string{"gpu.nvidia.com"}, true},
		{KindResourceClaim, "c", []string{"mig.nvidia.com"}, true},
		{KindResourceClaim, "t", nil, false},
		{KindResourceClaimTemplate, "missing", nil, false},
	}
	for _, tc := range tests {
		classes, found, err := get(t.Context(), tc.kind, "ml", tc.name)
		if err != nil || found != tc.found || !reflect.DeepEqual(classes, tc.classes) {
			t.Errorf("get(%s %s) = %q, %v, %v; want %q, %v, nil", tc.kind, tc.name, classes, found, err, tc.classes, tc.found)
		}
	}
}
