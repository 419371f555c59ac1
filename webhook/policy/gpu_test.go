package policy

import (
	"reflect"
	"testing"
)

func TestGPUClasses(t *testing.T) {
	data := map[string]any{"config": map[string]any{"classes": []any{
		map[string]any{"name": "gvisor", "isolation": 1, "gpu": false},
		map[string]any{"name": "nvidia", "gpu": true},
		map[string]any{"name": "gvisor-nvidia", "isolation": 1, "gpu": true},
		map[string]any{"gpu": true},   // no name
		"not an object",               // ignored
		map[string]any{"name": "odd"}, // no gpu key
	}}}
	if got, want := (&Set{Data: data}).GPUClasses(), map[string]bool{"nvidia": true, "gvisor-nvidia": true}; !reflect.DeepEqual(got, want) {
		t.Errorf("GPUClasses = %v, want %v", got, want)
	}
	for _, d := range []map[string]any{nil, {}, {"config": "x"}, {"config": map[string]any{"classes": "x"}}} {
		if got := (&Set{Data: d}).GPUClasses(); len(got) != 0 {
			t.Errorf("GPUClasses(%v) = %v, want none", d, got)
		}
	}
}

func TestGPUResources(t *testing.T) {
	data := map[string]any{"config": map[string]any{"traits": map[string]any{
		"gpu":       map[string]any{"extended_resources": []any{"nvidia.com/gpu", "amd.com/gpu"}, "requires": map[string]any{"gpu": true}},
		"accel":     map[string]any{"extended_resources": []any{"nvidia.com/gpu", "", 3}, "requires": map[string]any{"gpu": true, "isolation": 1}},
		"fpga":      map[string]any{"extended_resources": []any{"example.com/fpga"}, "requires": map[string]any{"isolation": 1}},
		"no-gpu":    map[string]any{"extended_resources": []any{"example.com/x"}, "requires": map[string]any{"gpu": false}},
		"malformed": "not an object",
	}}}
	set := &Set{Data: data}
	if got, want := set.GPUResources(), []string{"amd.com/gpu", "nvidia.com/gpu"}; !reflect.DeepEqual(got, want) {
		t.Errorf("GPUResources = %q, want %q", got, want)
	}
	if got := set.GPUPolicy(); !reflect.DeepEqual(got.Resources, []string{"amd.com/gpu", "nvidia.com/gpu"}) || len(got.Classes) != 0 {
		t.Errorf("GPUPolicy = %+v", got)
	}
	for _, d := range []map[string]any{nil, {}, {"config": "x"}, {"config": map[string]any{"traits": "x"}}} {
		if got := (&Set{Data: d}).GPUResources(); len(got) != 0 {
			t.Errorf("GPUResources(%v) = %v, want none", d, got)
		}
	}
	// The default policy's data names nvidia.com/gpu.
	if got := mustSet(t, policyFiles(t, true, nil)).GPUResources(); !reflect.DeepEqual(got, []string{"nvidia.com/gpu"}) {
		t.Errorf("default data: GPUResources = %q, want [nvidia.com/gpu]", got)
	}
}
