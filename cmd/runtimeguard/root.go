package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// exitCode ends the program with a code after the command printed what it had to say.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "runtimeguard",
		Short:         "Decide which container runtime (RuntimeClass) each Pod runs under",
		Version:       "set below",
		SilenceUsage:  true,
		SilenceErrors: true,
		// The commands other than serve (which has its own hook and --zap-* flags) route klog
		// and controller-runtime's logger to stderr, readable by people.
		PersistentPreRun: func(cmd *cobra.Command, _ []string) { setupCLILogging(cmd.ErrOrStderr()) },
	}
	root.SetVersionTemplate(versionLine())
	root.AddCommand(newServeCommand(), newEvalCommand(), newDevCertsCommand())
	root.AddCommand(newTestCommand(), newExplainCommand(), newInventoryCommand(), newAuditCommand(), newVersionCommand(), newGenerateCommand())
	root.SetFlagErrorFunc(flagError)
	for _, c := range append(root.Commands(), root) {
		// pflag writes deprecation notices to the flag set's output, which cobra prints to
		// stdout when a command's output is redirected: they belong on stderr, away from -o json.
		c.Flags().SetOutput(stderrOf{c})
	}
	return root
}

// stderrOf writes to the command's stderr as it is when the write happens (tests set it after
// the tree is built).
type stderrOf struct{ cmd *cobra.Command }

func (s stderrOf) Write(p []byte) (int, error) { return s.cmd.ErrOrStderr().Write(p) }

var _ io.Writer = stderrOf{}
