package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/runtimeguard/runtimeguard/cmd/runtimeguard/internal/render"
	"github.com/runtimeguard/runtimeguard/webhook"
)

func newInventoryCommand() *cobra.Command {
	opts := webhook.DefaultOptions()
	var live liveFlags
	var output string
	var failOnDrift bool
	cmd := &cobra.Command{
		Use:   "inventory (--cluster FILE... | --kubeconfig PATH) [--policies DIR]... [-o table|json] [--fail-on-drift]",
		Short: "List every RuntimeClass with the nodes that can run it, and report drift",
		Long: `inventory lists every RuntimeClass with its handler, how many nodes advertise it and how
(status.runtimeHandlers, or labels matching the class's scheduling.nodeSelector on nodes that
report no handlers), how many of those are Ready and schedulable, how many can take its Pods
(taints tolerated, nodeSelector matched), and whether runtimeguard counts it as available.

Drift findings:
  class-unrunnable       a RuntimeClass no Ready, schedulable node can run
  label-drift            nodes labelled with a class's nodeSelector whose status.runtimeHandlers
                         does not list its handler
  shared-selector        one nodeSelector label key=value shared by classes with different handlers
                         (kata-deploy's katacontainers.io/kata-runtime=true does this)
  gpu-class-unscheduled  a class the policy data marks gpu: true (data.config.classes) whose
                         nodeSelector and tolerations mention none of the GPU resources of the
                         policy data (extended_resources of traits that require a GPU, such as
                         nvidia.com/gpu; the check is on the RuntimeClass only: node capacity is
                         not part of the cluster view)

serve exports the same figures as Prometheus metrics (runtimeguard_runtimeclass_nodes,
runtimeguard_runtimeclass_usable_nodes, runtimeguard_runtimeclass_available,
runtimeguard_drift_findings). Exit code: 0, or 1 with --fail-on-drift when there is a finding;
2 on bad input.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %q: want table or json", output)
			}
			view, err := live.view(cmd, &opts)
			if err != nil {
				return err
			}
			set, err := opts.LoadPolicies()
			if err != nil {
				return err
			}
			inv := view.Inventory(set.GPUPolicy())
			if output == "json" {
				err = render.JSON(cmd.OutOrStdout(), inv)
			} else {
				err = render.Inventory(cmd.OutOrStdout(), inv)
			}
			if err != nil {
				return err
			}
			if failOnDrift && len(inv.Findings) > 0 {
				return exitCode(1)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	opts.AddClusterFlags(fs)
	live.add(cmd)
	fs.StringVarP(&output, "output", "o", "table", "table or json")
	fs.BoolVar(&failOnDrift, "fail-on-drift", false, "exit 1 when there is any drift finding")
	return cmd
}
