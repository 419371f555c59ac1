package webhook

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/runtimeguard/runtimeguard/policies"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/manifest"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// Options are what a Pipeline decides with: the policy, the cluster's fixture files (if any) and
// the enforcement. serve, eval, explain, inventory and test share them and their flags, so a
// flag means the same thing, with the same default, in every command.
type Options struct {
	// PolicyDirs are directories of .rego and data files, merged into one set (--policies,
	// repeatable; none = the embedded default policy). serve reloads them on change.
	PolicyDirs []string
	// PolicyModuleDirs are directories whose .rego modules are added to the policy (the
	// built-in one, or PolicyDirs) and whose data files are merged over its data
	// (--policy-modules, repeatable). serve reloads them on change.
	PolicyModuleDirs []string
	// PolicyDataPaths are data files or directories merged over the policy's data, after the
	// module directories' (--policy-data, repeatable): objects merge key by key, lists and
	// scalars replace, null removes. serve reloads them on change.
	PolicyDataPaths []string
	// ClusterFiles hold the cluster's Namespaces, Nodes and RuntimeClasses, replacing the API
	// server (--cluster, none).
	ClusterFiles []string
	// Enforcement is enforce or warn (--enforcement, enforce); a namespace label
	// runtimeguard.io/enforcement=warn overrides it.
	Enforcement string
	// Namespace is the namespace the webhook itself runs in, which is exempt
	// (--webhook-namespace, $POD_NAMESPACE; --namespace is its deprecated alias, a name that
	// read like kubectl's "the namespace to act on").
	Namespace string
	// RequireAdvertisedHandlers counts classes whose availability cannot be known as
	// unavailable (--require-advertised-handlers, false).
	RequireAdvertisedHandlers bool
	// EvalTimeout bounds one policy evaluation (--eval-timeout, 1s). Offline commands use the
	// same deadline as serve, so a policy too slow to admit Pods fails there too.
	EvalTimeout time.Duration
	// WorkloadReview is enforce, warn or off (--workload-review, enforce): what the validating
	// webhook does with a workload whose Pods would be rejected.
	WorkloadReview string
	// LogDecisions logs each denial and each injection once at info level, through
	// controller-runtime's logger (serve's --log-decisions, true; the offline commands print
	// their decisions instead, so their default is false and they have no flag).
	LogDecisions bool
}

// DefaultOptions returns the defaults the flags show.
func DefaultOptions() Options {
	return Options{
		Enforcement:    string(Enforce),
		WorkloadReview: string(WorkloadEnforce),
		Namespace:      os.Getenv("POD_NAMESPACE"),
		EvalTimeout:    policy.DefaultTimeout,
	}
}

// AddFlags registers every flag: what AddClusterFlags and AddDecisionFlags register.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	o.AddClusterFlags(fs)
	o.AddDecisionFlags(fs)
}

// AddClusterFlags registers the flags that say what the cluster and the policy are: enough for
// a command that reads availability without deciding (inventory).
func (o *Options) AddClusterFlags(fs *pflag.FlagSet) {
	fs.StringSliceVar(&o.PolicyDirs, "policies", o.PolicyDirs, "directory of .rego and data files; repeat to merge several (none: the embedded default policy); serve reloads it on change")
	fs.StringSliceVar(&o.PolicyModuleDirs, "policy-modules", o.PolicyModuleDirs, "directory of extra .rego modules (and the data files they read) added to the policy without copying it; repeatable; serve reloads it on change")
	fs.StringSliceVar(&o.PolicyDataPaths, "policy-data", o.PolicyDataPaths, "data file, or directory of data files, merged over the policy's data (objects merge, lists and scalars replace, null removes a key); repeatable, later wins; serve reloads it on change")
	fs.StringSliceVar(&o.ClusterFiles, "cluster", o.ClusterFiles, "files holding the cluster's Namespaces, Nodes, RuntimeClasses, ResourceClaimTemplates and ResourceClaims (YAML or JSON, multi-document or List), used instead of an API server")
	fs.BoolVar(&o.RequireAdvertisedHandlers, "require-advertised-handlers", o.RequireAdvertisedHandlers, "deny runtime classes whose handler no node is known to run, instead of warning")
}

// AddDecisionFlags registers the flags that say how Pods are decided.
func (o *Options) AddDecisionFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Enforcement, "enforcement", o.Enforcement, "enforce: deny pods the policy rejects; warn: admit them with warnings (per namespace: label runtimeguard.io/enforcement=warn)")
	fs.StringVar(&o.Namespace, "webhook-namespace", o.Namespace, "namespace the webhook itself runs in, exempt from review (default $POD_NAMESPACE)")
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "deprecated alias of --webhook-namespace")
	_ = fs.MarkDeprecated("namespace", "use --webhook-namespace (the namespace the webhook runs in, not the Pods')")
	fs.StringVar(&o.WorkloadReview, "workload-review", o.WorkloadReview, "enforce: deny Deployments, StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs and CronJobs whose pods would be denied; warn: admit them with warnings; off: do not review them (their pods still are)")
	fs.DurationVar(&o.EvalTimeout, "eval-timeout", o.EvalTimeout, "deadline of one policy evaluation; keep it well under the webhook timeoutSeconds")
}

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	switch Enforcement(o.Enforcement) {
	case Enforce, Warn:
	default:
		errs = append(errs, fmt.Errorf("--enforcement %q: want enforce or warn", o.Enforcement))
	}
	switch WorkloadReview(o.WorkloadReview) {
	case WorkloadEnforce, WorkloadWarn, WorkloadOff, "":
	default:
		errs = append(errs, fmt.Errorf("--workload-review %q: want enforce, warn or off", o.WorkloadReview))
	}
	if o.EvalTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--eval-timeout %s: want a positive duration", o.EvalTimeout))
	}
	return errors.Join(errs...)
}

// ViewOptions are the cluster view's options.
func (o *Options) ViewOptions() cluster.Options {
	return cluster.Options{RequireAdvertisedHandlers: o.RequireAdvertisedHandlers}
}

// LoadPolicies loads the policy: the policy directories, or the embedded default policy when
// none, with the module and data layers on top. The data of a policy built on the embedded one
// must match its schema (policies/data.schema.json); a policy of one's own (--policies) is not
// checked against it.
func (o *Options) LoadPolicies() (*policy.Set, error) {
	base, err := o.loadBase()
	if err != nil {
		return nil, err
	}
	layers := o.Layers()
	if layers.Empty() {
		return base, nil
	}
	set, err := layers.Apply(base)
	if err != nil {
		return nil, err
	}
	if len(o.PolicyDirs) == 0 {
		if err := set.CheckData(context.Background(), policies.DataSchema); err != nil {
			return nil, err
		}
	}
	return set, nil
}

func (o *Options) loadBase() (*policy.Set, error) {
	if len(o.PolicyDirs) == 0 {
		return policy.LoadFS(policies.FS)
	}
	return policy.LoadDirs(o.PolicyDirs...)
}

// Layers are the --policy-modules and --policy-data layers.
func (o *Options) Layers() policy.Layers {
	return policy.Layers{ModuleDirs: o.PolicyModuleDirs, DataPaths: o.PolicyDataPaths}
}

// PolicyPaths lists every directory and file the policy is loaded from (none: the embedded
// policy alone), for the reload watcher.
func (o *Options) PolicyPaths() []string {
	return append(append([]string(nil), o.PolicyDirs...), o.Layers().Paths()...)
}

// LoadView loads the --cluster files into a synced view; "-" reads files.In.
func (o *Options) LoadView(files *manifest.Files) (*cluster.View, error) {
	return cluster.LoadFrom(o.ViewOptions(), files, o.ClusterFiles...)
}

// NewPipeline compiles set and returns a Pipeline over view with these options.
func (o *Options) NewPipeline(ctx context.Context, set *policy.Set, view *cluster.View, m *Metrics) (*Pipeline, *policy.Engine, error) {
	if err := o.Validate(); err != nil {
		return nil, nil, err
	}
	engine, err := policy.NewEngine(ctx, set, o.EvalTimeout)
	if err != nil {
		return nil, nil, err
	}
	cfg := Config{Engine: engine, View: view, Enforcement: Enforcement(o.Enforcement), WorkloadReview: WorkloadReview(o.WorkloadReview), Namespace: o.Namespace, Metrics: m}
	if o.LogDecisions {
		cfg.DecisionLog = ctrllog.Log.WithName("decision")
	}
	return NewPipeline(cfg), engine, nil
}

// TracePolicies is LoadPolicies with policies/explain.rego added when the set does not define
// the trace: explain and eval --trace trace any set built on the default policy's rules.
func (o *Options) TracePolicies() (*policy.Set, error) {
	set, err := o.LoadPolicies()
	if err != nil {
		return nil, err
	}
	return set.WithTrace(policies.TraceSource)
}
