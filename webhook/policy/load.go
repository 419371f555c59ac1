package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"

	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

// Set is a loaded, not yet compiled, policy set: Rego modules plus data documents.
type Set struct {
	Modules map[string]*ast.Module
	Data    map[string]any
	// Files lists the files that made the set, for logs and `explain`.
	Files []string
	// layers are the data documents Layers.Apply merged, to say which file set a value.
	layers []dataLayer
}

// LoadFS loads every .rego, .json, .yaml and .yml file under fsys (see LoadDirs).
func LoadFS(fsys fs.FS) (*Set, error) {
	return load(loader.NewFileLoader().WithFS(fsys), []string{"."})
}

// LoadDirs loads one or more policy directories from disk into one set: the default policy
// and a team's additions can live in separate directories. Data files merge; the same data
// path defined twice is an error.
func LoadDirs(dirs ...string) (*Set, error) {
	if len(dirs) == 0 {
		return nil, errors.New("no policy directory given")
	}
	for _, dir := range dirs {
		info, err := os.Stat(dir)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			return nil, fmt.Errorf("%s is not a directory", dir)
		}
	}
	set, err := load(loader.NewFileLoader(), dirs)
	if err != nil {
		return nil, fmt.Errorf("policy directory %s: %w", strings.Join(dirs, ", "), err)
	}
	return set, nil
}

// load reads the top level of each directory only (a mounted ConfigMap is flat, and examples
// or fixtures in subdirectories must not become policy by accident). It skips *_test.rego
// (unit tests are for `opa test`, not for admission), suites and their *.cluster.yaml
// fixtures, files that are neither Rego nor data, and hidden entries such as the "..data" directory of a mounted ConfigMap (its content
// is reached through the visible symlinks).
func load(l loader.FileLoader, paths []string) (*Set, error) {
	skip := func(_ string, info fs.FileInfo, depth int) bool {
		name := info.Name()
		if depth > 0 && strings.HasPrefix(name, ".") {
			return true
		}
		if info.IsDir() {
			return depth > 0
		}
		if skipFile(name) {
			return true
		}
		switch {
		case strings.HasSuffix(name, ".rego"), strings.HasSuffix(name, ".json"),
			strings.HasSuffix(name, ".yaml"), strings.HasSuffix(name, ".yml"):
			return false
		}
		return true
	}
	res, err := l.WithProcessAnnotation(true).
		WithRegoVersion(ast.RegoV1).
		WithFollowSymlinks(true).
		Filtered(paths, skip)
	if err != nil {
		return nil, err
	}
	set := &Set{Modules: map[string]*ast.Module{}, Data: res.Documents}
	for name, f := range res.Modules {
		set.Modules[name] = f.Parsed
		set.Files = append(set.Files, name)
	}
	if len(set.Modules) == 0 {
		return nil, errors.New("no .rego files found")
	}
	sort.Strings(set.Files)
	return set, nil
}

// forbiddenBuiltins are removed from the capabilities policies compile against. Policies must
// not reach the network or the runtime environment, and must be deterministic: decisions are
// cached and must be the same on every replica.
var forbiddenBuiltins = []string{
	"http.send", "opa.runtime", "time.now_ns", "rand.intn", "uuid.rfc4122", "trace",
}

func forbidden(name string) bool {
	if strings.HasPrefix(name, "net.") {
		return true
	}
	for _, f := range forbiddenBuiltins {
		if name == f {
			return true
		}
	}
	return false
}

// Capabilities returns OPA's capabilities minus the forbidden builtins, with no network hosts
// allowed.
func Capabilities() *ast.Capabilities {
	caps := ast.CapabilitiesForThisVersion()
	kept := caps.Builtins[:0]
	for _, b := range caps.Builtins {
		if !forbidden(b.Name) {
			kept = append(kept, b)
		}
	}
	caps.Builtins = kept
	caps.AllowNet = []string{}
	return caps
}

// hintForbiddenBuiltin adds a hint when a compile error is about a forbidden builtin, because OPA
// itself only says "undefined function".
func hintForbiddenBuiltin(err error) error {
	var errs ast.Errors
	if !errors.As(err, &errs) {
		return err
	}
	for _, e := range errs {
		if !strings.Contains(e.Message, "undefined function") {
			continue
		}
		name := strings.TrimSpace(e.Message[strings.LastIndex(e.Message, " ")+1:])
		if forbidden(name) {
			// OPA wraps the errors with text fixed at wrap time, so build a new error.
			return fmt.Errorf("%w (runtimeguard forbids http.send, net.*, opa.runtime, time.now_ns, rand.intn, uuid.rfc4122 and trace: "+
				"policies must not reach the network and must be deterministic)", err)
		}
	}
	return err
}

// Defines reports whether a module of the set defines the rule at query (a data.* ref).
// A document defined key by key (decision.class := ...) counts.
func (s *Set) Defines(query string) bool {
	whole, keys := s.definitions(query)
	return whole || keys
}

// definitions says whether some rule defines the document of query whole (decision := ...)
// and whether some define keys of it (decision.class := ...).
func (s *Set) definitions(query string) (whole, keys bool) {
	want := ast.MustParseRef(query)
	for _, m := range s.Modules {
		for _, r := range m.Rules {
			// A rule's ref is relative to the package, or already absolute once loaded.
			ref := r.Ref().GroundPrefix()
			if !ref.HasPrefix(want) {
				ref = m.Package.Path.Extend(r.Ref().GroundPrefix())
			}
			switch {
			case ref.Equal(want):
				whole = true
			case ref.HasPrefix(want):
				keys = true
			}
		}
	}
	return whole, keys
}

// traceModule is the name the embedded explain.rego gets when WithTrace adds it.
const traceModule = "(embedded) explain.rego"

// WithTrace returns the set with policies/explain.rego (from traceSource) added when no module
// defines data.runtimeguard.explain: it traces any set built on the default policy's rules.
func (s *Set) WithTrace(traceSource []byte) (*Set, error) {
	if s.Defines(TraceQuery) {
		return s, nil
	}
	m, err := ast.ParseModuleWithOpts(traceModule, string(traceSource), ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
	if err != nil {
		return nil, err
	}
	out := &Set{Modules: make(map[string]*ast.Module, len(s.Modules)+1), Data: s.Data, Files: append(append([]string(nil), s.Files...), traceModule)}
	for k, v := range s.Modules {
		out.Modules[k] = v
	}
	out.Modules[traceModule] = m
	return out, nil
}

// GPUClasses reads the names of the classes the policy data marks gpu: true
// (data.config.classes[].gpu), the default policy's data format.
func (s *Set) GPUClasses() map[string]bool {
	out := map[string]bool{}
	config, _ := s.Data["config"].(map[string]any)
	classes, _ := config["classes"].([]any)
	for _, c := range classes {
		m, _ := c.(map[string]any)
		name, _ := m["name"].(string)
		if gpu, _ := m["gpu"].(bool); gpu && name != "" {
			out[name] = true
		}
	}
	return out
}

// ClassNames reads the names of the classes the policy data lists (data.config.classes[].name),
// the default policy's data format.
func (s *Set) ClassNames() map[string]bool {
	out := map[string]bool{}
	config, _ := s.Data["config"].(map[string]any)
	classes, _ := config["classes"].([]any)
	for _, c := range classes {
		m, _ := c.(map[string]any)
		if name, _ := m["name"].(string); name != "" {
			out[name] = true
		}
	}
	return out
}

// GPUResources reads the extended resource names that request a GPU: the extended_resources of
// every trait the policy data says requires a GPU (data.config.traits[].requires.gpu), sorted.
func (s *Set) GPUResources() []string {
	seen := map[string]bool{}
	config, _ := s.Data["config"].(map[string]any)
	traits, _ := config["traits"].(map[string]any)
	for _, t := range traits {
		def, _ := t.(map[string]any)
		requires, _ := def["requires"].(map[string]any)
		if gpu, _ := requires["gpu"].(bool); !gpu {
			continue
		}
		resources, _ := def["extended_resources"].([]any)
		for _, r := range resources {
			if name, _ := r.(string); name != "" {
				seen[name] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for name := range seen {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// GPUPolicy is what the policy data says about GPUs, for the inventory.
func (s *Set) GPUPolicy() cluster.GPUPolicy {
	return cluster.GPUPolicy{Classes: s.GPUClasses(), Resources: s.GPUResources()}
}
