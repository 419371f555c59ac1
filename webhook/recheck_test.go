package webhook

import (
	"context"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestRecheckDecidesExistingObjectsAsEnforceWould(t *testing.T) {
	p := newPipeline(t, setup{})
	deployment := metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	for _, tc := range []struct {
		name        string
		kind        metav1.GroupVersionKind
		namespace   string
		raw         string
		exempt      string
		class       string
		reasons     []string
		denial      string
		enforcement Enforcement
	}{{
		name: "a pod without class in an untrusted namespace is missing its class", kind: podKind, namespace: "tenant-a",
		raw:     `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}`,
		reasons: []string{ReasonMissingClass}, denial: `spec.runtimeClassName is not set; set it to "gvisor"`, enforcement: Enforce,
	}, {
		name: "a warn-mode namespace's pod is reported, with the namespace's mode", kind: podKind, namespace: "tenant-b",
		raw:     `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}`,
		reasons: []string{ReasonMissingClass}, denial: `spec.runtimeClassName is not set`, enforcement: Warn,
	}, {
		name: "a financial pod naming gvisor has a weak class", kind: podKind, namespace: "payments",
		raw:   `{"metadata":{"name":"p"},"spec":{"runtimeClassName":"gvisor","containers":[{"name":"c","image":"i"}]}}`,
		class: "gvisor", reasons: []string{ReasonWeakClass}, denial: `spec.runtimeClassName is "gvisor"`, enforcement: Enforce,
	}, {
		name: "a pod naming a class that no longer exists", kind: podKind, namespace: "default",
		raw:   `{"metadata":{"name":"p"},"spec":{"runtimeClassName":"gone","containers":[{"name":"c","image":"i"}]}}`,
		class: "gone", reasons: []string{ReasonClassNotFound}, denial: `RuntimeClass "gone" not found`, enforcement: Enforce,
	}, {
		name: "a compliant pod has no denial", kind: podKind, namespace: "tenant-a",
		raw:   `{"metadata":{"name":"p"},"spec":{"runtimeClassName":"gvisor","containers":[{"name":"c","image":"i"}]}}`,
		class: "gvisor", enforcement: Enforce,
	}, {
		name: "kube-system is exempt", kind: podKind, namespace: "kube-system",
		raw:    `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}`,
		exempt: `namespace "kube-system" is exempt`,
	}, {
		name: "an ignored namespace is exempt", kind: podKind, namespace: "legacy",
		raw:    `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}`,
		exempt: `runtimeguard.io/ignore=true`,
	}, {
		name: "a deployment template without class is decided with the class injected", kind: deployment, namespace: "tenant-a",
		raw:   `{"metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"name":"c","image":"i"}]}}}}`,
		class: "gvisor", enforcement: Enforce,
	}, {
		name: "a deployment template naming a weak class is reported with its prefix", kind: deployment, namespace: "payments",
		raw:   `{"metadata":{"name":"d"},"spec":{"template":{"spec":{"runtimeClassName":"gvisor","containers":[{"name":"c","image":"i"}]}}}}`,
		class: "gvisor", reasons: []string{ReasonWeakClass}, denial: `deployment "p": namespace "payments"`, enforcement: Enforce,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := p.Recheck(context.Background(), Existing{Kind: tc.kind, Namespace: tc.namespace, Name: "p", Raw: []byte(tc.raw)})
			if err != nil {
				t.Fatal(err)
			}
			if tc.exempt != "" {
				if !strings.Contains(v.Exempt, tc.exempt) || len(v.Denials) > 0 {
					t.Fatalf("verdict %+v, want exempt %q and no denial", v, tc.exempt)
				}
				return
			}
			if v.Exempt != "" || v.Class != tc.class || !slices.Equal(v.Reasons, tc.reasons) || v.Enforcement != tc.enforcement {
				t.Fatalf("verdict %+v, want class %q, reasons %q, enforcement %s", v, tc.class, tc.reasons, tc.enforcement)
			}
			if len(v.Denials) != len(v.Reasons) || (tc.denial != "" && !strings.Contains(v.Message(), tc.denial)) {
				t.Fatalf("denials %q, want one per reason containing %q", v.Denials, tc.denial)
			}
			if strings.Contains(v.Message(), "pod rejected: ") {
				t.Errorf("message %q keeps the admission prefix", v.Message())
			}
		})
	}
}

func TestRecheckReportsWhatItCannotDecide(t *testing.T) {
	p := newPipeline(t, setup{})
	cronJob := metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}
	for name, tc := range map[string]struct {
		kind metav1.GroupVersionKind
		raw  string
		want string
	}{
		"a cronjob without jobTemplate":  {cronJob, `{"metadata":{"name":"c"},"spec":{}}`, `cronjob "x": cannot read request.object: spec.jobTemplate.spec.template is missing`},
		"a pod whose spec is not a spec": {podKind, `{"metadata":{"name":"p"},"spec":[]}`, `cannot decode the Pod`},
		"a kind runtimeguard never sees": {metav1.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, `{}`, `does not review v1/ConfigMap`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := p.Recheck(context.Background(), Existing{Kind: tc.kind, Namespace: "tenant-a", Name: "x", Raw: []byte(tc.raw)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	// Deciding does not touch the admission metrics or the enforcement of the webhook's pipeline.
	if p.cfg.Enforcement != Enforce || p.cfg.recheck {
		t.Fatal("Recheck changed the pipeline it was called on")
	}
}
