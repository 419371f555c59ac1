package policy

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"
)

// Layers are what is put on top of a base policy set (the built-in policy, or --policies
// directories) without copying it. ModuleDirs come first, in order, then DataPaths, in order.
type Layers struct {
	// ModuleDirs are directories (--policy-modules) whose .rego modules are added to the base
	// set and whose data files are merged over its data, like DataPaths.
	ModuleDirs []string
	// DataPaths are data files, or directories of data files (--policy-data), merged over the
	// data: objects merge key by key, anything else (a list, a string, a number) replaces the
	// value below it, and null removes the key (JSON merge patch, RFC 7386).
	DataPaths []string
}

// Empty reports whether there is nothing to layer.
func (l Layers) Empty() bool { return len(l.ModuleDirs) == 0 && len(l.DataPaths) == 0 }

// Paths lists every directory and file the layers are read from, for the reload watcher.
func (l Layers) Paths() []string {
	return append(append([]string(nil), l.ModuleDirs...), l.DataPaths...)
}

// dataLayer is one data document merged over the set, kept to say which file set a value.
type dataLayer struct {
	file string
	doc  map[string]any
}

// Apply returns base with the layers on top; base is not modified. Errors name the file (and
// the line, for syntax errors).
func (l Layers) Apply(base *Set) (*Set, error) {
	out := &Set{
		Modules: make(map[string]*ast.Module, len(base.Modules)),
		Data:    base.Data,
		Files:   append([]string(nil), base.Files...),
		layers:  append([]dataLayer(nil), base.layers...),
	}
	owner := map[string]string{} // base name of each module -> the file it came from
	for name, m := range base.Modules {
		out.Modules[name] = m
		owner[path.Base(filepath.ToSlash(name))] = name
	}
	for _, dir := range l.ModuleDirs {
		files, err := layerFiles(dir, "--policy-modules", true)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if strings.HasSuffix(f, ".rego") {
				if err := out.addModule(f, owner); err != nil {
					return nil, err
				}
				continue
			}
			if err := out.mergeDataFile(f); err != nil {
				return nil, err
			}
		}
	}
	for _, p := range l.DataPaths {
		files, err := layerFiles(p, "--policy-data", false)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if strings.HasSuffix(f, ".rego") {
				return nil, fmt.Errorf("%s: --policy-data takes data files (.yaml, .yml, .json); put Rego modules in a --policy-modules directory", f)
			}
			if err := out.mergeDataFile(f); err != nil {
				return nil, err
			}
		}
	}
	sort.Strings(out.Files)
	return out, nil
}

// addModule parses a layer's module. A file whose name a module of the base set already has is
// refused: it would read as replacing that module, which layering never does.
func (s *Set) addModule(file string, owner map[string]string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	base := path.Base(filepath.ToSlash(file))
	if prev, dup := owner[base]; dup {
		return fmt.Errorf("%s: the policy already has a module named %s (%s); rename the file (layers add modules, they do not replace them), or use --policies to replace the whole policy", file, base, prev)
	}
	m, err := ast.ParseModuleWithOpts(file, string(b), ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
	if err != nil {
		return err // "file:row: rego_parse_error: ..."
	}
	if m == nil {
		return fmt.Errorf("%s: empty Rego module (no package)", file)
	}
	owner[base] = file
	s.Modules[file] = m
	s.Files = append(s.Files, file)
	return nil
}

// mergeDataFile merges one data file over the set's data.
func (s *Set) mergeDataFile(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var doc any
	if err := util.Unmarshal(b, &doc); err != nil {
		if m := yamlErrLine.FindStringSubmatch(err.Error()); m != nil {
			return fmt.Errorf("%s:%s: not valid YAML or JSON: %s", file, m[1], err.Error()[len(m[0]):])
		}
		return fmt.Errorf("%s: not valid YAML or JSON: %w", file, err)
	}
	if doc == nil { // an empty file, or only comments: nothing to merge
		s.Files = append(s.Files, file)
		return nil
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: a data file holds an object at its top (config: ...), not %T", file, doc)
	}
	merged, err := mergePatch(s.Data, obj)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	s.Data = merged
	s.layers = append(s.layers, dataLayer{file: file, doc: obj})
	s.Files = append(s.Files, file)
	return nil
}

// yamlErrLine finds the line in the YAML parser's errors ("yaml: line 3: ...", possibly after
// a prefix of sigs.k8s.io/yaml's).
var yamlErrLine = regexp.MustCompile(`^(?:error converting YAML to JSON: )?yaml: line (\d+): `)

// mergePatch applies patch to data as a JSON merge patch (RFC 7386).
func mergePatch(data, patch map[string]any) (map[string]any, error) {
	if data == nil {
		data = map[string]any{}
	}
	docJSON, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	patchJSON, err := json.Marshal(patch)
	if err != nil {
		return nil, err
	}
	outJSON, err := jsonpatch.MergePatch(docJSON, patchJSON)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := util.UnmarshalJSON(outJSON, &out); err != nil { // numbers stay json.Number, as OPA loads them
		return nil, err
	}
	return out, nil
}

// layerFiles lists the files a layer path gives, in lexical order: the path itself when it is
// a file, else the top level of the directory (a mounted ConfigMap is flat) without hidden
// entries, unit tests (*_test.rego), suites and suite fixtures (see skipFile).
func layerFiles(p, flag string, modules bool) ([]string, error) {
	info, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, p, err)
	}
	if !info.IsDir() {
		if modules {
			return nil, fmt.Errorf("%s %s is a file: give the directory holding the modules", flag, p)
		}
		return []string{p}, nil
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, p, err)
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || skipFile(name) {
			continue
		}
		full := filepath.Join(p, name)
		fi, err := os.Stat(full) // follows the symlinks of a mounted ConfigMap
		if err != nil {
			return nil, fmt.Errorf("%s: %w", full, err)
		}
		if fi.IsDir() || !policyFile(name) {
			continue
		}
		out = append(out, full)
	}
	sort.Strings(out)
	if modules && len(out) == 0 {
		return nil, fmt.Errorf("%s %s holds no .rego, .yaml, .yml or .json file", flag, p)
	}
	return out, nil
}

// skipFile says which files of a policy directory are never policy: unit tests (for
// `opa test`), suites (for `runtimeguard test` and the ConfigMap check), the cluster fixtures
// suites shipped next to a policy read (*.cluster.yaml) and JSON schemas (data.schema.json).
func skipFile(name string) bool {
	return strings.HasSuffix(name, "_test.rego") || strings.HasSuffix(name, ".suite.yaml") ||
		strings.HasSuffix(name, ".cluster.yaml") || strings.HasSuffix(name, ".schema.json")
}

func policyFile(name string) bool {
	for _, ext := range []string{".rego", ".json", ".yaml", ".yml"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// blame returns the layer file that set the value at path (the deepest match wins; a later
// file over an earlier one), or "" when it comes from the base set.
func (s *Set) blame(p []string) string {
	best, depth := "", 1 // every data file sets "config": a match must go deeper than that
	for i := len(s.layers) - 1; i >= 0; i-- {
		var cur any = s.layers[i].doc
		d := 0
		for _, seg := range p {
			m, ok := cur.(map[string]any)
			if !ok {
				break
			}
			if cur, ok = m[seg]; !ok {
				break
			}
			d++
		}
		if d > depth {
			best, depth = s.layers[i].file, d
		}
	}
	return best
}
