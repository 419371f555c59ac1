package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/manifest"
	"github.com/runtimeguard/runtimeguard/webhook/native"
)

func newGenerateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Generate Kubernetes objects from the policy",
	}
	cmd.AddCommand(newGenerateNativeCommand())
	return cmd
}

func newGenerateNativeCommand() *cobra.Command {
	opts := webhook.DefaultOptions()
	var emptyCluster bool
	cmd := &cobra.Command{
		Use:   "native [--policies DIR]... [--policy-data PATH]... [--cluster FILE...] [--webhook-namespace NS] [--enforcement warn]",
		Short: "Print the policy's data as native admission policies (CEL, run by kube-apiserver itself)",
		Long: `native prints, as YAML, a ValidatingAdmissionPolicy with two bindings (Deny, and Warn for
namespaces labelled runtimeguard.io/enforcement=warn) and a MutatingAdmissionPolicy with its
binding, generated from the policy's data.config: the traits, their labels and extended
resources, and the classes in price order. kube-apiserver evaluates them itself, so they keep
deciding while the webhook is down. Which classes are available comes from the parameter
ConfigMap ` + native.ParamsName + ` in the webhook's namespace; with --cluster its current
content is printed too (from the fixture files), otherwise create it or let serve keep it.
What the native policies do not do that the webhook does (placement, warnings, custom Rego,
resource claims) is printed on standard error; runtimeguard test --native shows what that
means for your suites.`,
		Example: `  runtimeguard generate native --webhook-namespace runtimeguard | kubectl apply -f -
  kubectl get nodes,runtimeclasses -o yaml > cluster.yaml
  runtimeguard generate native --cluster cluster.yaml --webhook-namespace runtimeguard`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if emptyCluster && len(opts.ClusterFiles) > 0 {
				return errors.New("give --cluster FILE... or --empty-cluster, not both")
			}
			set, err := opts.LoadPolicies()
			if err != nil {
				return err
			}
			gen := native.Options{Namespace: opts.Namespace, Warn: webhook.Enforcement(opts.Enforcement) == webhook.Warn, Extra: native.CustomModules(set)}
			if len(opts.ClusterFiles) > 0 || emptyCluster {
				view, err := opts.LoadView(&manifest.Files{In: cmd.InOrStdin()})
				if err != nil {
					return err
				}
				gen.Available = native.Availability(view.Snapshot())
			}
			if gen.Namespace == "" {
				return errors.New("give --webhook-namespace: the parameter ConfigMap lives there, and the namespace is exempt like kube-system")
			}
			b, err := native.Generate(set.Data, gen)
			if err != nil {
				return err
			}
			out, err := b.YAML()
			if err != nil {
				return err
			}
			if _, err := cmd.OutOrStdout().Write(out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "The native policies do not do what the webhook does here (%d):\n", len(b.Limitations))
			for _, l := range b.Limitations {
				fmt.Fprintf(cmd.ErrOrStderr(), "  - %s\n", l)
			}
			return nil
		},
	}
	opts.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&emptyCluster, "empty-cluster", false, "print the parameter ConfigMap for a cluster without RuntimeClasses (every class unavailable)")
	return cmd
}
