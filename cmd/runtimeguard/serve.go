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
		RunE: func(cmd *cobra.Command, _ []string) error {
			logs.setup(cmd.ErrOrStderr())
			return serve.Run(ctrl.SetupSignalHandler(), opts)
		},
	}
	opts.AddFlags(cmd.Flags())
	logs.add(cmd.Flags())
	return cmd
}
