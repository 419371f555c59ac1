// Package tools resolves the pinned tools (etcd, kube-apiserver, kubectl, helm, opa,
// cert-manager-lite...) that e2e/tools/build.sh builds into bin/, for one entry point at a time
// (make demo, make e2e, make unit...). tools.txt, next to build.sh, lists what each entry point
// runs; build.sh builds from it, and a Resolver refuses any tool not listed for its entry
// point, so the build list and the code cannot drift apart unnoticed.
package tools

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Entry is an entry point: a Makefile target that builds its tools with
// `e2e/tools/build.sh --for <entry>` before running.
type Entry string

// The entry points of tools.txt.
const (
	Demo    Entry = "demo"
	E2E     Entry = "e2e"
	Unit    Entry = "unit"
	Lint    Entry = "lint"
	OPATest Entry = "opa-test"
	Bench   Entry = "bench"
	// Node is `make test-node`: the e2e suite's tools plus a real node's (issue 15).
	Node Entry = "test-node"
	// DemoNode is `make demo-node`: the demo on a real node.
	DemoNode Entry = "demo-node"
)

//go:embed tools.txt
var list string

// ListFile is tools.txt's path in the repository, for messages.
const ListFile = "e2e/tools/tools.txt"

// Declared returns the tools tools.txt lists for e.
func Declared(e Entry) ([]string, error) {
	all, err := parse(list)
	if err != nil {
		return nil, err
	}
	names, ok := all[e]
	if !ok {
		return nil, fmt.Errorf("entry point %q is not in %s", e, ListFile)
	}
	return names, nil
}

// Entries returns every entry point of tools.txt.
func Entries() ([]Entry, error) {
	all, err := parse(list)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for e := range all {
		out = append(out, e)
	}
	slices.Sort(out)
	return out, nil
}

// parse reads "entry: tool tool..." lines; # starts a comment.
func parse(text string) (map[Entry][]string, error) {
	out := map[Entry][]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if strings.TrimSpace(line) == "" {
			continue
		}
		entry, names, ok := strings.Cut(line, ":")
		entry = strings.TrimSpace(entry)
		if !ok || entry == "" || strings.ContainsAny(entry, " \t") {
			return nil, fmt.Errorf("%s:%d: want \"entry: tool tool...\", got %q", ListFile, n, sc.Text())
		}
		if _, dup := out[Entry(entry)]; dup {
			return nil, fmt.Errorf("%s:%d: entry point %q listed twice", ListFile, n, entry)
		}
		out[Entry(entry)] = strings.Fields(names)
	}
	return out, sc.Err()
}

// Resolver finds the tools of one entry point in bin/.
type Resolver struct {
	entry  Entry
	bin    string
	dryRun bool

	mu     sync.Mutex
	looked []string
}

// New returns the Resolver of entry e over binDir (normally <repo>/bin).
func New(e Entry, binDir string) *Resolver { return &Resolver{entry: e, bin: binDir} }

// DryRun returns a Resolver that only records what is looked up (Looked): nothing is required
// to exist, so an entry point's resolution can be checked against its build list on a machine
// where nothing is built.
func DryRun(e Entry, binDir string) *Resolver { return &Resolver{entry: e, bin: binDir, dryRun: true} }

// Entry is the entry point the Resolver resolves for.
func (r *Resolver) Entry() Entry { return r.entry }

// Path returns bin/<name>. It fails when name is not listed for the entry point in tools.txt
// (however warm bin/ is), and, unless dry-running, when the file is missing.
func (r *Resolver) Path(name string) (string, error) {
	r.mu.Lock()
	if !slices.Contains(r.looked, name) {
		r.looked = append(r.looked, name)
	}
	r.mu.Unlock()
	declared, err := Declared(r.entry)
	if err != nil {
		return "", err
	}
	if !slices.Contains(declared, name) {
		return "", fmt.Errorf("%s uses %s, which %s does not list for %q: add it there, so that `make %s` builds it (it only works today where bin/ or the tool cache already has it)",
			r.entry, name, ListFile, r.entry, r.entry)
	}
	path := filepath.Join(r.bin, name)
	if r.dryRun {
		return path, nil
	}
	if info, err := os.Stat(path); err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
		return "", fmt.Errorf("missing %s in %s: run `make %s` or `e2e/tools/build.sh --for %s` to build it from the Go module proxy",
			name, r.bin, r.entry, r.entry)
	}
	return path, nil
}

// Dir resolves every name and returns the directory holding them (what envtest's
// BinaryAssetsDirectory wants).
func (r *Resolver) Dir(names ...string) (string, error) {
	var errs []error
	for _, n := range names {
		if _, err := r.Path(n); err != nil {
			errs = append(errs, err)
		}
	}
	return r.bin, errors.Join(errs...)
}

// Looked returns every name looked up so far, in order.
func (r *Resolver) Looked() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.looked)
}

type ctxKey struct{}

// WithResolver returns a context carrying r, for code shared by several entry points
// (harness.RenderChart) to resolve tools as its caller's entry point.
func WithResolver(ctx context.Context, r *Resolver) context.Context {
	return context.WithValue(ctx, ctxKey{}, r)
}

// FromContext returns the Resolver WithResolver stored.
func FromContext(ctx context.Context) (*Resolver, error) {
	if r, ok := ctx.Value(ctxKey{}).(*Resolver); ok && r != nil {
		return r, nil
	}
	return nil, errors.New("no tool resolver in the context: the entry point (demo, e2e TestMain, a unit test) must pass tools.WithResolver(ctx, tools.New(<entry>, bin))")
}

// BinDir returns <repo>/bin, finding the repository root by walking up from the working
// directory to runtimeguard's go.mod.
func BinDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/runtimeguard/runtimeguard\n") {
			return filepath.Join(dir, "bin"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the runtimeguard repository root (go.mod)")
		}
		dir = parent
	}
}

// ForTest resolves names as `make unit` (entry point Unit) and returns bin/, failing t with
// the fix when one is not listed for unit or not built.
func ForTest(t testing.TB, names ...string) string {
	t.Helper()
	bin, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Unit, bin).Dir(names...); err != nil {
		t.Fatal(err)
	}
	return bin
}
