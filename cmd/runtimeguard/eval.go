package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/spf13/cobra"

	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/manifest"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// offlineFlags are shared by the commands that decide without an API server.
type offlineFlags struct {
	clusterFiles      []string
	policyDirs        []string
	enforcement       string
	namespace         string
	requireAdvertised bool
	evalTimeout       time.Duration
}

func (f *offlineFlags) add(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringSliceVar(&f.clusterFiles, "cluster", nil, "files holding the cluster's Namespaces, Nodes and RuntimeClasses (YAML or JSON, multi-document or List)")
	fs.StringSliceVar(&f.policyDirs, "policies", nil, "policy directory; repeat to merge several (default: the embedded policy)")
	fs.StringVar(&f.enforcement, "enforcement", string(webhook.Enforce), "enforce or warn")
	fs.StringVar(&f.namespace, "namespace", "", "runtimeguard's own namespace (exempt)")
	fs.BoolVar(&f.requireAdvertised, "require-advertised-handlers", false, "deny classes whose handler no node is known to run")
	fs.DurationVar(&f.evalTimeout, "eval-timeout", 10*time.Second, "deadline of one policy evaluation (offline there is no webhook timeout to stay under)")
}

// admitter builds an Admitter over the fixture files, exactly as serve --cluster does.
func (f *offlineFlags) admitter(ctx context.Context) (*webhook.Admitter, error) {
	o, err := f.build(ctx, nil, nil)
	if err != nil {
		return nil, err
	}
	return o.admitter, nil
}

// offline is an Admitter with the parts it was built from (explain and test need them).
type offline struct {
	set      *policy.Set
	engine   *policy.Engine
	view     *cluster.View
	admitter *webhook.Admitter
}

// build is admitter with its parts. A non-nil view or set replaces the --cluster files or the
// --policies directories (explain --kubeconfig, test suites).
func (f *offlineFlags) build(ctx context.Context, view *cluster.View, set *policy.Set) (*offline, error) {
	if e := webhook.Enforcement(f.enforcement); e != webhook.Enforce && e != webhook.Warn {
		return nil, fmt.Errorf("--enforcement %q: want enforce or warn", f.enforcement)
	}
	var err error
	if view == nil {
		if view, err = cluster.LoadFiles(cluster.Options{RequireAdvertisedHandlers: f.requireAdvertised}, f.clusterFiles...); err != nil {
			return nil, err
		}
	}
	if set == nil {
		if set, err = webhook.LoadPolicies(f.policyDirs); err != nil {
			return nil, err
		}
	}
	engine, err := policy.NewEngine(ctx, set, f.evalTimeout)
	if err != nil {
		return nil, err
	}
	return &offline{set: set, engine: engine, view: view, admitter: webhook.NewAdmitter(webhook.Config{
		Engine: engine, View: view, Enforcement: webhook.Enforcement(f.enforcement), Namespace: f.namespace,
	})}, nil
}

func newEvalCommand() *cobra.Command {
	var flags offlineFlags
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
			pods, err := readPods(args)
			if err != nil {
				return err
			}
			var set *policy.Set
			if trace {
				if set, err = explainablePolicies(flags.policyDirs); err != nil {
					return err
				}
			}
			o, err := flags.build(cmd.Context(), nil, set)
			if err != nil {
				return err
			}
			outcomes := make([]webhook.Outcome, 0, len(pods))
			traces := make([]map[string]any, 0, len(pods))
			for _, p := range pods {
				out, err := simulate(cmd.Context(), o.admitter, p)
				if err != nil {
					return err
				}
				outcomes = append(outcomes, out)
				if trace {
					t, err := tracePod(cmd.Context(), o, p)
					if err != nil {
						return err
					}
					traces = append(traces, t)
				}
			}
			switch {
			case trace:
				err = writeTracedJSON(cmd.OutOrStdout(), outcomes, traces)
			case output == "json":
				err = writeJSON(cmd.OutOrStdout(), outcomes)
			default:
				err = writeText(cmd.OutOrStdout(), outcomes)
			}
			if err != nil {
				return err
			}
			for _, o := range outcomes {
				if !o.Allowed {
					return exitCode(1)
				}
			}
			return nil
		},
	}
	flags.add(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json (one object per Pod per line)")
	cmd.Flags().BoolVar(&trace, "trace", false, "with -o json: add the per-class trace of runtimeguard explain under \"trace\"")
	return cmd
}

// readPods reads every Pod in the files; anything that is not a Pod is bad input.
func readPods(paths []string) ([]manifest.Object, error) {
	var pods []manifest.Object
	for _, p := range paths {
		objs, err := manifest.ReadFile(p)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			if _, ok := o.Object.(*corev1.Pod); !ok {
				return nil, fmt.Errorf("%s: want a Pod, got %s", o.Source, o.Object.GetObjectKind().GroupVersionKind().Kind)
			}
			pods = append(pods, o)
		}
	}
	return pods, nil
}

func simulate(ctx context.Context, a *webhook.Admitter, o manifest.Object) (webhook.Outcome, error) {
	pod := o.Object.(*corev1.Pod)
	ns := pod.Namespace
	if ns == "" {
		ns = "default"
	}
	name := pod.Name
	if name == "" {
		name = pod.GenerateName
	}
	out, err := a.Simulate(ctx, ns, name, o.Raw)
	out.Source = o.Source
	return out, err
}

func writeJSON(w io.Writer, outcomes []webhook.Outcome) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, o := range outcomes {
		if err := enc.Encode(o); err != nil {
			return err
		}
	}
	return nil
}

func writeText(w io.Writer, outcomes []webhook.Outcome) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tPOD\tRESULT\tRUNTIMECLASS\tDETAIL")
	for _, o := range outcomes {
		result, detail := "allowed", strings.Join(o.Reasons, "; ")
		switch {
		case !o.Allowed:
			result, detail = "DENIED", o.Message
		case o.Mutated:
			result = "injected"
		}
		class := o.RuntimeClassName
		if class == "" {
			class = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", o.Namespace, o.Name, result, class, detail)
		for _, warning := range o.Warnings {
			fmt.Fprintf(tw, "\t\t\t\twarning: %s\n", warning)
		}
	}
	return tw.Flush()
}
