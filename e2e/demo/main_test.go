package main

import (
	"slices"
	"testing"

	"github.com/runtimeguard/runtimeguard/e2e/node"
	"github.com/runtimeguard/runtimeguard/e2e/tools"
)

// The demo's resolution, run dry (nothing built), asks only for tools `make demo` builds from
// an empty bin/ and tool cache: the check that would have caught "demo: missing helm in bin".
func TestMakeDemoBuildsEveryToolTheDemoResolves(t *testing.T) {
	checkTargetBuildsWhatItResolves(t, tools.Demo, "demo", []string{"etcd", "kube-apiserver", "kubectl", "helm"},
		func(r *tools.Resolver) error { _, err := demoTools(r); return err })
}

// The same for `make demo-node`, whose node also imports the offline images.
func TestMakeDemoNodeBuildsEveryToolItResolves(t *testing.T) {
	checkTargetBuildsWhatItResolves(t, tools.DemoNode, "demo-node", []string{"kubelet", "containerd", "runsc", "kubectl", "helm"},
		func(r *tools.Resolver) error { _, _, err := realNodeTools(r); return err }, node.Images...)
}

// checkTargetBuildsWhatItResolves runs resolve dry for entry and checks that every tool it asks
// for (plus extra files), and at least want, is built by `make target` from nothing.
func checkTargetBuildsWhatItResolves(t *testing.T, entry tools.Entry, target string, want []string, resolve func(*tools.Resolver) error, extra ...string) {
	t.Helper()
	bin, err := tools.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	dry := tools.DryRun(entry, bin)
	if err := resolve(dry); err != nil {
		t.Fatalf("%s's resolution: %v", target, err)
	}
	built, recipes, err := tools.MakeBuilds(target)
	if err != nil {
		t.Fatal(err)
	}
	used := append(append(dry.Looked(), tools.RecipeTools(recipes)...), extra...)
	for _, w := range want {
		if !slices.Contains(used, w) {
			t.Errorf("%s's resolution %v lacks %s, which it runs", target, used, w)
		}
	}
	if missing := tools.Unbuilt(used, built); len(missing) > 0 {
		t.Errorf("make %s runs %v but, from an empty bin/ and cache, builds only %v: add them to %s", target, missing, built, tools.ListFile)
	}
}
