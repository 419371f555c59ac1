package policy

import (
	"fmt"
	"sort"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Merge adds over's modules and data to base's, as loading both from one set of directories
// would: a module name or data path defined by both is an error.
func Merge(base, over *Set) (*Set, error) {
	out := &Set{Modules: map[string]*ast.Module{}, Files: append(append([]string(nil), base.Files...), over.Files...)}
	for _, s := range []*Set{base, over} {
		for name, m := range s.Modules {
			if _, dup := out.Modules[name]; dup {
				return nil, fmt.Errorf("module %s is loaded twice", name)
			}
			out.Modules[name] = m
		}
	}
	data, err := mergeData(base.Data, over.Data, "data")
	if err != nil {
		return nil, err
	}
	out.Data = data
	sort.Strings(out.Files)
	return out, nil
}

func mergeData(a, b map[string]any, path string) (map[string]any, error) {
	out := make(map[string]any, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		old, ok := out[k]
		if !ok {
			out[k] = v
			continue
		}
		om, ok1 := old.(map[string]any)
		nm, ok2 := v.(map[string]any)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%s.%s is defined by both policy sets", path, k)
		}
		merged, err := mergeData(om, nm, path+"."+k)
		if err != nil {
			return nil, err
		}
		out[k] = merged
	}
	return out, nil
}
