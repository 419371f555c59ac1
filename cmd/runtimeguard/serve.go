package main

import (
	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/runtimeguard/runtimeguard/webhook/serve"
)

func newServeCommand() *cobra.Command {
	opts := serve.DefaultOptions()
	var logs logFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the admission webhook",
		Args:  cobra.NoArgs,
		// Replaces the root's hook: controller-runtime takes the first logger it is given, so
		// serve's must be the only one set.
		PersistentPreRun: func(cmd *cobra.Command, _ []string) { logs.setup(cmd.ErrOrStderr()) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve.Run(ctrl.SetupSignalHandler(), opts)
		},
	}
	opts.AddFlags(cmd.Flags())
	logs.add(cmd.Flags())
	return cmd
}
