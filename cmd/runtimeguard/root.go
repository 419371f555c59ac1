package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// exitCode ends the program with a code after the command printed what it had to say.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "runtimeguard",
		Short:         "Decide which container runtime (RuntimeClass) each Pod runs under",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCommand(), newEvalCommand(), newDevCertsCommand())
	root.AddCommand(newTestCommand(), newExplainCommand(), newInventoryCommand())
	return root
}
