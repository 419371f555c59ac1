package main

import (
	"github.com/spf13/cobra"

	"github.com/runtimeguard/runtimeguard/cmd/runtimeguard/internal/render"
	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/manifest"
)

func newInventoryCommand() *cobra.Command {
	opts := webhook.DefaultOptions()
	var live liveFlags
	var output render.Format
	var failOnDrift bool
	cmd := &cobra.Command{
		Use:   "inventory [--cluster FILE... | --kubeconfig PATH --context NAME] [--policies DIR]... [-o table|json|yaml] [--fail-on-drift]",
		Short: "List every RuntimeClass with the nodes that can run it, and report drift",
		Long: `inventory lists every RuntimeClass with its handler, how many nodes advertise it and how
(status.runtimeHandlers, or labels matching the class's scheduling.nodeSelector on nodes that
report no handlers), how many of those are Ready and schedulable, how many can take its Pods
(taints tolerated, nodeSelector matched), and whether runtimeguard counts it as available.
It reads the --cluster files ("-": standard input), or else the API server of the kubeconfig,
as kubectl finds it (once, no watch).

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
			view, err := live.view(cmd, &opts, &manifest.Files{In: cmd.InOrStdin()})
			if err != nil {
				return err
			}
			set, err := opts.LoadPolicies()
			if err != nil {
				return err
			}
			inv := view.Inventory(set.GPUPolicy())
			w := cmd.OutOrStdout()
			if err := render.Print(w, output, inv, func() error { return render.Inventory(w, inv) }); err != nil {
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
	render.AddFormatFlag(fs, &output, "one object")
	fs.BoolVar(&failOnDrift, "fail-on-drift", false, "exit 1 when there is any drift finding")
	return cmd
}
