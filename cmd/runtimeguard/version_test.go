package main

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/runtimeguard/runtimeguard/version"
)

func TestVersion(t *testing.T) {
	want := version.Get()
	t.Run("--version prints one line with version, commit, Go and OPA", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, "--version")
		if code != 0 || stderr != "" {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		if !strings.HasPrefix(stdout, "runtimeguard "+want.Version+" (commit ") || strings.Count(stdout, "\n") != 1 {
			t.Errorf("--version = %q, want one line starting with runtimeguard %s", stdout, want.Version)
		}
		for _, s := range []string{runtime.Version(), "OPA " + want.OPAVersion} {
			if !strings.Contains(stdout, s) {
				t.Errorf("--version = %q lacks %q", stdout, s)
			}
		}
	})
	t.Run("version prints a field per line", func(t *testing.T) {
		code, stdout, _ := runCLI(t, "version")
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		wantInOrder(t, stdout, []string{"version:", want.Version, "commit:", "go:", runtime.Version(), "opa:", want.OPAVersion, "platform:", runtime.GOOS})
	})
	for _, format := range []string{"json", "yaml"} {
		t.Run("version -o "+format+" decodes to the build's Info", func(t *testing.T) {
			code, stdout, _ := runCLI(t, "version", "-o", format)
			if code != 0 {
				t.Fatalf("exit %d", code)
			}
			var got version.Info
			var err error
			if format == "json" {
				err = json.Unmarshal([]byte(stdout), &got)
			} else {
				err = yaml.UnmarshalStrict([]byte(stdout), &got)
			}
			if err != nil || got != want {
				t.Errorf("version -o %s = %+v (%v), want %+v\n%s", format, got, err, want, stdout)
			}
		})
	}
}
