package main

import (
	"github.com/spf13/cobra"

	"github.com/runtimeguard/runtimeguard/cmd/runtimeguard/internal/render"
	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/manifest"
)

func newExplainCommand() *cobra.Command {
	opts := webhook.DefaultOptions()
	var live liveFlags
	var podName string
	var output render.Format
	cmd := &cobra.Command{
		Use:   "explain [--cluster FILE... | --kubeconfig PATH --context NAME] [--policies DIR]... [--pod [NAMESPACE/]NAME] [-o table|json|yaml] POD_FILE",
		Short: "Explain the decision for one Pod: its traits, requirements, each class considered and why",
		Long: `explain shows, for one Pod, the traits the policy found and where each came from (namespace
label, pod label, extended resource request), what they require, every class in the policy's price
order with why it was chosen or skipped (isolation too low, no GPU, not available with the node
counts of the cluster view, nodeSelector conflict), and the final decision of the mutating and
validating webhooks (patch, verdict, message, warnings). It is eval's run with tracing on.

The per-class trace is data.runtimeguard.explain (policies/explain.rego); it is added to the policy
set when the --policies directories do not define it. POD_FILE ("-": standard input) must hold
one Pod, or use --pod to pick one. Without --cluster files, the cluster is read (once, no watch)
from the API server of the kubeconfig, as kubectl finds it. Exit code: 0 allowed, 1 denied, 2 bad
input.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			files := &manifest.Files{In: cmd.InOrStdin()}
			pods, err := files.ReadPods(args)
			if err != nil {
				return err
			}
			name := args[0]
			if name == manifest.Stdin {
				name = "stdin"
			}
			pod, err := manifest.PickPod(pods, podName, name)
			if err != nil {
				return err
			}
			view, err := live.view(cmd, &opts, files)
			if err != nil {
				return err
			}
			set, err := opts.TracePolicies()
			if err != nil {
				return err
			}
			p, engine, err := opts.NewPipeline(cmd.Context(), set, view, nil)
			if err != nil {
				return err
			}
			outcomes, err := simulateAll(cmd.Context(), p, []manifest.Object{pod}, true)
			if err != nil {
				return err
			}
			e := render.NewExplanation(outcomes[0], view.Snapshot(), engine.Files())
			w := cmd.OutOrStdout()
			if err := render.Print(w, output, e, func() error { return render.ExplanationText(w, &e) }); err != nil {
				return err
			}
			return anyDenied(outcomes)
		},
	}
	opts.AddFlags(cmd.Flags())
	live.add(cmd)
	cmd.Flags().StringVar(&podName, "pod", "", "the Pod to explain when POD_FILE holds several: NAME or NAMESPACE/NAME")
	render.AddFormatFlag(cmd.Flags(), &output, "one object")
	return cmd
}
