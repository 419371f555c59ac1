package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/runtimeguard/runtimeguard/cmd/runtimeguard/internal/render"
	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/manifest"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

func newEvalCommand() *cobra.Command {
	opts := webhook.DefaultOptions()
	var output string
	var trace bool
	cmd := &cobra.Command{
		Use:   "eval --cluster FILE... [--policies DIR] [-o text|json [--trace]] POD_FILE...",
		Short: "Decide offline, exactly as serve would, for the Pods in the given files",
		Long: `eval runs each Pod through the mutating and the validating webhook as the API server would,
against a cluster described by fixture files. Exit code: 0 all allowed, 1 any denied, 2 bad input.
With -o json --trace, each object carries under "trace" what runtimeguard explain shows.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("-o %q: want text or json", output)
			}
			if trace && output != "json" {
				return fmt.Errorf("--trace needs -o json (or use runtimeguard explain)")
			}
			pods, err := manifest.ReadPods(args)
			if err != nil {
				return err
			}
			view, err := opts.LoadView()
			if err != nil {
				return err
			}
			var set *policy.Set
			if trace {
				set, err = opts.TracePolicies()
			} else {
				set, err = opts.LoadPolicies()
			}
			if err != nil {
				return err
			}
			p, _, err := opts.NewPipeline(cmd.Context(), set, view, nil)
			if err != nil {
				return err
			}
			outcomes, err := simulateAll(cmd.Context(), p, pods, trace)
			if err != nil {
				return err
			}
			if output == "json" {
				err = render.JSONLines(cmd.OutOrStdout(), outcomes)
			} else {
				err = render.Outcomes(cmd.OutOrStdout(), outcomes)
			}
			if err != nil {
				return err
			}
			return anyDenied(outcomes)
		},
	}
	opts.AddFlags(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json (one object per Pod per line)")
	cmd.Flags().BoolVar(&trace, "trace", false, "with -o json: add the per-class trace of runtimeguard explain under \"trace\"")
	return cmd
}
