package tools

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// MakeBuilds returns the tools `make <target>` builds on a machine where nothing is built:
// `make -n` (no recipe runs) with BIN set to an empty directory, then each
// e2e/tools/build.sh command of that plan run with TOOLS_DRY_RUN=1 and an empty tool cache.
// It also returns make's expanded recipes, to see which bin/ paths they name.
func MakeBuilds(target string) (built []string, recipes string, err error) {
	bin, err := BinDir()
	if err != nil {
		return nil, "", err
	}
	root := filepath.Dir(bin)
	emptyBin, err := os.MkdirTemp("", "runtimeguard-empty-bin-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(emptyBin)
	emptyCache, err := os.MkdirTemp("", "runtimeguard-empty-cache-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(emptyCache)

	mk := exec.Command("make", "--no-print-directory", "-n", target, "BIN="+emptyBin)
	mk.Dir = root
	var stderr bytes.Buffer
	mk.Stderr = &stderr
	out, err := mk.Output()
	if err != nil {
		return nil, "", fmt.Errorf("make -n %s: %w: %s", target, err, stderr.String())
	}
	recipes = strings.ReplaceAll(string(out), emptyBin, "$(BIN)")
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.Contains(line, "e2e/tools/build.sh") {
			continue
		}
		sh := exec.Command("bash", "-c", line)
		sh.Dir = root
		sh.Env = append(os.Environ(), "TOOLS_DRY_RUN=1", "BIN="+emptyBin, "RUNTIMEGUARD_TOOLS_CACHE="+emptyCache)
		var errb bytes.Buffer
		sh.Stderr = &errb
		plan, err := sh.Output()
		if err != nil {
			return nil, "", fmt.Errorf("%s (TOOLS_DRY_RUN=1): %w: %s", line, err, errb.String())
		}
		for _, l := range strings.Split(string(plan), "\n") {
			if name, ok := strings.CutPrefix(l, "provides "); ok && !slices.Contains(built, name) {
				built = append(built, name)
			}
			if strings.HasSuffix(l, ": fresh") || strings.HasSuffix(l, ": cached") {
				return nil, "", fmt.Errorf("%s reported %q with an empty bin/ and cache: the dry run did not look where it was told", line, l)
			}
		}
	}
	return built, recipes, nil
}

var binRef = regexp.MustCompile(`\$\(BIN\)/([A-Za-z0-9._-]+)`)

// RecipeTools returns the bin/ names make's expanded recipes (MakeBuilds) run, except the
// product's own binaries, which `make build` and the bench script build.
func RecipeTools(recipes string) []string {
	var out []string
	for _, m := range binRef.FindAllStringSubmatch(recipes, -1) {
		name := m[1]
		if name == "runtimeguard" || strings.HasPrefix(name, "bench") || name == "loadgen" || strings.Contains(name, ".") || strings.HasPrefix(name, "e2e") || strings.HasPrefix(name, "dev-certs") || strings.HasPrefix(name, "vulndb") {
			continue
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// Unbuilt returns the names in used that built lacks.
func Unbuilt(used, built []string) []string {
	var out []string
	for _, n := range used {
		if !slices.Contains(built, n) {
			out = append(out, n)
		}
	}
	return out
}
