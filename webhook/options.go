package webhook

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/runtimeguard/runtimeguard/certs"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// Options configures `runtimeguard serve`. Each field's comment gives its flag and default.
type Options struct {
	// Port is the webhook's TLS port (--port, 9443).
	Port int
	// BindAddress is the address the webhook listens on (--bind-address, "" = all).
	BindAddress string
	// CertDir holds tls.crt and tls.key, reloaded when they change (--cert-dir,
	// /tmp/k8s-webhook-server/serving-certs).
	CertDir string
	// PolicyDirs are directories of .rego and data files, merged into one set and reloaded on
	// change (--policies, repeatable; none = the embedded default policy).
	PolicyDirs []string
	// MetricsBindAddress serves Prometheus /metrics (--metrics-bind-address, ":8080"; "0" = off).
	MetricsBindAddress string
	// HealthProbeBindAddress serves /healthz and /readyz (--health-probe-bind-address, ":8081").
	HealthProbeBindAddress string
	// Kubeconfig is the kubeconfig to use (--kubeconfig, "" = in-cluster or $KUBECONFIG).
	Kubeconfig string
	// Enforcement is enforce or warn (--enforcement, enforce).
	Enforcement string
	// Namespace is the namespace runtimeguard runs in, which is exempt (--namespace, $POD_NAMESPACE).
	Namespace string
	// RequireAdvertisedHandlers denies classes whose availability cannot be known
	// (--require-advertised-handlers, false).
	RequireAdvertisedHandlers bool
	// EvalTimeout bounds one policy evaluation (--eval-timeout, 1s).
	EvalTimeout time.Duration
	// ClusterFiles replace the API server with fixture files (--cluster, none).
	ClusterFiles []string
	// ShutdownTimeout is how long in-flight admissions may take after SIGTERM
	// (--shutdown-timeout, 25s).
	ShutdownTimeout time.Duration
	// ShutdownDelay is how long the webhook keeps serving after SIGTERM with /readyz failing,
	// so endpoints (and the API server's connections) move to other replicas before it stops
	// accepting requests (--shutdown-delay, 5s).
	ShutdownDelay time.Duration
	// MaxStaleness is how long the API server may be unreachable before /readyz fails; decisions
	// continue from the cache meanwhile (--max-staleness, 2m).
	MaxStaleness time.Duration
	// Certs configures self-managed certificates (--self-signed-certs and friends).
	Certs certs.Options
}

// DefaultOptions returns the defaults the flags show.
func DefaultOptions() Options {
	return Options{
		Port:                   9443,
		CertDir:                "/tmp/k8s-webhook-server/serving-certs",
		MetricsBindAddress:     ":8080",
		HealthProbeBindAddress: ":8081",
		Enforcement:            string(Enforce),
		Namespace:              os.Getenv("POD_NAMESPACE"),
		EvalTimeout:            policy.DefaultTimeout,
		ShutdownTimeout:        25 * time.Second,
		ShutdownDelay:          5 * time.Second,
		MaxStaleness:           2 * time.Minute,
	}
}

// AddFlags registers the serve flags.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.Port, "port", o.Port, "TLS port of the admission webhook")
	fs.StringVar(&o.BindAddress, "bind-address", o.BindAddress, "address the webhook listens on (empty: all interfaces)")
	fs.StringVar(&o.CertDir, "cert-dir", o.CertDir, "directory holding tls.crt and tls.key (reloaded when they change)")
	fs.StringSliceVar(&o.PolicyDirs, "policies", o.PolicyDirs, "directory of .rego and data files, reloaded on change; repeat to merge several (none: the embedded default policy)")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, "address of the Prometheus /metrics endpoint (\"0\" disables it)")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress, "address of /healthz and /readyz")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig file (empty: in-cluster config or $KUBECONFIG)")
	fs.StringVar(&o.Enforcement, "enforcement", o.Enforcement, "enforce: deny pods the policy rejects; warn: admit them with warnings (per namespace: label runtimeguard.io/enforcement=warn)")
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "namespace runtimeguard runs in; exempt from review (default $POD_NAMESPACE)")
	fs.BoolVar(&o.RequireAdvertisedHandlers, "require-advertised-handlers", o.RequireAdvertisedHandlers, "deny runtime classes whose handler no node is known to run, instead of warning")
	fs.DurationVar(&o.EvalTimeout, "eval-timeout", o.EvalTimeout, "deadline of one policy evaluation; keep it well under the webhook timeoutSeconds")
	fs.StringSliceVar(&o.ClusterFiles, "cluster", o.ClusterFiles, "fixture files (Namespaces, Nodes, RuntimeClasses) to use instead of an API server")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", o.ShutdownTimeout, "how long in-flight admissions may finish after SIGTERM")
	fs.DurationVar(&o.ShutdownDelay, "shutdown-delay", o.ShutdownDelay, "how long to keep serving after SIGTERM with /readyz failing, so traffic moves to other replicas first")
	fs.DurationVar(&o.MaxStaleness, "max-staleness", o.MaxStaleness, "how long the API server may be unreachable before /readyz fails (decisions continue from the cache meanwhile)")
	o.Certs.AddFlags(fs)
}

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	if o.Port <= 0 || o.Port > 65535 {
		errs = append(errs, fmt.Errorf("--port %d: want 1-65535", o.Port))
	}
	switch Enforcement(o.Enforcement) {
	case Enforce, Warn:
	default:
		errs = append(errs, fmt.Errorf("--enforcement %q: want enforce or warn", o.Enforcement))
	}
	if o.EvalTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--eval-timeout %s: want a positive duration", o.EvalTimeout))
	}
	if o.CertDir == "" {
		errs = append(errs, errors.New("--cert-dir is required"))
	}
	if o.ShutdownDelay < 0 {
		errs = append(errs, fmt.Errorf("--shutdown-delay %s: want zero or more", o.ShutdownDelay))
	}
	if o.Certs.Enabled {
		if len(o.ClusterFiles) > 0 {
			errs = append(errs, errors.New("--self-signed-certs needs an API server; it cannot be combined with --cluster"))
		}
		c := o.Certs
		c.Namespace = o.Namespace
		if err := c.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
