package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyPolicy copies the shipped policy's top-level files into a new directory, editing each
// file's content with edit.
func copyPolicy(t *testing.T, edit func(name, content string) string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"runtimeguard.rego", "explain.rego", "data.yaml"} {
		b, err := os.ReadFile(filepath.Join("../../policies", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(edit(name, string(b))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestSetHash(t *testing.T) {
	hash := func(dir string) string {
		t.Helper()
		set, err := LoadDirs(dir)
		if err != nil {
			t.Fatal(err)
		}
		return set.Hash()
	}
	same := func(_, content string) string { return content }
	base := hash(copyPolicy(t, same))
	if len(base) != 16 {
		t.Errorf("hash %q, want 16 hex digits", base)
	}
	if got := hash(copyPolicy(t, same)); got != base {
		t.Errorf("the same files in another directory hash to %s, want %s", got, base)
	}
	comment := copyPolicy(t, func(name, content string) string {
		if name == "runtimeguard.rego" {
			return content + "\n# a comment changes no decision\n"
		}
		return content
	})
	if got := hash(comment); got != base {
		t.Errorf("a comment changed the hash: %s, want %s", got, base)
	}
	data := copyPolicy(t, func(name, content string) string {
		if name == "data.yaml" {
			return strings.Replace(content, "gvisor", "gvisor2", 1)
		}
		return content
	})
	if got := hash(data); got == base {
		t.Errorf("a data change kept the hash %s", got)
	}
	rule := copyPolicy(t, func(name, content string) string {
		if name == "explain.rego" {
			return content + "\nextra_rule := true\n"
		}
		return content
	})
	if got := hash(rule); got == base {
		t.Errorf("a new rule kept the hash %s", got)
	}
}
