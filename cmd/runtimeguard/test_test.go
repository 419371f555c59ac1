package main

import (
	"strings"
	"testing"
)

func TestTestCommand(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		// want are substrings of stdout+stderr, in order.
		want []string
		// not are substrings that must not appear.
		not []string
	}{
		{
			name: "passing suites",
			args: []string{"test", "testdata/suites/pass"},
			code: 0,
			want: []string{
				"PASS testdata/suites/pass/embedded.suite.yaml: an empty cluster warns instead of denying in warn mode\n",
				"PASS testdata/suites/pass/merged.suite.yaml: a pod from a file gets gvisor and the extra warning\n",
				"PASS testdata/suites/pass/merged.suite.yaml: the namespace override did not leak into the next case\n",
				"6 passed, 0 failed\n",
			},
		},
		{
			name: "a failing case says expected and got, with the reasons",
			args: []string{"test", "testdata/suites/fail/fail.suite.yaml"},
			code: 1,
			want: []string{
				"PASS testdata/suites/fail/fail.suite.yaml: passes\n",
				"FAIL testdata/suites/fail/fail.suite.yaml: expects the wrong class\n",
				"at testdata/suites/fail/fail.suite.yaml:10\n",
				"allowed: expected false, got true\n",
				`runtimeClassName: expected "kata", got "gvisor"`,
				`warnings: expected one containing "something", got none`,
				`reason: cheapest available class that provides isolation >= 1: "gvisor"`,
				"FAIL testdata/suites/fail/fail.suite.yaml: expects warnings that are not there\n",
				"warnings: expected at least one, got none\n",
				"1 passed, 2 failed\n",
			},
			not: []string{"mutated: expected"},
		},
		{
			name: "--policy-data is layered over every suite's policy: the default suite catches the change",
			args: []string{"test", "../../policies/default.suite.yaml", "--policy-data", "testdata/layers/isolation2.yaml"},
			code: 1,
			want: []string{
				"FAIL ../../policies/default.suite.yaml: an untrusted namespace gets gvisor\n",
				`runtimeClassName: expected "gvisor", got "kata"`,
			},
		},
		{
			name: "a suite's policyModules and policyData keys layer the default policy",
			args: []string{"test", "testdata/layers/layered.suite.yaml"},
			code: 0,
			want: []string{
				"PASS testdata/layers/layered.suite.yaml: untrusted pods get kata\n",
				"PASS testdata/layers/layered.suite.yaml: a latest image is denied in an untrusted namespace\n",
				"2 passed, 0 failed\n",
			},
		},
		{
			name: "layered data that breaks the schema names file and line",
			args: []string{"test", "testdata/layers/layered.suite.yaml", "--policy-data", "testdata/layers/bad-schema.yaml"},
			code: 2,
			want: []string{"testdata/layers/bad-schema.yaml:4: data.config.classes[0].isolation: Invalid type. Expected: integer, given: string"},
		},
		{
			name: "broken suites name file and line and exit 2",
			args: []string{"test", "testdata/suites/broken"},
			code: 2,
			want: []string{
				`ERROR testdata/suites/broken/bad-value.suite.yaml:8: expect.allowed must be true or false, not str "yes"`,
				`ERROR testdata/suites/broken/unknown-key.suite.yaml:16: unknown key "runtimeClass" in expect`,
				"0 passed, 0 failed, 2 suites broken\n",
			},
		},
		{
			name: "a broken suite does not stop the others, and wins the exit code",
			args: []string{"test", "testdata/suites"},
			code: 2,
			want: []string{"ERROR", "FAIL testdata/suites/fail/fail.suite.yaml", "7 passed, 2 failed, 2 suites broken"},
		},
		{
			name: "--run selects cases",
			args: []string{"test", "--run", "^passes$", "testdata/suites/fail"},
			code: 0,
			want: []string{"PASS testdata/suites/fail/fail.suite.yaml: passes", "1 passed, 0 failed"},
			not:  []string{"expects the wrong class"},
		},
		{
			name: "--run matching no case is bad input, not a pass",
			args: []string{"test", "--run", "^no such case$", "testdata/suites/fail"},
			code: 2,
			want: []string{"0 passed, 0 failed", `--run "^no such case$" matched no case in 1 suite files`},
		},
		{
			name: "testdata below the root is skipped, so no suite is found",
			args: []string{"test", "."},
			code: 2,
			want: []string{"no *.suite.yaml files under ."},
		},
		{
			name: "a missing directory is bad input",
			args: []string{"test", "testdata/nowhere"},
			code: 2,
			want: []string{"testdata/nowhere"},
		},
		{
			name: "the shipped suites pass",
			args: []string{"test", "../../policies"},
			code: 0,
			want: []string{"PASS ../../policies/default.suite.yaml: an untrusted namespace gets gvisor", " passed, 0 failed\n"},
			not:  []string{"FAIL", "ERROR"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args...)
			all := stdout + stderr
			if code != tc.code {
				t.Errorf("exit code %d, want %d\n%s", code, tc.code, all)
			}
			wantInOrder(t, all, tc.want)
			for _, n := range tc.not {
				if strings.Contains(all, n) {
					t.Errorf("output has %q\n%s", n, all)
				}
			}
		})
	}
}
