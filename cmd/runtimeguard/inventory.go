package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

func newInventoryCommand() *cobra.Command {
	var flags offlineFlags
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
                         nodeSelector and tolerations mention nvidia.com/gpu nowhere (the check is
                         on the RuntimeClass only: node capacity is not part of the cluster view)

serve exports the same figures as Prometheus metrics (runtimeguard_runtimeclass_nodes,
runtimeguard_runtimeclass_usable_nodes, runtimeguard_runtimeclass_available,
runtimeguard_drift_findings). Exit code: 0, or 1 with --fail-on-drift when there is a finding;
2 on bad input.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %q: want table or json", output)
			}
			view, err := live.view(cmd, &flags)
			if err != nil {
				return err
			}
			if view == nil {
				if view, err = cluster.LoadFiles(cluster.Options{RequireAdvertisedHandlers: flags.requireAdvertised}, flags.clusterFiles...); err != nil {
					return err
				}
			}
			set, err := webhook.LoadPolicies(flags.policyDirs)
			if err != nil {
				return err
			}
			inv := view.Inventory(cluster.GPUClasses(set.Data))
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetEscapeHTML(false)
				enc.SetIndent("", "  ")
				err = enc.Encode(inv)
			} else {
				err = writeInventory(cmd.OutOrStdout(), inv)
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
	fs.StringSliceVar(&flags.clusterFiles, "cluster", nil, "files holding the cluster's Namespaces, Nodes and RuntimeClasses (YAML or JSON, multi-document or List)")
	fs.StringSliceVar(&flags.policyDirs, "policies", nil, "policy directory whose data.config.classes says which classes are GPU classes; repeat to merge several (default: the embedded policy)")
	fs.BoolVar(&flags.requireAdvertised, "require-advertised-handlers", false, "count classes whose handler no node is known to run as unavailable, as serve with this flag does")
	live.add(cmd)
	fs.StringVarP(&output, "output", "o", "table", "table or json")
	fs.BoolVar(&failOnDrift, "fail-on-drift", false, "exit 1 when there is any drift finding")
	return cmd
}

func writeInventory(w io.Writer, inv *cluster.Inventory) error {
	fmt.Fprintf(w, "%d nodes, %d report status.runtimeHandlers\n\n", inv.Nodes, inv.Reporting)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUNTIMECLASS\tHANDLER\tGPU\tBY STATUS\tBY LABELS\tREADY\tSCHEDULABLE\tUSABLE\tAVAILABLE\tSOURCE")
	for _, c := range inv.Classes {
		available := yesNo(c.Availability.Available)
		if !c.Availability.Known {
			available += " (unknown)"
		}
		gpu := "-"
		if c.GPU {
			gpu = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", c.Name, c.Handler, gpu,
			c.AdvertisedByStatus, c.AdvertisedByLabels, c.Ready, c.Schedulable, c.Usable, available, c.Availability.Source)
	}
	if len(inv.Classes) == 0 {
		fmt.Fprintln(tw, "(no RuntimeClass)")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(inv.Findings) == 0 {
		fmt.Fprintln(w, "\nNo drift found.")
		return nil
	}
	fmt.Fprintf(w, "\n%d drift %s:\n", len(inv.Findings), plural(len(inv.Findings), "finding", "findings"))
	for _, f := range inv.Findings {
		fmt.Fprintf(w, "  %-22s %s\n", f.Kind, f.Message)
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
