package main

import (
	"strings"
	"testing"
	"time"

	"github.com/runtimeguard/runtimeguard/webhook/audit"
)

func TestAuditCommandFindsTheClusterAsKubectlDoes(t *testing.T) {
	noKubeconfig(t)
	a, b := newAPIServer(t), newAPIServer(t)
	path := writeKubeconfig(t, a, b)
	for _, tt := range []struct {
		name    string
		env     string
		args    []string
		dialled *apiServer
		token   string
	}{
		{"--kubeconfig and its current context", "", []string{"audit", "-A", "--kubeconfig", path}, a, "token-a"},
		{"--context picks another", "", []string{"audit", "-n", "x", "--kubeconfig", path, "--context", "b"}, b, "token-b"},
		{"$KUBECONFIG without --kubeconfig", path, []string{"audit"}, a, "token-a"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("KUBECONFIG", tt.env)
			}
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != 2 || stdout != "" || !strings.Contains(stderr, "reading the cluster at "+tt.dialled.URL) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2, nothing on stdout, and reading the cluster at %s", code, stdout, stderr, tt.dialled.URL)
			}
			if calls := tt.dialled.calls(); len(calls) == 0 || calls[len(calls)-1] != tt.token {
				t.Errorf("%s got tokens %q, want %s", tt.dialled.URL, calls, tt.token)
			}
		})
	}
}

func TestAuditCommandRefusesWhatItCannotDo(t *testing.T) {
	noKubeconfig(t)
	for name, tt := range map[string]struct {
		args []string
		want string
	}{
		"no cluster":                  {[]string{"audit", "-A"}, "no cluster to audit: give a kubeconfig"},
		"-n and -A":                   {[]string{"audit", "-A", "-n", "x"}, "give -n NAMESPACE or -A, not both"},
		"fixtures hold no pods":       {[]string{"audit", "--cluster", "testdata/node.yaml"}, "audit reads a live cluster"},
		"an unknown output format":    {[]string{"audit", "-o", "csv"}, "want table, json or yaml"},
		"a missing --kubeconfig file": {[]string{"audit", "--kubeconfig", "testdata/does-not-exist"}, "does-not-exist"},
		"positional arguments refuse": {[]string{"audit", "pod.yaml"}, `unknown command "pod.yaml"`},
	} {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != 2 || stdout != "" || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2 and %q", code, stdout, stderr, tt.want)
			}
		})
	}
}

func TestAuditProgressIsThrottled(t *testing.T) {
	var b strings.Builder
	p := progressPrinter(&b, time.Hour)
	p(audit.Progress{Resource: "pods", Read: 500})
	if b.Len() != 0 {
		t.Fatalf("a short audit printed progress: %q", b.String())
	}
	p = progressPrinter(&b, 0)
	p(audit.Progress{Resource: "pods", Read: 1500, Checked: 1490, Violations: 12})
	if want := "auditing: pods: 1500 read; 1490 decided so far, 12 violation(s)\n"; b.String() != want {
		t.Fatalf("progress %q, want %q", b.String(), want)
	}
}
