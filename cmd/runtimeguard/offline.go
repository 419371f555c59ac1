package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/manifest"
)

// simulateAll runs each Pod through the pipeline as the API server would.
func simulateAll(ctx context.Context, p *webhook.Pipeline, pods []manifest.Object, tracing bool) ([]webhook.Outcome, error) {
	outcomes := make([]webhook.Outcome, 0, len(pods))
	for _, o := range pods {
		ns, name := manifest.PodIdentity(o)
		out, err := p.Simulate(ctx, ns, name, o.Raw, tracing)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.Source, err)
		}
		out.Source = o.Source
		outcomes = append(outcomes, out)
	}
	return outcomes, nil
}

func anyDenied(outcomes []webhook.Outcome) error {
	for _, o := range outcomes {
		if !o.Allowed {
			return exitCode(1)
		}
	}
	return nil
}

// liveFlags adds --kubeconfig to the commands that can read a live cluster instead of fixtures.
type liveFlags struct {
	kubeconfig string
}

func (l *liveFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&l.kubeconfig, "kubeconfig", "", "read Nodes, RuntimeClasses, Namespaces and resource claims from this cluster (one listing, no watch) instead of --cluster files; an empty value means in-cluster config or $KUBECONFIG")
}

// view returns the cluster view: one listing of the live cluster with --kubeconfig, or the
// --cluster files. Exactly one of the two must be given.
func (l *liveFlags) view(cmd *cobra.Command, o *webhook.Options) (*cluster.View, error) {
	live := cmd.Flags().Changed("kubeconfig")
	switch {
	case live && len(o.ClusterFiles) > 0:
		return nil, errors.New("give --cluster FILE... or --kubeconfig PATH, not both")
	case !live && len(o.ClusterFiles) == 0:
		return nil, errors.New("give --cluster FILE... (fixtures) or --kubeconfig PATH (a live cluster)")
	case !live:
		return o.LoadView()
	}
	var cfg *rest.Config
	var err error
	if l.kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", l.kubeconfig)
	} else {
		cfg, err = ctrl.GetConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig: %w", err)
	}
	return cluster.List(cmd.Context(), c, o.ViewOptions())
}
