package policy

import (
	"strings"
	"testing"

	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func gpuTemplate(ns, name string) *resourcev1.ResourceClaimTemplate {
	return &resourcev1.ResourceClaimTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: resourcev1.ResourceClaimTemplateSpec{Spec: resourcev1.ResourceClaimSpec{Devices: resourcev1.DeviceClaim{
			Requests: []resourcev1.DeviceRequest{{Name: "gpu", Exactly: &resourcev1.ExactDeviceRequest{DeviceClassName: "gpu.nvidia.com"}}},
		}}}}
}

// input.pod.resourceClaims is part of the contract with policy authors (policies/README.md).
func TestClaimsInput(t *testing.T) {
	echo := `package runtimeguard

decision := {"class": "", "reasons": [json.marshal(input.pod.resourceClaims)]}
`
	e := mustEngine(t, policyFiles(t, false, map[string]string{"policy.rego": echo}), 0)
	v := testView(t)
	v.Claims().UpsertTemplate(gpuTemplate("ml", "single-gpu"))
	tests := []struct {
		name string
		pod  string
		want string
	}{
		{
			name: "a Pod without claims has an empty list",
			pod:  `{"spec":{"containers":[{"name":"a","image":"a"}]}}`,
			want: `[]`,
		},
		{
			name: "a claim from a known template is resolved to its device classes",
			pod:  `{"metadata":{"namespace":"ml"},"spec":{"resourceClaims":[{"name":"gpu","resourceClaimTemplateName":"single-gpu"}]}}`,
			want: `[{"deviceClasses":["gpu.nvidia.com"],"name":"gpu","reason":"","resolved":true,"source":"ResourceClaimTemplate \"single-gpu\""}]`,
		},
		{
			name: "claims are looked up in the Pod's namespace",
			pod:  `{"metadata":{"namespace":"default"},"spec":{"resourceClaims":[{"name":"gpu","resourceClaimTemplateName":"single-gpu"}]}}`,
			want: `[{"deviceClasses":[],"name":"gpu","reason":"ResourceClaimTemplate \"single-gpu\" not found in namespace \"default\"; create it before the Pod","resolved":false,"source":"ResourceClaimTemplate \"single-gpu\""}]`,
		},
		{
			name: "nonsense entries are kept, in order, unresolved with the entry named",
			pod:  `{"metadata":{"namespace":"ml"},"spec":{"resourceClaims":[null,{"name":"both","resourceClaimName":"a","resourceClaimTemplateName":"b"}]}}`,
			want: `[{"deviceClasses":[],"name":"","reason":"spec.resourceClaims[0] sets neither resourceClaimName nor resourceClaimTemplateName; set exactly one","resolved":false,"source":""},` +
				`{"deviceClasses":[],"name":"both","reason":"spec.resourceClaims[1] sets both resourceClaimName and resourceClaimTemplateName; set exactly one","resolved":false,"source":""}]`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := request(t, v, "ml", mustPod(t, tc.pod))
			req.Claims = v.Claims()
			d, _, err := e.Decide(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Reasons) != 1 || d.Reasons[0] != tc.want {
				t.Errorf("input.pod.resourceClaims\n got %s\nwant %s", d.Reasons, tc.want)
			}
		})
	}
}

// Claims are resolved before the decision cache is consulted: a template that appears after a
// Pod was decided changes the next decision although the cluster generation did not move.
func TestDecideResolvesClaimsBeforeTheCache(t *testing.T) {
	e := defaultEngine(t)
	v := testView(t)
	pod := mustPod(t, `{"metadata":{"namespace":"ml","generateName":"train-"},"spec":{"containers":[{"name":"train","image":"x"}],
		"resourceClaims":[{"name":"gpu","resourceClaimTemplateName":"single-gpu"}]}}`)
	req := request(t, v, "ml", pod)
	req.Claims = v.Claims()

	d, _, err := e.Decide(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	wantWarn := `resource claim "gpu" of the pod in namespace "ml" is not resolved: ResourceClaimTemplate "single-gpu" not found in namespace "ml"; create it before the Pod; until it is, runtimeguard cannot tell whether it requests device class gpu.nvidia.com and decides without it`
	if d.Class != "" || len(d.Warn) != 1 || d.Warn[0] != wantWarn {
		t.Errorf("before the template: class %q, warn %q; want no class and %q", d.Class, d.Warn, wantWarn)
	}

	gen := v.Snapshot().Generation
	v.Claims().UpsertTemplate(gpuTemplate("ml", "single-gpu"))
	if v.Snapshot().Generation != gen {
		t.Fatal("a template moved the cluster generation")
	}
	d, hit, err := e.Decide(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if hit {
		t.Error("the cache answered with the decision made before the template existed")
	}
	wantTrait := `resource claim "gpu" (ResourceClaimTemplate "single-gpu") requests device class gpu.nvidia.com`
	if d.Class != "nvidia" || len(d.Warn) != 0 || len(d.Traits["gpu"]) != 1 || d.Traits["gpu"][0] != wantTrait {
		t.Errorf("after the template: class %q, warn %q, traits %v; want nvidia from %q", d.Class, d.Warn, d.Traits, wantTrait)
	}
	if _, hit, _ := e.Decide(t.Context(), req); !hit {
		t.Error("the same Pod with the same resolved claims must hit the cache")
	}
}

func TestDecodePodResourceClaims(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		wantErr string
		want    int
	}{
		{"a list of claims is decoded", `{"spec":{"resourceClaims":[{"name":"a","resourceClaimName":"x"},{"name":"b","resourceClaimTemplateName":"y"}]}}`, "", 2},
		{"null entries and empty objects decode to empty references", `{"spec":{"resourceClaims":[null,{}]}}`, "", 2},
		{"a list that is an object is an error naming the field, not a panic", `{"spec":{"resourceClaims":{"name":"gpu"}}}`, "spec.resourceClaims", 0},
		{"an entry that is a number is an error naming the field", `{"spec":{"resourceClaims":[1]}}`, "spec.resourceClaims", 0},
		{"a name that is not a string is an error naming the field", `{"spec":{"resourceClaims":[{"name":"a","resourceClaimName":["x"]}]}}`, "resourceClaimName", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := DecodePod([]byte(tc.raw))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("DecodePod = %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Spec.ResourceClaims) != tc.want {
				t.Errorf("%d claims decoded, want %d", len(p.Spec.ResourceClaims), tc.want)
			}
		})
	}
}
