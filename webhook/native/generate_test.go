package native

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestGenerateIsStable(t *testing.T) {
	a := generateDefault(t, Options{Namespace: "rg"})
	for range 5 {
		if b := generateDefault(t, Options{Namespace: "rg"}); !reflect.DeepEqual(a, b) {
			t.Fatal("two generations from the same data differ")
		}
	}
	if a.Params != nil {
		t.Error("a ConfigMap without Options.Available")
	}
}

func TestLimitations(t *testing.T) {
	data := map[string]any{"config": map[string]any{
		"traits": map[string]any{
			"accelerated": map[string]any{"device_classes": []any{"fpga.example.com"}, "requires": map[string]any{"isolation": 1}},
		},
		"classes": []any{map[string]any{"name": "gvisor", "isolation": 1}},
	}}
	b, err := Generate(data, Options{Namespace: "rg", Extra: []string{"team.rego"}, Available: map[string]bool{"gvisor": true, "Bad Name": true}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"custom policy team.rego",
		"trait accelerated: device_classes (fpga.example.com) are not read",
		`class "Bad Name" cannot be a ConfigMap key`,
	} {
		if !slices.ContainsFunc(b.Limitations, func(l string) bool { return strings.Contains(l, want) }) {
			t.Errorf("limitations %q lack %q", b.Limitations, want)
		}
	}
	if _, ok := b.Params.Data["Bad Name"]; ok || b.Params.Data["gvisor"] != "true" {
		t.Errorf("params %v, want gvisor only", b.Params.Data)
	}
	if _, err := NewEvaluator(b); err != nil {
		t.Errorf("a trait with no label or resource must still compile: %v", err)
	}
}

func TestBadDataIsAnError(t *testing.T) {
	_, err := Generate(map[string]any{"config": map[string]any{"classes": "gvisor"}}, Options{Namespace: "rg"})
	if err == nil || !strings.Contains(err.Error(), "data.config") {
		t.Errorf("error %v, want data.config named", err)
	}
}

func TestACompileErrorNamesThePolicy(t *testing.T) {
	b := generateDefault(t, Options{Namespace: "rg"})
	b.Validating.Spec.Validations[0].Expression = "variables.named =="
	_, err := NewEvaluator(b)
	if err == nil || !strings.Contains(err.Error(), "ValidatingAdmissionPolicy runtimeguard-pods") {
		t.Errorf("error %v, want the policy named", err)
	}
}

// TestEvaluate covers what the suites do not: an init container's GPU, a class the data does
// not describe, no parameter object, and the in-tree RuntimeClass check.
func TestEvaluate(t *testing.T) {
	e, err := NewEvaluator(generateDefault(t, Options{Namespace: "rg"}))
	if err != nil {
		t.Fatal(err)
	}
	params := Params("rg", map[string]bool{"gvisor": true, "kata": true, "nvidia": true, "runc": true})
	exists := map[string]bool{"gvisor": true, "kata": true, "nvidia": true, "runc": true}
	untrusted := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "t", Labels: map[string]string{"runtimeguard.io/tenancy": "untrusted"}}}
	plain := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "p"}}
	pod := func(class string, initGPU bool) *corev1.Pod {
		p := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Image: "a"}}}}
		if initGPU {
			p.Spec.InitContainers = []corev1.Container{{Name: "warm", Image: "a", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{"nvidia.com/gpu": mustQuantity("1")}}}}
		}
		if class != "" {
			p.Spec.RuntimeClassName = &class
		}
		return p
	}
	tests := []struct {
		name      string
		req       Request
		class     string
		denyMatch string
	}{
		{"an init container's GPU counts", Request{Pod: pod("", true), Namespace: plain, Params: params, RuntimeClasses: exists}, "nvidia", ""},
		{"an undescribed class provides nothing", Request{Pod: pod("runc", false), Namespace: untrusted, Params: params, RuntimeClasses: exists}, "runc", `which needs isolation >= 1 (runtime class "gvisor" or stronger); spec.runtimeClassName is "runc"`},
		{"without the parameter object nothing is available", Request{Pod: pod("", false), Namespace: untrusted, RuntimeClasses: exists}, "", "but no runtime class that provides it is available (gvisor, kata, gvisor-nvidia, kata-nvidia-gpu: not available in runtimeguard-native-params)"},
		{"a class that does not exist is refused by the RuntimeClass plugin", Request{Pod: pod("missing", false), Namespace: plain, Params: params, RuntimeClasses: exists}, "missing", `RuntimeClass "missing" not found`},
		{"no trait, no class: untouched", Request{Pod: pod("", false), Namespace: plain, Params: params, RuntimeClasses: exists}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.Evaluate(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			denied := strings.Join(res.Denials, "; ")
			if res.Class != tt.class || (tt.denyMatch == "") != (denied == "") || !strings.Contains(denied, tt.denyMatch) {
				t.Errorf("class %q denials %q; want class %q and a denial containing %q", res.Class, denied, tt.class, tt.denyMatch)
			}
		})
	}
}
