package main

import (
	"fmt"
	"regexp"

	"github.com/spf13/cobra"

	"github.com/runtimeguard/runtimeguard/policies/suite"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

func newTestCommand() *cobra.Command {
	var run string
	var layers policy.Layers
	var nativeToo bool
	cmd := &cobra.Command{
		Use:   "test [--run REGEXP] [--policy-modules DIR]... [--policy-data FILE|DIR]... [DIR|FILE]...",
		Short: "Run declarative policy test suites (*.suite.yaml)",
		Long: `test runs every *.suite.yaml found under the directories (default "."; hidden and testdata
directories below them are skipped). Each case goes through the mutating and the validating
webhook exactly as eval does, and its outcome is checked against what the case expects.

A suite file:

  policies: [DIR, ...]      # policy directories, relative to the suite file; merged like repeated
                            # serve --policies (default: the embedded default policy)
  defaultPolicy: true       # also load the embedded default policy under the directories
                            # (for a directory that only adds to it, like policies/examples/*)
  policyModules: [DIR, ...] # added to the policy as serve --policy-modules adds them
  policyData: [PATH, ...]   # merged over the policy's data as serve --policy-data merges it
  cluster: [FILE, ...]      # fixture files as eval --cluster takes them, relative to the suite file
  enforcement: enforce      # default enforcement of the cases: enforce or warn
  cases:
    - name: untrusted pods get gvisor       # unique in the suite
      pod: {metadata: ..., spec: ...}        # inline Pod (apiVersion and kind may be left out),
      podFile: pods/one.yaml                 #   or a file holding exactly one Pod
      namespaceLabels: {KEY: VALUE}          # add to / override the labels of the pod's Namespace
      namespaceAnnotations: {KEY: VALUE}     #   and its annotations (the Namespace is created when
                                             #   the fixtures lack it)
      enforcement: warn                      # this case's enforcement
      expect:                                # assert only what is given (at least one)
        allowed: true
        runtimeClassName: gvisor             # "" for none
        mutated: true
        messageContains: "..."               # the denial message
        warningsContain: ["...", ...]        # each is a substring of some warning
        noWarnings: true                     # there is no warning (false: there is one at least)
        reasonsContain: ["...", ...]         # each is a substring of some reason

Unknown keys and values of the wrong type are errors; inline pods are decoded strictly too.
--policy-modules and --policy-data are layered over every suite's policy, after its own
policyModules and policyData: a data change checked against the policy's suites.
Output: PASS/FAIL <suite file>: <case name> per case, then "N passed, N failed".
Exit code: 0 all passed, 1 any case failed, 2 a suite is broken (file:line says where), none
was found, or --run matched no case.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var filter *regexp.Regexp
			if run != "" {
				var err error
				if filter, err = regexp.Compile(run); err != nil {
					return fmt.Errorf("--run: %w", err)
				}
			}
			if len(args) == 0 {
				args = []string{"."}
			}
			files, err := suite.Find(args)
			if err != nil {
				return err
			}
			r := suite.RunWith(cmd.Context(), cmd.OutOrStdout(), files, suite.Options{Filter: filter, Layers: layers, Native: nativeToo})
			switch {
			case r.Broken > 0:
				return exitCode(2)
			case r.Matched == 0 && filter != nil:
				return fmt.Errorf("--run %q matched no case in %d suite files", run, len(files))
			case r.Failed > 0 || r.NativeDiffs > 0:
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&nativeToo, "native", false, "also run every case through the native admission policies generated from the policy data (runtimeguard generate native) and report each case they decide otherwise; a difference no documented limitation explains fails the run")
	cmd.Flags().StringVar(&run, "run", "", "run only the cases whose name matches this regular expression")
	cmd.Flags().StringSliceVar(&layers.ModuleDirs, "policy-modules", nil, "directory of extra .rego modules (and their data files) added to every suite's policy; repeatable")
	cmd.Flags().StringSliceVar(&layers.DataPaths, "policy-data", nil, "data file or directory merged over every suite's policy data (objects merge, lists and scalars replace, null removes); repeatable, later wins")
	return cmd
}
