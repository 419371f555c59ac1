package serve

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/runtimeguard/runtimeguard/webhook/policycheck"
	"github.com/spf13/pflag"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// FailurePolicyOptions configure the replica that takes the webhooks from failing open to
// failing closed. The chart installs both webhook configurations with failurePolicy Ignore
// (a configuration that failed closed before any replica could answer would reject every
// Pod CREATE outside the exempt namespaces); once a replica is ready and the configurations'
// caBundle trusts the certificate it serves, it sets the failurePolicy they should have.
type FailurePolicyOptions struct {
	// Policy is the failurePolicy to set, Fail or Ignore; empty leaves the configurations
	// alone (--failure-policy, "").
	Policy string
	// Mutating and Validating name the two configurations (--mutating-webhook-configuration,
	// --validating-webhook-configuration; shared with --self-signed-certs, "runtimeguard").
	Mutating, Validating string
	// Interval is how often the configurations are checked again once set, so that a
	// re-applied manifest (GitOps, kubectl apply) is corrected (--failure-policy-check-interval, 30s).
	Interval time.Duration
}

// DefaultFailurePolicyCheckInterval is FailurePolicyOptions.Interval's default: two GETs per
// replica every 30 s cost nothing, and a re-applied manifest is corrected within that time.
const DefaultFailurePolicyCheckInterval = 30 * time.Second

// AddFlags registers --failure-policy and --failure-policy-check-interval; the configuration
// names are certs.Options' flags.
func (o *FailurePolicyOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Policy, "failure-policy", o.Policy,
		"failurePolicy (Fail or Ignore) to set on both webhook configurations once this replica is ready and their caBundle trusts its certificate (empty: leave them alone)")
	fs.DurationVar(&o.Interval, "failure-policy-check-interval", DefaultFailurePolicyCheckInterval,
		"how often --failure-policy is checked again, correcting a re-applied manifest")
}

// Validate checks the options.
func (o *FailurePolicyOptions) Validate() error {
	switch admissionregistrationv1.FailurePolicyType(o.Policy) {
	case "":
		return nil
	case admissionregistrationv1.Fail, admissionregistrationv1.Ignore:
	default:
		return fmt.Errorf("--failure-policy %q: want Fail or Ignore", o.Policy)
	}
	if o.Mutating == "" && o.Validating == "" {
		return fmt.Errorf("--failure-policy=%s needs --mutating-webhook-configuration or --validating-webhook-configuration", o.Policy)
	}
	for flag, name := range map[string]string{"--mutating-webhook-configuration": o.Mutating, "--validating-webhook-configuration": o.Validating} {
		if msgs := validation.IsDNS1123Subdomain(name); name != "" && len(msgs) > 0 {
			return fmt.Errorf("%s %q: %v", flag, name, msgs)
		}
	}
	if o.Interval < time.Second {
		return fmt.Errorf("--failure-policy-check-interval %s: want 1s or more", o.Interval)
	}
	return nil
}

// failurePolicyKeeper sets FailurePolicyOptions.Policy on every webhook of the two
// configurations whose caBundle trusts the served certificate, once ready() holds. Only get
// and update, by name: the RBAC grants nothing else (no list or watch), hence the polling.
type failurePolicyKeeper struct {
	opts    FailurePolicyOptions
	reader  client.Reader // uncached: an informer would need list and watch
	writer  client.Writer
	serving *servingCert
	// readyz is this replica's own /readyz URL: "ready" means what the kubelet's probe
	// (and so the Service's endpoints) sees, every check included.
	readyz string
	log    logr.Logger
	// poll is how often ready() is checked before the first pass (default 200ms).
	poll time.Duration
}

// NeedLeaderElection is false: every replica keeps the policy (they all want the same).
func (k *failurePolicyKeeper) NeedLeaderElection() bool { return false }

// Start waits until the replica is ready, then keeps the configurations' failurePolicy.
func (k *failurePolicyKeeper) Start(ctx context.Context) error {
	if k.poll == 0 {
		k.poll = 200 * time.Millisecond
	}
	wait := k.poll
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		if err := k.ready(ctx); err != nil {
			k.log.V(1).Info("not ready; failurePolicy left as is", "reason", err.Error())
			wait = k.poll
			continue
		}
		done, err := k.sync(ctx)
		switch {
		case apierrors.IsConflict(err):
			// Another writer (the other replicas, cainjector, the self-signed rotator)
			// updated the configuration since the read: read again.
			k.log.V(1).Info("webhook configuration changed meanwhile; retrying", "reason", err.Error())
			wait = k.poll
		case err != nil || !done:
			if err != nil {
				k.log.Error(err, "setting the webhook configurations' failurePolicy", "failurePolicy", k.opts.Policy)
			}
			// Not done: a caBundle that does not trust this certificate yet (cainjector or
			// the self-signed rotator has not injected it). Look again soon, then less often,
			// so that a caBundle that never will costs little.
			wait = min(max(2*wait, k.poll), k.opts.Interval)
		default:
			wait = k.opts.Interval
		}
	}
}

// ready asks this replica's /readyz.
func (k *failurePolicyKeeper) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.readyz, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/readyz answered %s", resp.Status)
	}
	return nil
}

// readyzURL is the local URL of the health probe listener bound at addr (":8081",
// "0.0.0.0:8081", "127.0.0.1:8081", "[::]:8081").
func readyzURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || port == "0" {
		return "", fmt.Errorf("--failure-policy needs the health probe listener (--health-probe-bind-address %q): it waits for /readyz", addr)
	}
	switch ip := net.ParseIP(host); {
	case host == "" || (ip != nil && ip.To4() != nil && ip.IsUnspecified()):
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz", nil
}

// addFailurePolicyKeeper adds the keeper to mgr when --failure-policy is set.
func addFailurePolicyKeeper(mgr manager.Manager, o Options, serving *servingCert, log logr.Logger) error {
	fp := o.failurePolicy()
	if fp.Policy == "" {
		return nil
	}
	url, err := readyzURL(o.HealthProbeBindAddress)
	if err != nil {
		return err
	}
	return mgr.Add(&failurePolicyKeeper{opts: fp, reader: mgr.GetAPIReader(), writer: mgr.GetClient(), serving: serving, readyz: url, log: log})
}

// failurePolicy returns the failure-policy options with the configuration names of the
// shared --mutating/--validating-webhook-configuration flags.
func (o Options) failurePolicy() FailurePolicyOptions {
	fp := o.FailurePolicy
	fp.Mutating, fp.Validating = o.Certs.MutatingWebhookConfiguration, o.Certs.ValidatingWebhookConfiguration
	if fp.Interval == 0 {
		fp.Interval = DefaultFailurePolicyCheckInterval
	}
	return fp
}

// sync sets the policy on every webhook whose caBundle trusts the served certificate. done is
// false while some webhook's does not.
func (k *failurePolicyKeeper) sync(ctx context.Context) (done bool, err error) {
	want := admissionregistrationv1.FailurePolicyType(k.opts.Policy)
	done = true
	if name := k.opts.Mutating; name != "" {
		m := &admissionregistrationv1.MutatingWebhookConfiguration{}
		if err := k.reader.Get(ctx, client.ObjectKey{Name: name}, m); err != nil {
			return false, fmt.Errorf("reading MutatingWebhookConfiguration %s: %w", name, err)
		}
		changed := false
		for i := range m.Webhooks {
			w := &m.Webhooks[i]
			if keepsItsOwnPolicy(w.ClientConfig) {
				continue
			}
			d, c := k.set(w.Name, w.ClientConfig.CABundle, &w.FailurePolicy, want)
			done, changed = done && d, changed || c
		}
		if changed {
			if err := k.writer.Update(ctx, m); err != nil {
				return false, fmt.Errorf("updating MutatingWebhookConfiguration %s: %w", name, err)
			}
			k.log.Info("failurePolicy set", "kind", "MutatingWebhookConfiguration", "name", name, "failurePolicy", want)
		}
	}
	if name := k.opts.Validating; name != "" {
		v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		if err := k.reader.Get(ctx, client.ObjectKey{Name: name}, v); err != nil {
			return false, fmt.Errorf("reading ValidatingWebhookConfiguration %s: %w", name, err)
		}
		changed := false
		for i := range v.Webhooks {
			w := &v.Webhooks[i]
			if keepsItsOwnPolicy(w.ClientConfig) {
				continue
			}
			d, c := k.set(w.Name, w.ClientConfig.CABundle, &w.FailurePolicy, want)
			done, changed = done && d, changed || c
		}
		if changed {
			if err := k.writer.Update(ctx, v); err != nil {
				return false, fmt.Errorf("updating ValidatingWebhookConfiguration %s: %w", name, err)
			}
			k.log.Info("failurePolicy set", "kind", "ValidatingWebhookConfiguration", "name", name, "failurePolicy", want)
		}
	}
	return done, nil
}

// keepsItsOwnPolicy says whether a webhook is the policy ConfigMap check, which keeps the
// failurePolicy the chart gave it (Ignore by default): a replica NotReady on a broken policy
// must still let the fix be stored.
func keepsItsOwnPolicy(c admissionregistrationv1.WebhookClientConfig) bool {
	if c.Service != nil && c.Service.Path != nil {
		return *c.Service.Path == policycheck.Path
	}
	return c.URL != nil && strings.HasSuffix(*c.URL, policycheck.Path)
}

// set moves one webhook to want when its caBundle trusts the served certificate (a replica
// whose certificate the API server would refuse must not make the webhook fail closed).
func (k *failurePolicyKeeper) set(webhook string, caBundle []byte, policy **admissionregistrationv1.FailurePolicyType, want admissionregistrationv1.FailurePolicyType) (done, changed bool) {
	if *policy != nil && **policy == want {
		return true, false
	}
	if !k.serving.trustedBy(caBundle) {
		k.log.V(1).Info("caBundle does not trust the served certificate yet; failurePolicy left as is", "webhook", webhook)
		return false, false
	}
	*policy = &want
	return true, true
}
