package main

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// run executes the real command tree in process and returns what it printed and the exit code
// main would use.
func run(t *testing.T, args ...string) (stdout, stderr string, code int, err error) {
	t.Helper()
	return runIn(t, "", args...)
}

// runIn is run with stdin as the command's standard input.
func runIn(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCommand()
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err = cmd.ExecuteContext(t.Context())
	var exit exitCode
	switch {
	case err == nil:
		code = 0
	case errors.As(err, &exit):
		code = int(exit)
	default:
		code = 2
	}
	return out.String(), errOut.String(), code, err
}

// runCLI is run with main's view of the error: printed (here: appended to stderr) unless it is
// only an exit code.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	stdout, stderr, code, err := run(t, args...)
	var exit exitCode
	if err != nil && !errors.As(err, &exit) {
		stderr += err.Error()
	}
	return code, stdout, stderr
}

// wantInOrder fails t unless every string of want appears in all, in that order.
func wantInOrder(t *testing.T, all string, want []string) {
	t.Helper()
	rest := all
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Errorf("output lacks %q (in order)\n%s", w, all)
			return
		}
		rest = rest[i+len(w):]
	}
}

// noKubeconfig points $KUBECONFIG at a file that does not exist, so that the developer's own
// ~/.kube/config (or a pod's service account) cannot leak into a test.
func noKubeconfig(t *testing.T) {
	t.Helper()
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "no-kubeconfig"))
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
}
