package certs

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Defaults of Options. Zero durations and empty SecretName, ServiceName and
// ClusterDomain in an Options also mean these values.
const (
	DefaultSecretName               = "runtimeguard-tls"
	DefaultServiceName              = "runtimeguard"
	DefaultWebhookConfigurationName = "runtimeguard"
	DefaultClusterDomain            = "cluster.local"
	// DefaultCAValidity is 5 years. cert-controller uses 10; we can afford
	// less because CA rollover here is automatic and gap-free (the new CA is
	// published in the caBundle before anything it signs is served), so a
	// shorter life costs nothing operationally while it bounds the use of a
	// CA key leaked from the Secret, and it means the rollover path actually
	// runs during the lifetime of a typical installation (first after ~3y4m)
	// instead of being dead code until year seven.
	DefaultCAValidity = 5 * 365 * 24 * time.Hour
	// DefaultCertValidity is 1 year; the serving certificate is renewed
	// with a third of its life left (~every 8 months), which certwatcher
	// picks up without a restart.
	DefaultCertValidity = 365 * 24 * time.Hour
	// DefaultCARolloverDelay is how long a new CA sits in the caBundle
	// (next to the old one) before serving certificates signed by it are
	// issued: time for every API server instance to observe the new
	// caBundle through its informer. Seconds would do; minutes are free
	// because rollover starts years before the old CA expires.
	DefaultCARolloverDelay = 10 * time.Minute
	// DefaultResyncInterval bounds how long drift (e.g. a caBundle changed
	// while the watch was down) can go unnoticed; changes seen by the
	// watches are handled immediately.
	DefaultResyncInterval = 10 * time.Minute

	// MinValidity is the shortest CAValidity/CertValidity accepted. Short
	// values are for tests; renewal needs a few seconds of slack.
	MinValidity = 30 * time.Second
)

// Options configures self-managed serving certificates (Setup). Each field's
// comment gives its flag and default.
type Options struct {
	// Enabled turns the self-managed mode on. --self-signed-certs (false).
	// Without it Setup does nothing and cert-manager is expected to provide
	// the certificate and caBundle.
	Enabled bool
	// SecretName is the Secret, in Namespace, holding the CA, the serving
	// certificate and the CA bundle. Every replica uses it as the single
	// source of truth. --cert-secret-name ("runtimeguard-tls").
	SecretName string
	// ServiceName is the webhook Service. The serving certificate is valid
	// for <svc>, <svc>.<ns>, <svc>.<ns>.svc and <svc>.<ns>.svc.<ClusterDomain>.
	// --service-name ("runtimeguard").
	ServiceName string
	// Namespace is where the Secret and Service live. Set by the caller from
	// --namespace; not a flag here. Required.
	Namespace string
	// MutatingWebhookConfiguration is the name of the
	// MutatingWebhookConfiguration whose webhooks' caBundle is kept current;
	// empty means none is managed.
	// --mutating-webhook-configuration ("runtimeguard").
	MutatingWebhookConfiguration string
	// ValidatingWebhookConfiguration is the same for the
	// ValidatingWebhookConfiguration.
	// --validating-webhook-configuration ("runtimeguard").
	ValidatingWebhookConfiguration string
	// CAValidity is the lifetime of a generated CA. --ca-validity (5y =
	// 43800h; see DefaultCAValidity for why).
	CAValidity time.Duration
	// CertValidity is the lifetime of a serving certificate, clamped to the
	// CA's remaining life. Must not exceed CAValidity. --cert-validity (1y =
	// 8760h; tests use e.g. 45s).
	CertValidity time.Duration
	// CARolloverDelay is how long a new CA is published in the caBundle
	// before it signs the served certificate. At most CAValidity/6.
	// --ca-rollover-delay (10m).
	CARolloverDelay time.Duration
	// ResyncInterval is the longest time between two full checks when no
	// watch event arrives. --cert-resync-interval (10m).
	ResyncInterval time.Duration
	// ClusterDomain is the cluster's DNS domain. --cluster-domain
	// ("cluster.local").
	ClusterDomain string
	// ExtraSANs are additional DNS names or IP addresses for the serving
	// certificate (e.g. for a hostNetwork webhook reached by IP).
	// --cert-extra-sans (none).
	ExtraSANs []string
}

// AddFlags registers the flags of the self-managed mode on fs, with the
// defaults above.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.Enabled, "self-signed-certs", false,
		"Manage the webhook's own CA and serving certificate in a Secret and keep the webhook configurations' caBundle current (use when cert-manager is not installed).")
	fs.StringVar(&o.SecretName, "cert-secret-name", DefaultSecretName,
		"Secret (in --namespace) holding the self-managed CA and serving certificate.")
	fs.StringVar(&o.ServiceName, "service-name", DefaultServiceName,
		"Service of the webhook; the serving certificate covers <svc>, <svc>.<ns>, <svc>.<ns>.svc and <svc>.<ns>.svc.<cluster-domain>.")
	fs.StringVar(&o.MutatingWebhookConfiguration, "mutating-webhook-configuration", DefaultWebhookConfigurationName,
		"MutatingWebhookConfiguration whose caBundle is kept current by --self-signed-certs and whose failurePolicy --failure-policy sets (empty: none).")
	fs.StringVar(&o.ValidatingWebhookConfiguration, "validating-webhook-configuration", DefaultWebhookConfigurationName,
		"ValidatingWebhookConfiguration whose caBundle is kept current by --self-signed-certs and whose failurePolicy --failure-policy sets (empty: none).")
	fs.DurationVar(&o.CAValidity, "ca-validity", DefaultCAValidity,
		"Lifetime of the self-managed CA; a new CA is rolled out when a third of it remains.")
	fs.DurationVar(&o.CertValidity, "cert-validity", DefaultCertValidity,
		"Lifetime of the self-managed serving certificate; it is renewed when a third of it remains.")
	fs.DurationVar(&o.CARolloverDelay, "ca-rollover-delay", DefaultCARolloverDelay,
		"How long a new CA is trusted in the caBundle before certificates signed by it are served.")
	fs.DurationVar(&o.ResyncInterval, "cert-resync-interval", DefaultResyncInterval,
		"Maximum time between two checks of the Secret and caBundle when no change is observed.")
	fs.StringVar(&o.ClusterDomain, "cluster-domain", DefaultClusterDomain,
		"Cluster DNS domain used in the serving certificate's names.")
	fs.StringSliceVar(&o.ExtraSANs, "cert-extra-sans", nil,
		"Additional DNS names or IP addresses for the self-managed serving certificate.")
}

// withDefaults returns o with zero values replaced by the defaults. The
// webhook configuration names are not defaulted: empty means "not managed".
func (o Options) withDefaults() Options {
	if o.SecretName == "" {
		o.SecretName = DefaultSecretName
	}
	if o.ServiceName == "" {
		o.ServiceName = DefaultServiceName
	}
	if o.ClusterDomain == "" {
		o.ClusterDomain = DefaultClusterDomain
	}
	if o.CAValidity == 0 {
		o.CAValidity = DefaultCAValidity
	}
	if o.CertValidity == 0 {
		o.CertValidity = DefaultCertValidity
	}
	if o.CARolloverDelay == 0 {
		o.CARolloverDelay = DefaultCARolloverDelay
	}
	if o.ResyncInterval == 0 {
		o.ResyncInterval = DefaultResyncInterval
	}
	return o
}

// Validate reports configuration errors. With Enabled false nothing else is
// checked, because nothing else is used. Zero values count as defaults.
func (o *Options) Validate() error {
	if !o.Enabled {
		return nil
	}
	c := o.withDefaults()
	var errs []error
	if c.Namespace == "" {
		errs = append(errs, errors.New("namespace is required for --self-signed-certs"))
	} else if msgs := validation.IsDNS1123Label(c.Namespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("namespace %q: %v", c.Namespace, msgs))
	}
	if msgs := validation.IsDNS1123Subdomain(c.SecretName); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--cert-secret-name %q: %v", c.SecretName, msgs))
	}
	if msgs := validation.IsDNS1035Label(c.ServiceName); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--service-name %q: %v", c.ServiceName, msgs))
	}
	if msgs := validation.IsDNS1123Subdomain(c.ClusterDomain); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--cluster-domain %q: %v", c.ClusterDomain, msgs))
	}
	if c.MutatingWebhookConfiguration == "" && c.ValidatingWebhookConfiguration == "" {
		errs = append(errs, errors.New("--self-signed-certs needs at least one of --mutating-webhook-configuration and --validating-webhook-configuration: otherwise nothing trusts the generated CA"))
	}
	for flag, name := range map[string]string{
		"--mutating-webhook-configuration":   c.MutatingWebhookConfiguration,
		"--validating-webhook-configuration": c.ValidatingWebhookConfiguration,
	} {
		if name == "" {
			continue
		}
		if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("%s %q: %v", flag, name, msgs))
		}
	}
	if c.CertValidity < MinValidity {
		errs = append(errs, fmt.Errorf("--cert-validity %s is shorter than the minimum %s", c.CertValidity, MinValidity))
	}
	if c.CAValidity < MinValidity {
		errs = append(errs, fmt.Errorf("--ca-validity %s is shorter than the minimum %s", c.CAValidity, MinValidity))
	}
	if c.CertValidity > c.CAValidity {
		errs = append(errs, fmt.Errorf("--cert-validity %s exceeds --ca-validity %s", c.CertValidity, c.CAValidity))
	}
	// Rollover starts with a third of the CA's life left; half of that
	// window must remain after the delay for retries.
	if c.CARolloverDelay < 0 || c.CARolloverDelay > c.CAValidity/6 {
		errs = append(errs, fmt.Errorf("--ca-rollover-delay %s must be between 0 and --ca-validity/6 (%s)", c.CARolloverDelay, c.CAValidity/6))
	}
	if c.ResyncInterval < time.Second {
		errs = append(errs, fmt.Errorf("--cert-resync-interval %s is shorter than 1s", c.ResyncInterval))
	}
	for _, san := range c.ExtraSANs {
		if net.ParseIP(san) != nil {
			continue
		}
		if msgs := validation.IsDNS1123Subdomain(san); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--cert-extra-sans %q is neither an IP address nor a DNS name: %v", san, msgs))
		}
	}
	return errors.Join(errs...)
}

// hosts lists the names the serving certificate must be valid for.
func (o Options) hosts() []string {
	svc, ns := o.ServiceName, o.Namespace
	h := []string{
		svc + "." + ns + ".svc", // what the API server dials for a service clientConfig; also the CN
		svc,
		svc + "." + ns,
		svc + "." + ns + ".svc." + o.ClusterDomain,
	}
	return append(h, o.ExtraSANs...)
}
