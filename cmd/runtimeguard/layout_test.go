package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The offline commands (eval, explain, test, inventory) decide with the same pipeline as serve
// but must not drag in the process wiring: no manager, no informers' runnable, no reloads.
// Reloads are judged by our own packages' imports: the API server's CEL admission libraries
// (webhook/native, which test --native runs) link fsnotify without watching anything.
func TestOfflinePackagesDoNotImportTheManager(t *testing.T) {
	offline := []string{
		"../../webhook", "../../webhook/policy", "../../webhook/cluster", "../../webhook/manifest",
		"../../webhook/native", "../../policies/suite", "./internal/render",
	}
	out, err := exec.Command("go", append([]string{"list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}"}, offline...)...).Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, " ")
		for _, forbidden := range []string{
			"sigs.k8s.io/controller-runtime/pkg/manager",
			"github.com/runtimeguard/runtimeguard/webhook/serve",
		} {
			if pkg == forbidden {
				t.Errorf("an offline package depends on %s", forbidden)
			}
		}
		if strings.HasPrefix(pkg, "github.com/runtimeguard/") && slices.Contains(strings.Fields(imports), "github.com/fsnotify/fsnotify") {
			t.Errorf("offline package %s watches files (imports fsnotify)", pkg)
		}
	}
}

// Commands stay thin: the work lives in packages that serve, eval, explain and test share.
func TestCommandFilesAreThin(t *testing.T) {
	const maxLines = 150
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		n := 0
		for sc := bufio.NewScanner(f); sc.Scan(); {
			n++
		}
		if n > maxLines {
			t.Errorf("cmd/runtimeguard/%s has %d lines, want at most %d: move the logic into a package", path, n, maxLines)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
