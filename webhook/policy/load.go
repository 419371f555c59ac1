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
)

// Set is a loaded, not yet compiled, policy set: Rego modules plus data documents.
type Set struct {
	Modules map[string]*ast.Module
	Data    map[string]any
	// Files lists the files that made the set, for logs and `explain`.
	Files []string
}

// LoadFS loads every .rego, .json, .yaml and .yml file under fsys, skipping *_test.rego (unit
// tests are for `opa test`, not for admission) and hidden entries such as the "..data"
// directories a mounted ConfigMap contains (their content is reached through the visible
// symlinks).
func LoadFS(fsys fs.FS) (*Set, error) {
	skip := func(_ string, info fs.FileInfo, depth int) bool {
		name := info.Name()
		if depth > 0 && strings.HasPrefix(name, ".") {
			return true
		}
		if info.IsDir() {
			return false
		}
		if strings.HasSuffix(name, "_test.rego") {
			return true
		}
		switch {
		case strings.HasSuffix(name, ".rego"), strings.HasSuffix(name, ".json"),
			strings.HasSuffix(name, ".yaml"), strings.HasSuffix(name, ".yml"):
			return false
		}
		return true
	}
	res, err := loader.NewFileLoader().
		WithFS(fsys).
		WithProcessAnnotation(true).
		WithRegoVersion(ast.RegoV1).
		WithFollowSymlinks(true).
		Filtered([]string{"."}, skip)
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

// LoadDir loads a policy directory from disk.
func LoadDir(dir string) (*Set, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	set, err := LoadFS(os.DirFS(dir))
	if err != nil {
		return nil, fmt.Errorf("policy directory %s: %w", dir, err)
	}
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

// explainForbidden adds a hint when a compile error is about a forbidden builtin, because OPA
// itself only says "undefined function".
func explainForbidden(err error) error {
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
			e.Message += " (runtimeguard forbids http.send, net.*, opa.runtime, time.now_ns, rand.intn, uuid.rfc4122 and trace: " +
				"policies must not reach the network and must be deterministic)"
		}
	}
	return err
}
