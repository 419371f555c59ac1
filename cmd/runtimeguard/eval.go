package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

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
	policyDir         string
	enforcement       string
	namespace         string
	requireAdvertised bool
}

func (f *offlineFlags) add(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringSliceVar(&f.clusterFiles, "cluster", nil, "files holding the cluster's Namespaces, Nodes and RuntimeClasses (YAML or JSON, multi-document or List)")
	fs.StringVar(&f.policyDir, "policies", "", "policy directory (default: the embedded policy)")
	fs.StringVar(&f.enforcement, "enforcement", string(webhook.Enforce), "enforce or warn")
	fs.StringVar(&f.namespace, "namespace", "", "runtimeguard's own namespace (exempt)")
	fs.BoolVar(&f.requireAdvertised, "require-advertised-handlers", false, "deny classes whose handler no node is known to run")
}

// admitter builds an Admitter over the fixture files, exactly as serve --cluster does.
func (f *offlineFlags) admitter(ctx context.Context) (*webhook.Admitter, error) {
	if e := webhook.Enforcement(f.enforcement); e != webhook.Enforce && e != webhook.Warn {
		return nil, fmt.Errorf("--enforcement %q: want enforce or warn", f.enforcement)
	}
	view, err := cluster.LoadFiles(cluster.Options{RequireAdvertisedHandlers: f.requireAdvertised}, f.clusterFiles...)
	if err != nil {
		return nil, err
	}
	set, err := webhook.LoadPolicies(f.policyDir)
	if err != nil {
		return nil, err
	}
	engine, err := policy.NewEngine(ctx, set, 0)
	if err != nil {
		return nil, err
	}
	return webhook.NewAdmitter(webhook.Config{
		Engine: engine, View: view, Enforcement: webhook.Enforcement(f.enforcement), Namespace: f.namespace,
	}), nil
}

func newEvalCommand() *cobra.Command {
	var flags offlineFlags
	var output string
	cmd := &cobra.Command{
		Use:   "eval --cluster FILE... [--policies DIR] [-o text|json] POD_FILE...",
		Short: "Decide offline, exactly as serve would, for the Pods in the given files",
		Long: `eval runs each Pod through the mutating and the validating webhook as the API server would,
against a cluster described by fixture files. Exit code: 0 all allowed, 1 any denied, 2 bad input.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("-o %q: want text or json", output)
			}
			pods, err := readPods(args)
			if err != nil {
				return err
			}
			admitter, err := flags.admitter(cmd.Context())
			if err != nil {
				return err
			}
			outcomes := make([]webhook.Outcome, 0, len(pods))
			for _, p := range pods {
				out, err := simulate(cmd.Context(), admitter, p)
				if err != nil {
					return err
				}
				outcomes = append(outcomes, out)
			}
			if output == "json" {
				err = writeJSON(cmd.OutOrStdout(), outcomes)
			} else {
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
