package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runtimeguard/runtimeguard/cmd/runtimeguard/internal/render"
	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/manifest"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

func newEvalCommand() *cobra.Command {
	opts := webhook.DefaultOptions()
	var output render.Format
	var trace, emptyCluster, recursive bool
	cmd := &cobra.Command{
		Use:   "eval (--cluster FILE... | --empty-cluster) [--policies DIR]... [-o table|json|yaml [--trace]] [-R] FILE|DIR|-...",
		Short: "Decide offline, exactly as serve would, for the Pods and workloads in the given manifests",
		Long: `eval reads manifests as kubectl apply -f does (files, directories, "-" for standard input;
YAML documents separated by "---", JSON objects, or a List) and decides every Pod as the
mutating and the validating webhook would, and every Deployment, StatefulSet, DaemonSet,
ReplicaSet, ReplicationController, Job and CronJob by its Pod template as the validating
webhook does, against a cluster described by fixture files (what kubectl get
nodes,ns,runtimeclasses -o yaml prints). Objects of other kinds are listed as skipped. Pods and
workloads are read strictly: an unknown or misspelt field is an error naming the file and the
document. A document that cannot be read does not stop the others from being decided.
Exit code: 0 all allowed, 1 any denied, 2 bad input (any document).
With -o json --trace, each Pod carries under "trace" what runtimeguard explain shows.`,
		Example: `  runtimeguard eval --cluster cluster.yaml app.yaml
  runtimeguard eval --cluster cluster.yaml -R manifests/
  kubectl get nodes,ns,runtimeclasses -o yaml | runtimeguard eval --cluster - app.yaml
  helm template my-app ./chart | runtimeguard eval --empty-cluster -o yaml -`,
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
			docs := files.ReadManifests(args, recursive)
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
			outcomes, bad := decideAll(cmd.Context(), p, docs, trace)
			if len(outcomes) == 0 && len(bad) == 0 {
				return fmt.Errorf("no objects in %s", strings.Join(args, ", "))
			}
			w := cmd.OutOrStdout()
			if len(outcomes) > 0 {
				if err := render.PrintEach(w, output, outcomes, func() error { return render.Outcomes(w, outcomes) }); err != nil {
					return err
				}
			}
			if len(bad) > 0 {
				return badDocuments(bad)
			}
			return anyDenied(outcomes)
		},
	}
	opts.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&emptyCluster, "empty-cluster", false, "decide against a cluster with no Node, Namespace or RuntimeClass instead of --cluster files")
	cmd.Flags().BoolVarP(&recursive, "recursive", "R", false, "read the directories given, and their subdirectories, recursively (as kubectl -R)")
	render.AddFormatFlag(cmd.Flags(), &output, "one object per Pod, workload or skipped object per line")
	cmd.Flags().BoolVar(&trace, "trace", false, "with -o json: add the per-class trace of runtimeguard explain under \"trace\" (Pods only)")
	return cmd
}

// badDocuments is the error of documents that could not be decided, one per line.
func badDocuments(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = "  " + err.Error()
	}
	return fmt.Errorf("%d documents could not be decided:\n%s", len(errs), strings.Join(msgs, "\n"))
}
