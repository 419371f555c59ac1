package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/runtimeguard/runtimeguard/cmd/runtimeguard/internal/render"
	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/manifest"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

func newEvalCommand() *cobra.Command {
	opts := webhook.DefaultOptions()
	var output render.Format
	var trace, emptyCluster bool
	cmd := &cobra.Command{
		Use:   "eval (--cluster FILE... | --empty-cluster) [--policies DIR]... [-o table|json|yaml [--trace]] POD_FILE...",
		Short: "Decide offline, exactly as serve would, for the Pods in the given files",
		Long: `eval runs each Pod through the mutating and the validating webhook as the API server would,
against a cluster described by fixture files (what kubectl get nodes,ns,runtimeclasses -o yaml
prints). A file "-" is standard input. Exit code: 0 all allowed, 1 any denied, 2 bad input.
With -o json --trace, each object carries under "trace" what runtimeguard explain shows.`,
		Example: `  runtimeguard eval --cluster cluster.yaml pods.yaml
  kubectl get nodes,ns,runtimeclasses -o yaml | runtimeguard eval --cluster - pod.yaml
  runtimeguard eval --empty-cluster -o yaml - < pod.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case trace && output != render.FormatJSON:
				return errors.New("--trace needs -o json (or use runtimeguard explain)")
			case emptyCluster && len(opts.ClusterFiles) > 0:
				return errors.New("give --cluster FILE... or --empty-cluster, not both")
			case !emptyCluster && len(opts.ClusterFiles) == 0:
				// Deciding against no cluster denies every class as not found: say so up front.
				return errors.New("give --cluster FILE... (the cluster's Nodes, Namespaces and RuntimeClasses: kubectl get nodes,ns,runtimeclasses -o yaml), or --empty-cluster to decide against a cluster without any")
			}
			files := &manifest.Files{In: cmd.InOrStdin()}
			pods, err := files.ReadPods(args)
			if err != nil {
				return err
			}
			view, err := opts.LoadView(files)
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
			w := cmd.OutOrStdout()
			if err := render.PrintEach(w, output, outcomes, func() error { return render.Outcomes(w, outcomes) }); err != nil {
				return err
			}
			return anyDenied(outcomes)
		},
	}
	opts.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&emptyCluster, "empty-cluster", false, "decide against a cluster with no Node, Namespace or RuntimeClass instead of --cluster files")
	render.AddFormatFlag(cmd.Flags(), &output, "one object per Pod per line")
	cmd.Flags().BoolVar(&trace, "trace", false, "with -o json: add the per-class trace of runtimeguard explain under \"trace\"")
	return cmd
}
