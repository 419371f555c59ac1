package harness

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/runtimeguard/runtimeguard/e2e/tools"
)

func TestServeArgsFollowTheChart(t *testing.T) {
	ctx := tools.WithResolver(context.Background(), tools.New(tools.Unit, tools.ForTest(t, "helm")))
	for _, tc := range []struct {
		name string
		set  []string
		opts ServeArgsOptions
		want []string
	}{
		{
			name: "defaults (cert-manager)",
			want: []string{"--webhook-namespace=runtimeguard-system", "--enforcement=enforce", "--workload-review=enforce", "--require-advertised-handlers=false",
				"--eval-timeout=1s", "--zap-log-level=info", "--log-decisions=true", "--mutating-webhook-configuration=runtimeguard",
				"--validating-webhook-configuration=runtimeguard", "--failure-policy=Fail"},
		},
		{
			name: "self-signed with policies",
			set: []string{"--set", "certManager.enabled=false", "--set", "extraServingSANs={127.0.0.1,webhook.example}",
				"--set", "selfSignedCerts.certValidity=2h", "--set", "policies.existingConfigMap=p"},
			opts: ServeArgsOptions{PolicyDir: "/tmp/p"},
			want: []string{"--webhook-namespace=runtimeguard-system", "--enforcement=enforce", "--workload-review=enforce", "--require-advertised-handlers=false",
				"--eval-timeout=1s", "--zap-log-level=info", "--log-decisions=true", "--policies=/tmp/p",
				"--mutating-webhook-configuration=runtimeguard", "--validating-webhook-configuration=runtimeguard",
				"--failure-policy=Fail", "--self-signed-certs", "--cert-secret-name=runtimeguard-tls", "--service-name=runtimeguard",
				"--cert-validity=2h", "--ca-validity=43800h", "--cert-extra-sans=127.0.0.1,webhook.example",
				"--cluster-domain=cluster.local"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := RenderChart(ctx, tc.set...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.ServeArgs(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ServeArgs =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}

	r, err := RenderChart(ctx, "--set", "policies.existingConfigMap=p")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ServeArgs(ServeArgsOptions{}); err == nil || !strings.Contains(err.Error(), "PolicyDir") {
		t.Errorf("policies mounted without a local dir: err = %v, want one naming PolicyDir", err)
	}
}

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"POD_NAMESPACE": "ns", "A": "x"}
	for in, want := range map[string]string{
		"--namespace=$(POD_NAMESPACE)": "--namespace=ns",
		"$(A)-$(A)":                    "x-x",
		"$$(A)":                        "$(A)",
		"plain":                        "plain",
	} {
		if got, err := expandEnv(in, env); err != nil || got != want {
			t.Errorf("expandEnv(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := expandEnv("$(MISSING)", env); err == nil {
		t.Error("expandEnv($(MISSING)) gave no error")
	}
}
