package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/runtimeguard/runtimeguard/webhook/serve"
)

func newServeCommand() *cobra.Command {
	opts := serve.DefaultOptions()
	var logLevel string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the admission webhook",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level zapcore.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel)
			}
			ctrl.SetLogger(zap.New(zap.Level(level), zap.StacktraceLevel(zapcore.DPanicLevel)))
			return serve.Run(ctrl.SetupSignalHandler(), opts)
		},
	}
	opts.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}
