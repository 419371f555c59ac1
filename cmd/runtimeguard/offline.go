package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/manifest"
)

// decideAll decides each document as the API server's calls to the webhooks would: a Pod
// through both webhooks, a workload through the validating one; other kinds are skipped. A
// document that cannot be read or decided is returned in bad, naming its source, and the
// others are still decided.
func decideAll(ctx context.Context, p *webhook.Pipeline, docs []manifest.Document, tracing bool) (outcomes []webhook.Outcome, bad []error) {
	for _, d := range docs {
		if d.Err != nil {
			bad = append(bad, d.Err)
			continue
		}
		namespace := d.Namespace
		if namespace == "" {
			namespace = "default" // as kubectl create would
		}
		var out webhook.Outcome
		var err error
		switch {
		case d.Skipped():
			out = webhook.Outcome{Kind: d.GVK.Kind, Namespace: d.Namespace, Name: d.Name, Allowed: true,
				Patch: []json.RawMessage{}, Reasons: []string{}, Warnings: []string{},
				Skipped: fmt.Sprintf("runtimeguard decides Pods and workloads, not %s", gvkName(d.GVK))}
		case d.Workload:
			out, err = p.SimulateWorkload(ctx, metav1.GroupVersionKind(d.GVK), namespace, d.Name, d.Raw)
		default:
			out, err = p.Simulate(ctx, namespace, d.Name, d.Raw, tracing)
		}
		if err != nil {
			bad = append(bad, fmt.Errorf("%s: %w", d.Source, err))
			continue
		}
		out.Source = d.Source
		outcomes = append(outcomes, out)
	}
	return outcomes, bad
}

func gvkName(gvk schema.GroupVersionKind) string {
	return gvk.GroupVersion().String() + " " + gvk.Kind
}

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

// liveFlags are the flags of the commands that read a live cluster when no --cluster file is
// given: the API server is found as kubectl finds it (--kubeconfig, --context, $KUBECONFIG,
// ~/.kube/config, in-cluster).
type liveFlags struct {
	kubeconfig cluster.Kubeconfig
}

func (l *liveFlags) add(cmd *cobra.Command) {
	l.kubeconfig.AddFlags(cmd.Flags())
}

// view returns the view of the --cluster files, or else one listing (no watch) of the live
// cluster's Nodes, RuntimeClasses, Namespaces and resource claims.
func (l *liveFlags) view(cmd *cobra.Command, o *webhook.Options, files *manifest.Files) (*cluster.View, error) {
	if len(o.ClusterFiles) > 0 {
		if cmd.Flags().Changed("kubeconfig") || cmd.Flags().Changed("context") {
			return nil, errors.New("give --cluster FILE... (fixtures) or --kubeconfig/--context (a live cluster), not both")
		}
		return o.LoadView(files)
	}
	cfg, err := l.kubeconfig.RESTConfig()
	if clientcmd.IsEmptyConfig(err) {
		return nil, errors.New("no cluster to read: give --cluster FILE... (fixtures), or a kubeconfig (--kubeconfig, $KUBECONFIG or ~/.kube/config)")
	}
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("API server %s: %w", cfg.Host, err)
	}
	view, err := cluster.List(cmd.Context(), c, o.ViewOptions())
	if err != nil {
		return nil, fmt.Errorf("reading the cluster at %s: %w", cfg.Host, err)
	}
	return view, nil
}
