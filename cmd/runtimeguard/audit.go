package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/runtimeguard/runtimeguard/cmd/runtimeguard/internal/render"
	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/audit"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

func newAuditCommand() *cobra.Command {
	opts := webhook.DefaultOptions()
	var kubeconfig cluster.Kubeconfig
	var output render.Format
	var namespace string
	var allNamespaces bool
	var chunkSize int64
	cmd := &cobra.Command{
		Use:   "audit [-n NAMESPACE | -A] [--kubeconfig PATH] [--context NAME] [--policies DIR]... [-o table|json|yaml]",
		Short: "List the existing Pods and workloads that the current policy would reject",
		Long: `audit reads the live cluster (found as kubectl finds it: --kubeconfig, $KUBECONFIG,
~/.kube/config, in-cluster) and decides every Pod and workload template (Deployment, StatefulSet,
DaemonSet, ReplicaSet, ReplicationController, Job, CronJob) the way the validating webhook would
decide it today, as if every namespace were enforced: Pods created while their namespace was in
warn mode or before runtimeguard was installed, classes too weak for their namespace, classes
whose handler no reachable node runs any more. Pods are decided as they are stored (a Pod
without class where one is required is a violation); templates with the class injection
simulated, as at admission. Finished Pods, and ReplicaSets and Jobs that a Deployment or
CronJob controls (their owner is decided), are skipped.

Like kubectl, it audits the current context's namespace unless given -n NAMESPACE or
-A (every namespace). Lists are read in pages of --chunk-size; a page that fails is retried,
and what still cannot be read or decided is reported.

Exit code: 0 no violation; 1 violations; 2 error, or an incomplete audit without violations.
serve runs the same audit in the background (--audit-interval) and publishes it as metrics and
PolicyReports.`,
		Example: `  runtimeguard audit -A
  runtimeguard audit -n team-a -o json | jq '.violations[].name'
  runtimeguard audit --context prod -A --policies ./policies`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if allNamespaces && cmd.Flags().Changed("namespace") {
				return errors.New("give -n NAMESPACE or -A, not both")
			}
			if len(opts.ClusterFiles) > 0 {
				return errors.New("audit reads a live cluster: --cluster fixtures hold no Pods or workloads to audit (use eval for manifests)")
			}
			cfg, err := kubeconfig.RESTConfig()
			if clientcmd.IsEmptyConfig(err) {
				return errors.New("no cluster to audit: give a kubeconfig (--kubeconfig, $KUBECONFIG or ~/.kube/config)")
			}
			if err != nil {
				return fmt.Errorf("kubeconfig: %w", err)
			}
			if !allNamespaces && namespace == "" {
				if namespace, err = kubeconfig.Namespace(); err != nil {
					return fmt.Errorf("kubeconfig: %w", err)
				}
			}
			set, err := opts.LoadPolicies()
			if err != nil {
				return err
			}
			scheme := runtime.NewScheme()
			if err := clientgoscheme.AddToScheme(scheme); err != nil {
				return err
			}
			c, err := client.New(cfg, client.Options{Scheme: scheme})
			if err != nil {
				return fmt.Errorf("API server %s: %w", cfg.Host, err)
			}
			view, err := cluster.List(ctx, c, opts.ViewOptions())
			if err != nil {
				return fmt.Errorf("reading the cluster at %s: %w", cfg.Host, err)
			}
			p, _, err := opts.NewPipeline(ctx, set, view, nil)
			if err != nil {
				return err
			}
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			a := &audit.Auditor{Client: cs, Pipeline: p, PageSize: chunkSize, Progress: progressPrinter(stderr, 2*time.Second)}
			report, err := a.Run(ctx, namespace)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if err := render.Print(w, output, report, func() error { return render.Audit(w, report) }); err != nil {
				return err
			}
			scope := fmt.Sprintf("namespace %q (-A for every namespace)", namespace)
			if namespace == "" {
				scope = "every namespace"
			}
			fmt.Fprintf(stderr, "audited %s in %s: %d decided, %d exempt, %d skipped; %d violation(s), %d undecided, %d list(s) unread\n",
				scope, report.Duration, report.Checked, report.Exempt, report.Skipped, len(report.Violations), len(report.Undecided), len(report.Unread))
			switch {
			case len(report.Violations) > 0:
				return exitCode(1)
			case len(report.Undecided) > 0 || len(report.Unread) > 0:
				fmt.Fprintln(stderr, "runtimeguard: the audit is incomplete: see what could not be read or decided above")
				return exitCode(2)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	opts.AddClusterFlags(fs)
	_ = fs.MarkHidden("cluster")
	kubeconfig.AddFlags(fs)
	fs.StringVarP(&namespace, "namespace", "n", "", "namespace to audit (default: the kubeconfig context's, as kubectl)")
	fs.BoolVarP(&allNamespaces, "all-namespaces", "A", false, "audit every namespace")
	fs.StringVar(&opts.Namespace, "webhook-namespace", opts.Namespace, "namespace runtimeguard runs in, exempt like at admission (default $POD_NAMESPACE)")
	fs.DurationVar(&opts.EvalTimeout, "eval-timeout", opts.EvalTimeout, "deadline of one policy evaluation")
	fs.Int64Var(&chunkSize, "chunk-size", 500, "objects per list page (as kubectl's --chunk-size)")
	render.AddFormatFlag(fs, &output, "one object: violations, undecided, unread and counts")
	return cmd
}

// progressPrinter returns an audit progress callback that writes a line to w at most once per
// every, so a long audit shows it is moving and a short one prints nothing.
func progressPrinter(w io.Writer, every time.Duration) func(audit.Progress) {
	last := time.Now()
	return func(p audit.Progress) {
		if time.Since(last) < every {
			return
		}
		last = time.Now()
		fmt.Fprintf(w, "auditing: %s: %d read; %d decided so far, %d violation(s)\n", p.Resource, p.Read, p.Checked, p.Violations)
	}
}
