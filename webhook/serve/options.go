package serve

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/runtimeguard/runtimeguard/certs"
	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

// Options configures `runtimeguard serve`. Each field's comment gives its flag and default.
type Options struct {
	// Options are the pipeline's: policies, --cluster fixtures, enforcement, namespace, deadline;
	// the offline commands take the same flags.
	webhook.Options
	// Port is the webhook's TLS port (--port, 9443).
	Port int
	// BindAddress is the address the webhook listens on (--bind-address, "" = all).
	BindAddress string
	// CertDir holds tls.crt and tls.key, reloaded when they change (--cert-dir,
	// /tmp/k8s-webhook-server/serving-certs).
	CertDir string
	// MetricsBindAddress serves Prometheus /metrics (--metrics-bind-address, ":8080"; "0" = off).
	MetricsBindAddress string
	// HealthProbeBindAddress serves /healthz and /readyz (--health-probe-bind-address, ":8081").
	HealthProbeBindAddress string
	// Kubeconfig selects the API server (--kubeconfig, --context; default $KUBECONFIG,
	// ~/.kube/config, then in-cluster).
	Kubeconfig cluster.Kubeconfig
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
	// FailurePolicy sets the webhooks' failurePolicy once this replica is ready
	// (--failure-policy; failurepolicy.go).
	FailurePolicy FailurePolicyOptions
	// Audit configures the background audit (--audit-*; audit.go).
	Audit AuditOptions
	// NativeParams keeps the native policies' parameter ConfigMap current (--native-params*;
	// nativeparams.go).
	NativeParams NativeParamsOptions
}

// DefaultOptions returns the defaults the flags show.
func DefaultOptions() Options {
	pipeline := webhook.DefaultOptions()
	pipeline.LogDecisions = true
	return Options{
		Options:                pipeline,
		Port:                   9443,
		CertDir:                "/tmp/k8s-webhook-server/serving-certs",
		MetricsBindAddress:     ":8080",
		HealthProbeBindAddress: ":8081",
		ShutdownTimeout:        25 * time.Second,
		ShutdownDelay:          5 * time.Second,
		MaxStaleness:           2 * time.Minute,
		Audit:                  DefaultAuditOptions(),
		NativeParams:           DefaultNativeParamsOptions(),
	}
}

// AddFlags registers the serve flags.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	o.Options.AddFlags(fs)
	fs.BoolVar(&o.LogDecisions, "log-decisions", o.LogDecisions, "log each denial and each injection once at info level: kind, namespace, name or generateName, class and reasons (never the Pod spec)")
	fs.IntVar(&o.Port, "port", o.Port, "TLS port of the admission webhook")
	fs.StringVar(&o.BindAddress, "bind-address", o.BindAddress, "address the webhook listens on (empty: all interfaces)")
	fs.StringVar(&o.CertDir, "cert-dir", o.CertDir, "directory holding tls.crt and tls.key (reloaded when they change)")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, "address of the Prometheus /metrics endpoint (\"0\" disables it)")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress, "address of /healthz and /readyz")
	o.Kubeconfig.AddFlags(fs)
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", o.ShutdownTimeout, "how long in-flight admissions may finish after SIGTERM")
	fs.DurationVar(&o.ShutdownDelay, "shutdown-delay", o.ShutdownDelay, "how long to keep serving after SIGTERM with /readyz failing, so traffic moves to other replicas first")
	fs.DurationVar(&o.MaxStaleness, "max-staleness", o.MaxStaleness, "how long the API server may be unreachable before /readyz fails (decisions continue from the cache meanwhile)")
	o.Certs.AddFlags(fs)
	o.FailurePolicy.AddFlags(fs)
	o.Audit.AddFlags(fs)
	o.NativeParams.AddFlags(fs)
}

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	if o.Port <= 0 || o.Port > 65535 {
		errs = append(errs, fmt.Errorf("--port %d: want 1-65535", o.Port))
	}
	if err := o.Options.Validate(); err != nil {
		errs = append(errs, err)
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
	if err := o.Audit.Validate(); err != nil {
		errs = append(errs, err)
	}
	if fp := o.failurePolicy(); fp.Policy != "" {
		if len(o.ClusterFiles) > 0 {
			errs = append(errs, errors.New("--failure-policy needs an API server; it cannot be combined with --cluster"))
		}
		if err := fp.Validate(); err != nil {
			errs = append(errs, err)
		} else if _, err := readyzURL(o.HealthProbeBindAddress); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
