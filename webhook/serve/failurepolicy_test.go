package serve

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/runtimeguard/runtimeguard/certs"
	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/policycheck"
)

type keeperFixture struct {
	client  client.Client
	keeper  *failurePolicyKeeper
	trusted []byte // a caBundle that trusts the served certificate
	other   []byte // one that does not
}

// newKeeperFixture serves a dev certificate and holds configurations named "rg" whose
// webhooks carry the given bundles ("t": trusted, "o": other CA) and failurePolicy Ignore.
func newKeeperFixture(t *testing.T, want string, mutating, validating string) *keeperFixture {
	t.Helper()
	dev, err := certs.WriteDevCerts(t.TempDir(), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := certs.WriteDevCerts(t.TempDir(), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	serving := newServingCert(prometheus.NewRegistry(), logr.Discard())
	pair, err := tls.X509KeyPair(dev.CertPEM, dev.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := serving.set(pair); err != nil {
		t.Fatal(err)
	}
	bundle := func(c rune) []byte {
		if c == 't' {
			return dev.CAPEM
		}
		return other.CAPEM
	}
	m := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "rg"}}
	for i, c := range mutating {
		m.Webhooks = append(m.Webhooks, admissionregistrationv1.MutatingWebhook{
			Name: string(rune('a'+i)) + ".mutate.example", ClientConfig: admissionregistrationv1.WebhookClientConfig{CABundle: bundle(c)},
			FailurePolicy: ptr.To(admissionregistrationv1.Ignore)})
	}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "rg"}}
	for i, c := range validating {
		v.Webhooks = append(v.Webhooks, admissionregistrationv1.ValidatingWebhook{
			Name: string(rune('a'+i)) + ".validate.example", ClientConfig: admissionregistrationv1.WebhookClientConfig{CABundle: bundle(c)},
			FailurePolicy: ptr.To(admissionregistrationv1.Ignore)})
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(m, v).Build()
	return &keeperFixture{
		client:  c,
		trusted: dev.CAPEM,
		other:   other.CAPEM,
		keeper: &failurePolicyKeeper{
			opts:    FailurePolicyOptions{Policy: want, Mutating: "rg", Validating: "rg", Interval: time.Hour},
			reader:  c,
			writer:  c,
			serving: serving,
			log:     logr.Discard(),
		},
	}
}

// policies returns the failurePolicy of every webhook, mutating first.
func (f *keeperFixture) policies(t *testing.T) []string {
	t.Helper()
	var out []string
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := f.client.Get(context.Background(), client.ObjectKey{Name: "rg"}, m); err != nil {
		t.Fatal(err)
	}
	if err := f.client.Get(context.Background(), client.ObjectKey{Name: "rg"}, v); err != nil {
		t.Fatal(err)
	}
	for _, w := range m.Webhooks {
		out = append(out, string(*w.FailurePolicy))
	}
	for _, w := range v.Webhooks {
		out = append(out, string(*w.FailurePolicy))
	}
	return out
}

func TestFailurePolicyIsSetOnlyOnWebhooksWhoseCABundleTrustsTheServedCertificate(t *testing.T) {
	for _, tc := range []struct {
		behaviour            string
		want                 string
		mutating, validating string
		wantDone             bool
		wantPolicies         string
	}{
		{"both configurations trust the certificate: both fail closed", "Fail", "t", "t", true, "Fail Fail"},
		{"no caBundle trusts it yet (not injected): both stay open", "Fail", "o", "o", false, "Ignore Ignore"},
		{"only the trusted webhook of a configuration fails closed", "Fail", "to", "t", false, "Fail Ignore Fail"},
		{"Ignore asked for stays Ignore", "Ignore", "t", "t", true, "Ignore Ignore"},
	} {
		t.Run(tc.behaviour, func(t *testing.T) {
			f := newKeeperFixture(t, tc.want, tc.mutating, tc.validating)
			done, err := f.keeper.sync(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if done != tc.wantDone {
				t.Errorf("done = %v, want %v", done, tc.wantDone)
			}
			if got := strings.Join(f.policies(t), " "); got != tc.wantPolicies {
				t.Errorf("failurePolicies = %s, want %s", got, tc.wantPolicies)
			}
		})
	}
}

func TestFailurePolicySyncWritesNothingWhenAlreadySet(t *testing.T) {
	f := newKeeperFixture(t, "Fail", "t", "t")
	ctx := context.Background()
	if _, err := f.keeper.sync(ctx); err != nil {
		t.Fatal(err)
	}
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := f.client.Get(ctx, client.ObjectKey{Name: "rg"}, m); err != nil {
		t.Fatal(err)
	}
	before := m.ResourceVersion
	if done, err := f.keeper.sync(ctx); err != nil || !done {
		t.Fatalf("second sync: done %v, err %v", done, err)
	}
	if err := f.client.Get(ctx, client.ObjectKey{Name: "rg"}, m); err != nil {
		t.Fatal(err)
	}
	if m.ResourceVersion != before {
		t.Errorf("resourceVersion %s -> %s: a sync with nothing to change wrote", before, m.ResourceVersion)
	}
}

func TestFailurePolicySyncNamesAMissingConfiguration(t *testing.T) {
	f := newKeeperFixture(t, "Fail", "t", "t")
	f.keeper.opts.Validating = "absent"
	_, err := f.keeper.sync(context.Background())
	if err == nil || !strings.Contains(err.Error(), "ValidatingWebhookConfiguration absent") {
		t.Errorf("err = %v, want one naming ValidatingWebhookConfiguration absent", err)
	}
}

// The keeper does nothing while /readyz fails (however often it asks), then fails closed.
func TestFailurePolicyKeeperWaitsForReadyz(t *testing.T) {
	f := newKeeperFixture(t, "Fail", "t", "t")
	var ready atomic.Bool
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		asked.Add(1)
		if !ready.Load() {
			http.Error(w, "[-]cluster-view failed", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	f.keeper.readyz = srv.URL + "/readyz"
	f.keeper.poll = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- f.keeper.Start(ctx) }()

	waitFor(t, "the keeper to ask /readyz 5 times", func() bool { return asked.Load() >= 5 })
	if got := strings.Join(f.policies(t), " "); got != "Ignore Ignore" {
		t.Fatalf("failurePolicies while not ready = %s, want Ignore Ignore", got)
	}
	ready.Store(true)
	waitFor(t, "both webhooks to fail closed", func() bool { return strings.Join(f.policies(t), " ") == "Fail Fail" })
	cancel()
	if err := <-stopped; err != nil {
		t.Errorf("Start returned %v after cancel", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition
	}
}

func TestFailurePolicyOptionsAreValidated(t *testing.T) {
	for _, tc := range []struct {
		behaviour string
		edit      func(*Options)
		want      string
	}{
		{"empty leaves the configurations alone", func(*Options) {}, ""},
		{"Fail with the default names and probe is valid", func(o *Options) { o.FailurePolicy.Policy = "Fail" }, ""},
		{"an unknown policy is refused", func(o *Options) { o.FailurePolicy.Policy = "Sometimes" }, `--failure-policy "Sometimes": want Fail or Ignore`},
		{"no configuration to set is refused", func(o *Options) {
			o.FailurePolicy.Policy = "Fail"
			o.Certs.MutatingWebhookConfiguration, o.Certs.ValidatingWebhookConfiguration = "", ""
		}, "needs --mutating-webhook-configuration or --validating-webhook-configuration"},
		{"no health probe to wait on is refused", func(o *Options) { o.FailurePolicy.Policy = "Fail"; o.HealthProbeBindAddress = "0" }, "needs the health probe listener"},
		{"a sub-second interval is refused", func(o *Options) { o.FailurePolicy.Policy = "Fail"; o.FailurePolicy.Interval = time.Millisecond }, "--failure-policy-check-interval 1ms"},
	} {
		t.Run(tc.behaviour, func(t *testing.T) {
			o := DefaultOptions()
			o.Certs.MutatingWebhookConfiguration, o.Certs.ValidatingWebhookConfiguration = "rg", "rg"
			tc.edit(&o)
			err := o.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestReadyzURL(t *testing.T) {
	for addr, want := range map[string]string{
		":8081":          "http://127.0.0.1:8081/readyz",
		"0.0.0.0:8081":   "http://127.0.0.1:8081/readyz",
		"[::]:8081":      "http://[::1]:8081/readyz",
		"10.0.0.5:18081": "http://10.0.0.5:18081/readyz",
	} {
		if got, err := readyzURL(addr); err != nil || got != want {
			t.Errorf("readyzURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	for _, addr := range []string{"0", "", ":0"} {
		if _, err := readyzURL(addr); err == nil {
			t.Errorf("readyzURL(%q) gave no error", addr)
		}
	}
}

// The policy ConfigMap check keeps the chart's failurePolicy: a replica NotReady on a broken
// policy must still let the fix through. The Pod webhooks are the keeper's.
func TestTheKeeperLeavesThePolicyCheckAlone(t *testing.T) {
	path := func(p string) admissionregistrationv1.WebhookClientConfig {
		return admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Name: "rg", Namespace: "ns", Path: &p}}
	}
	url := func(u string) admissionregistrationv1.WebhookClientConfig {
		return admissionregistrationv1.WebhookClientConfig{URL: &u}
	}
	for _, tc := range []struct {
		name string
		cfg  admissionregistrationv1.WebhookClientConfig
		want bool
	}{
		{"policy check by service", path(policycheck.Path), true},
		{"policy check by URL", url("https://127.0.0.1:9443" + policycheck.Path), true},
		{"mutating Pod webhook", path(webhook.MutatePath), false},
		{"validating Pod webhook by URL", url("https://127.0.0.1:9443" + webhook.ValidatePath), false},
	} {
		if got := keepsItsOwnPolicy(tc.cfg); got != tc.want {
			t.Errorf("%s: keepsItsOwnPolicy=%v, want %v", tc.name, got, tc.want)
		}
	}
}
