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
