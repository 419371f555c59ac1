package main

import (
	"testing"

	"github.com/runtimeguard/runtimeguard/e2e/node"
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

// The same for `make demo-node`: its resolution asks only for what the target builds.
func TestMakeDemoNodeBuildsEveryToolItResolves(t *testing.T) {
	bin, err := tools.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	dry := tools.DryRun(tools.DemoNode, bin)
	if _, _, err := realNodeTools(dry); err != nil {
		t.Fatalf("the real-node demo's resolution: %v", err)
	}
	built, recipes, err := tools.MakeBuilds("demo-node")
	if err != nil {
		t.Fatal(err)
	}
	used := append(append(dry.Looked(), tools.RecipeTools(recipes)...), node.Images...)
	for _, want := range []string{"kubelet", "containerd", "runsc", "kubectl"} {
		found := false
		for _, u := range used {
			found = found || u == want
		}
		if !found {
			t.Errorf("the real-node demo's resolution %v lacks %s, which it runs", used, want)
		}
	}
	if missing := tools.Unbuilt(used, built); len(missing) > 0 {
		t.Errorf("make demo-node runs %v but, from an empty bin/ and cache, builds only %v: add them to %s", missing, built, tools.ListFile)
	}
}
