package certs

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestOptionsFlagsDefaults(t *testing.T) {
	var o Options
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	want := Options{
		SecretName:                     "runtimeguard-tls",
		ServiceName:                    "runtimeguard",
		MutatingWebhookConfiguration:   "runtimeguard",
		ValidatingWebhookConfiguration: "runtimeguard",
		CAValidity:                     5 * 365 * 24 * time.Hour,
		CertValidity:                   365 * 24 * time.Hour,
		CARolloverDelay:                10 * time.Minute,
		ResyncInterval:                 10 * time.Minute,
		ClusterDomain:                  "cluster.local",
	}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", o, want)
	}

	if err := fs.Parse([]string{"--self-signed-certs", "--cert-secret-name=s", "--service-name=svc",
		"--mutating-webhook-configuration=", "--validating-webhook-configuration=v", "--ca-validity=2h",
		"--cert-validity=1m", "--ca-rollover-delay=5s", "--cert-resync-interval=30s", "--cluster-domain=example.org",
		"--cert-extra-sans=127.0.0.1,localhost"}); err != nil {
		t.Fatal(err)
	}
	want = Options{Enabled: true, SecretName: "s", ServiceName: "svc", ValidatingWebhookConfiguration: "v",
		CAValidity: 2 * time.Hour, CertValidity: time.Minute, CARolloverDelay: 5 * time.Second,
		ResyncInterval: 30 * time.Second, ClusterDomain: "example.org", ExtraSANs: []string{"127.0.0.1", "localhost"}}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("parsed:\n got %+v\nwant %+v", o, want)
	}
	o.Namespace = "ns"
	if err := o.Validate(); err != nil {
		t.Errorf("valid options rejected: %v", err)
	}
	if got := o.withDefaults().hosts(); !reflect.DeepEqual(got, []string{"svc.ns.svc", "svc", "svc.ns", "svc.ns.svc.example.org", "127.0.0.1", "localhost"}) {
		t.Errorf("hosts = %v", got)
	}
}

func TestOptionsValidate(t *testing.T) {
	valid := func() Options {
		return Options{Enabled: true, Namespace: "rg", MutatingWebhookConfiguration: "rg", ValidatingWebhookConfiguration: "rg"}
	}
	if o := valid(); o.Validate() != nil {
		t.Fatalf("zero values must mean defaults: %v", o.Validate())
	}
	if o := (Options{CertValidity: -1}); o.Validate() != nil {
		t.Error("disabled options must not be validated")
	}
	cases := map[string]struct {
		mut  func(*Options)
		want string
	}{
		"no namespace":        {func(o *Options) { o.Namespace = "" }, "namespace is required"},
		"bad secret name":     {func(o *Options) { o.SecretName = "Bad_Name" }, "--cert-secret-name"},
		"bad service name":    {func(o *Options) { o.ServiceName = "1svc" }, "--service-name"},
		"no webhook configs":  {func(o *Options) { o.MutatingWebhookConfiguration, o.ValidatingWebhookConfiguration = "", "" }, "at least one"},
		"cert longer than CA": {func(o *Options) { o.CAValidity, o.CertValidity = time.Hour, 2*time.Hour }, "exceeds --ca-validity"},
		"cert too short":      {func(o *Options) { o.CertValidity = time.Second }, "--cert-validity"},
		"rollover delay large": {func(o *Options) {
			o.CAValidity, o.CertValidity, o.CARolloverDelay = time.Hour, time.Minute, 11*time.Minute
		}, "--ca-rollover-delay"},
		"bad extra SAN": {func(o *Options) { o.ExtraSANs = []string{"not a name"} }, "--cert-extra-sans"},
	}
	for name, c := range cases {
		o := valid()
		c.mut(&o)
		err := o.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, c.want)
		}
	}
}
