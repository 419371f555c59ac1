package main

import (
	"testing"

	"github.com/runtimeguard/runtimeguard/e2e/tools"
)

// The demo's resolution, run dry (nothing built), asks only for tools `make demo` builds from
// an empty bin/ and tool cache: the check that would have caught "demo: missing helm in bin".
func TestMakeDemoBuildsEveryToolTheDemoResolves(t *testing.T) {
	bin, err := tools.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	dry := tools.DryRun(tools.Demo, bin)
	if _, err := demoTools(dry); err != nil {
		t.Fatalf("the demo's resolution: %v", err)
	}
	built, recipes, err := tools.MakeBuilds("demo")
	if err != nil {
		t.Fatal(err)
	}
	used := append(dry.Looked(), tools.RecipeTools(recipes)...)
	for _, want := range []string{"etcd", "kube-apiserver", "kubectl", "helm"} {
		found := false
		for _, u := range used {
			found = found || u == want
		}
		if !found {
			t.Errorf("the demo's resolution %v lacks %s, which it runs", used, want)
		}
	}
	if missing := tools.Unbuilt(used, built); len(missing) > 0 {
		t.Errorf("make demo runs %v but, from an empty bin/ and cache, builds only %v: add them to %s", missing, built, tools.ListFile)
	}
}
