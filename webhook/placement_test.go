package webhook

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

// podJSON is a minimal Pod in namespace ns with spec merged in.
func podJSON(t *testing.T, ns string, spec map[string]any) []byte {
	t.Helper()
	s := map[string]any{"containers": []any{map[string]any{"name": "app", "image": "registry.example.com/app:1"}}}
	for k, v := range spec {
		s[k] = v
	}
	b, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "p", "namespace": ns}, "spec": s})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pinnedTo(node string) map[string]any {
	return map[string]any{"nodeAffinity": map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{
		"nodeSelectorTerms": []any{map[string]any{"matchFields": []any{map[string]any{"key": "metadata.name", "operator": "In", "values": []any{node}}}}},
	}}}
}

// TestPlacementDecisions runs Pods with placement constraints through mutate and validate over
// a cluster of node pools (testdata/cluster-pools.yaml).
func TestPlacementDecisions(t *testing.T) {
	for _, tc := range []struct {
		name      string
		view      cluster.Options
		ns        string
		spec      map[string]any
		allowed   bool
		class     string
		message   []string // fragments of the denial, in order
		reasons   []string // fragments of the reasons
		warnings  []string
		errorText string
	}{
		{
			name: "the cheapest class reachable in the pod's pool is injected",
			ns:   "tenant-a", spec: map[string]any{"nodeSelector": map[string]any{"pool": "sandbox"}},
			allowed: true, class: "gvisor",
		},
		{
			name: "falls back to a stronger class when the cheapest is unreachable from the pod's zone",
			ns:   "tenant-a", spec: map[string]any{"nodeSelector": map[string]any{"topology.kubernetes.io/zone": "b"}},
			allowed: true, class: "kata",
			reasons: []string{`skipped gvisor: nodeSelector topology.kubernetes.io/zone=b matches 2 Ready nodes; handler "runsc" on 0 of them`},
		},
		{
			name: "an untrusted pod whose nodeSelector reaches no sandbox node is denied, naming what excluded what",
			ns:   "tenant-a", spec: map[string]any{"nodeSelector": map[string]any{"pool": "general"}},
			message: []string{
				`pod rejected: namespace "tenant-a" is runtimeguard.io/tenancy=untrusted, which needs isolation >= 1, but nodeSelector pool=general matches 2 Ready nodes, none of which runs a class that provides it`,
				`gvisor: handler "runsc" on 0 of them; kata: handler "kata-qemu" on 0 of them`,
				`remove or widen the pod's nodeSelector, or run one of those handlers there`,
			},
		},
		{
			name: "a pod naming a class its nodeSelector cannot reach is denied",
			ns:   "default", spec: map[string]any{"runtimeClassName": "gvisor", "nodeSelector": map[string]any{"pool": "general"}},
			message: []string{`pod rejected: RuntimeClass "gvisor" (handler "runsc") cannot run this pod: nodeSelector pool=general matches 2 Ready nodes; handler "runsc" on 0 of them; remove or widen the pod's nodeSelector, or choose another runtime class`},
		},
		{
			name: "a pod bound to a node without the handler is denied: the kubelet would fail it",
			ns:   "default", spec: map[string]any{"runtimeClassName": "gvisor", "nodeName": "general-1"},
			message: []string{`spec.nodeName "general-1" does not run handler "runsc" (RuntimeClass "gvisor"): the kubelet would fail the Pod`},
		},
		{
			name: "a pod bound to a cordoned gVisor node is admitted: cordon does not stop a bound pod",
			ns:   "tenant-a", spec: map[string]any{"nodeName": "sandbox-2"},
			allowed: true, class: "gvisor",
		},
		{
			name: "a DaemonSet pod pinned to a sandbox node gets gVisor",
			ns:   "tenant-a", spec: map[string]any{"affinity": pinnedTo("sandbox-1")},
			allowed: true, class: "gvisor",
		},
		{
			name: "a DaemonSet pod pinned to a general node is denied",
			ns:   "tenant-a", spec: map[string]any{"affinity": pinnedTo("general-2")},
			message: []string{`but required node affinity (metadata.name In [general-2]) matches 1 Ready node, none of which runs a class that provides it (gvisor: handler "runsc" on 0 of them`},
		},
		{
			name: "an untrusted pod bound to a general node is denied with the node's name",
			ns:   "tenant-a", spec: map[string]any{"nodeName": "general-1"},
			message: []string{`but the pod is bound to node "general-1" (spec.nodeName), which runs no class that provides it`},
		},
		{
			name: "a pod with no requirement and no class is untouched, wherever it asks to run",
			ns:   "default", spec: map[string]any{"nodeSelector": map[string]any{"pool": "general"}},
			allowed: true, class: "",
		},
		{
			name: "a class nothing can tell about on the pod's nodes is admitted with a warning",
			ns:   "default", spec: map[string]any{"runtimeClassName": "wasm", "nodeSelector": map[string]any{"pool": "legacy"}},
			allowed: true, class: "wasm",
			warnings: []string{`RuntimeClass "wasm" (handler "spin"): nodeSelector pool=legacy matches 1 Ready node; cannot tell whether handler "spin" runs on any of them`},
		},
		{
			name: "and denied under --require-advertised-handlers",
			view: cluster.Options{RequireAdvertisedHandlers: true},
			ns:   "default", spec: map[string]any{"runtimeClassName": "wasm", "nodeSelector": map[string]any{"pool": "legacy"}},
			message: []string{`RuntimeClass "wasm" (handler "spin") cannot run this pod`, `--require-advertised-handlers is set`},
		},
		{
			name: "malformed placement is refused naming the field",
			ns:   "tenant-a", spec: map[string]any{"tolerations": []any{map[string]any{"key": "a", "operator": "Exists", "effect": "NoRun"}}},
			errorText: `pod placement is invalid: spec.tolerations[0].effect: Unsupported value: "NoRun"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPipeline(t, setup{clusterFile: "testdata/cluster-pools.yaml", view: tc.view})
			out, err := p.Simulate(context.Background(), tc.ns, "p", podJSON(t, tc.ns, tc.spec), false)
			if tc.errorText != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errorText) {
					t.Fatalf("error %v, want one containing %q", err, tc.errorText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.Allowed != (tc.message == nil) {
				t.Fatalf("allowed=%v, message %q", out.Allowed, out.Message)
			}
			if out.Allowed && out.RuntimeClassName != tc.class {
				t.Errorf("runtimeClassName %q, want %q (reasons %q)", out.RuntimeClassName, tc.class, out.Reasons)
			}
			wantInOrder(t, "message", out.Message, tc.message)
			wantInOrder(t, "reasons", strings.Join(out.Reasons, "\n"), tc.reasons)
			wantInOrder(t, "warnings", strings.Join(out.Warnings, "\n"), tc.warnings)
		})
	}
}

func wantInOrder(t *testing.T, what, s string, fragments []string) {
	t.Helper()
	rest := s
	for _, f := range fragments {
		i := strings.Index(rest, f)
		if i < 0 {
			t.Errorf("%s %q lacks (in order) %q", what, s, f)
			return
		}
		rest = rest[i+len(f):]
	}
}
