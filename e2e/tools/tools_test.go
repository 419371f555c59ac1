package tools_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/runtimeguard/runtimeguard/e2e/controlplane"
	"github.com/runtimeguard/runtimeguard/e2e/harness"
	"github.com/runtimeguard/runtimeguard/e2e/node"
	"github.com/runtimeguard/runtimeguard/e2e/tools"
)

// The CI check of issue 13 item 1: for every entry point, what its code resolves (run dry:
// nothing is built, nothing needs to exist) is built by its Makefile target on a machine where
// bin/ and the tool cache are empty (make -n, then build.sh's plan with TOOLS_DRY_RUN=1).
// The demo's own resolution is checked the same way in e2e/demo.
func TestEveryEntryPointBuildsTheToolsItResolves(t *testing.T) {
	bin, err := tools.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		entry tools.Entry
		// resolved is what the entry point's code looks up; nil: only its make recipes.
		resolved func(t *testing.T) []string
	}{
		{tools.E2E, func(t *testing.T) []string {
			dry := tools.DryRun(tools.E2E, bin)
			if _, err := harness.ResolveSuiteTools(dry); err != nil {
				t.Fatalf("the suite's resolution: %v", err)
			}
			return dry.Looked()
		}},
		{tools.Node, func(t *testing.T) []string {
			// make test-node runs the e2e suite's TestMain, then a node and its control plane.
			dry := tools.DryRun(tools.E2E, bin)
			if _, err := harness.ResolveSuiteTools(dry); err != nil {
				t.Fatalf("the suite's resolution: %v", err)
			}
			dryNode := tools.DryRun(tools.Node, bin)
			if _, err := node.ResolveTools(dryNode, controlplane.Options{Scheduler: true, NodeLifecycle: true}); err != nil {
				t.Fatalf("the node's resolution: %v", err)
			}
			return append(append(dry.Looked(), dryNode.Looked()...), node.Images...)
		}},
		{tools.Unit, unitTestTools},
		{tools.Lint, nil},
		{tools.OPATest, nil},
		{tools.Bench, nil},
		// Built for a real node (issue 15), not run by any make target yet: only the check that
		// make node-tools builds all it lists applies.
		{nodeTools, nil},
	} {
		t.Run(string(tc.entry), func(t *testing.T) {
			built, recipes, err := tools.MakeBuilds(string(tc.entry))
			if err != nil {
				t.Fatal(err)
			}
			used := tools.RecipeTools(recipes)
			if tc.resolved != nil {
				used = append(used, tc.resolved(t)...)
			}
			if len(used) == 0 && tc.entry != tools.Bench && tc.entry != nodeTools {
				t.Fatalf("make %s resolves no tool: the check would prove nothing", tc.entry)
			}
			if missing := tools.Unbuilt(used, built); len(missing) > 0 {
				t.Errorf("make %s runs %v but, from an empty bin/ and cache, builds only %v: add them to %s",
					tc.entry, missing, built, tools.ListFile)
			}
			declared, err := tools.Declared(tc.entry)
			if err != nil {
				t.Fatal(err)
			}
			// The other way round: all it lists is built (a module may build siblings too:
			// kube-apiserver comes with kubectl).
			if unbuilt := tools.Unbuilt(declared, built); len(unbuilt) > 0 {
				t.Errorf("%s lists %v for %s, which make %s does not build", tools.ListFile, unbuilt, tc.entry, tc.entry)
			}
			t.Logf("make %s: resolves %v; builds %v", tc.entry, used, built)
		})
	}
}

// nodeTools is the entry point of `make node-tools`.
const nodeTools tools.Entry = "node-tools"

// unitTestTools returns the tools the unit tests resolve: the names passed to tools.ForTest
// in every _test.go that `make unit` runs (all packages but e2e's suite and the tool modules).
func unitTestTools(t *testing.T) []string {
	bin, err := tools.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(bin)
	var names []string
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "bin" || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil && rel != "." {
				return filepath.SkipDir // the tool modules under e2e/tools
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") || filepath.Dir(rel) == "e2e" {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "ForTest" {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "tools" {
				return true
			}
			for _, a := range call.Args[1:] {
				lit, ok := a.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Errorf("%s: tools.ForTest with a non-literal name: this check cannot read it", fset.Position(a.Pos()))
					continue
				}
				name, _ := strconv.Unquote(lit.Value)
				if !slices.Contains(names, name) {
					names = append(names, name)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestResolverRefusesAToolNotListedForItsEntryPoint(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "kubectl"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// kubectl is in bin/ (a warm machine), but lint does not list it.
	_, err := tools.New(tools.Lint, bin).Path("kubectl")
	if err == nil || !strings.Contains(err.Error(), "e2e/tools/tools.txt does not list for \"lint\"") || !strings.Contains(err.Error(), "make lint") {
		t.Errorf("err = %v, want the refusal naming tools.txt, the entry point and make lint", err)
	}
	// The same refusal in a dry run: the check needs nothing on disk.
	if _, err := tools.DryRun(tools.Lint, bin).Path("kubectl"); err == nil {
		t.Error("a dry run accepted a tool not listed for its entry point")
	}
}

func TestResolverFindsListedToolsAndNamesTheFixForMissingOnes(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "kubectl"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := tools.New(tools.Demo, bin)
	if p, err := r.Path("kubectl"); err != nil || p != filepath.Join(bin, "kubectl") {
		t.Errorf("Path(kubectl) = %q, %v", p, err)
	}
	_, err := r.Path("helm")
	if err == nil || !strings.Contains(err.Error(), "missing helm in "+bin) || !strings.Contains(err.Error(), "build.sh --for demo") {
		t.Errorf("missing helm: err = %v, want one naming it and `e2e/tools/build.sh --for demo`", err)
	}
	if got := r.Looked(); !slices.Equal(got, []string{"kubectl", "helm"}) {
		t.Errorf("Looked = %v", got)
	}
	dry := tools.DryRun(tools.Demo, bin)
	if _, err := dry.Dir("helm", "etcd"); err != nil {
		t.Errorf("a dry run required files to exist: %v", err)
	}
}

func TestEveryEntryPointIsListedAndBuildable(t *testing.T) {
	entries, err := tools.Entries()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []tools.Entry{tools.Demo, tools.E2E, tools.Unit, tools.Lint, tools.OPATest, tools.Bench} {
		if !slices.Contains(entries, want) {
			t.Errorf("%s has no entry %q", tools.ListFile, want)
		}
	}
	if _, err := tools.Declared("nope"); err == nil {
		t.Error("Declared(nope) gave no error")
	}
}

func TestRecipeToolsIgnoresTheProductsOwnFiles(t *testing.T) {
	recipes := "$(BIN)/opa fmt\n$(BIN)/runtimeguard eval\ne2e/tools/opa-test.sh $(BIN)/opa $(BIN)\ncat $(BIN)/e2e-measurements.txt\n$(BIN)/kubectl get"
	if got := tools.RecipeTools(recipes); !slices.Equal(got, []string{"opa", "kubectl"}) {
		t.Errorf("RecipeTools = %v, want [opa kubectl]", got)
	}
	if got := tools.Unbuilt([]string{"opa", "helm"}, []string{"opa"}); !slices.Equal(got, []string{"helm"}) {
		t.Errorf("Unbuilt = %v", got)
	}
}
