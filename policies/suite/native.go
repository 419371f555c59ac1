package suite

import (
	"context"
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/native"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// nativeRun checks a suite's cases against the native policies generated from its policy's
// data (runtimeguard test --native).
type nativeRun struct {
	eval   *native.Evaluator
	params *corev1.ConfigMap
	exists map[string]bool
	// custom names the policy's modules beyond the default policy's: the native policies do
	// not translate them, so any difference may come from them.
	custom []string
}

func newNativeRun(set *policy.Set, view *cluster.View, namespace string) (*nativeRun, error) {
	custom := native.CustomModules(set)
	snap := view.Snapshot()
	available := native.Availability(snap)
	b, err := native.Generate(set.Data, native.Options{Namespace: namespace, Available: available, Extra: custom})
	if err != nil {
		return nil, err
	}
	e, err := native.NewEvaluator(b)
	if err != nil {
		return nil, err
	}
	exists := map[string]bool{}
	for name := range snap.Classes {
		exists[name] = true
	}
	return &nativeRun{eval: e, params: b.Params, exists: exists, custom: custom}, nil
}

// compare runs one case natively; it returns "" when the native policies agree with the
// webhook's outcome, else what differs and, when a documented limitation explains it, which.
func (n *nativeRun) compare(ctx context.Context, view *cluster.View, c *testCase, enforcement webhook.Enforcement, out webhook.Outcome) (diff, explained string, err error) {
	var pod corev1.Pod
	if err := yaml.Unmarshal(c.pod.Raw, &pod); err != nil {
		return "", "", fmt.Errorf("decoding the pod: %w", err)
	}
	nsName := out.Namespace
	got, _, err := view.Namespace(ctx, nsName)
	if err != nil {
		return "", "", err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsName, Labels: map[string]string{}}}
	if got != nil {
		for k, v := range got.Labels {
			ns.Labels[k] = v
		}
	}
	for k, v := range c.namespaceLabels {
		ns.Labels[k] = v
	}
	if enforcement == webhook.Warn && ns.Labels[webhook.EnforcementLabel] == "" {
		// The suite's (or case's) default mode stands for serve's --enforcement: the
		// generated bindings select warn mode by this label.
		ns.Labels[webhook.EnforcementLabel] = string(webhook.Warn)
	}
	res, err := n.eval.Evaluate(ctx, native.Request{Pod: &pod, Namespace: ns, Params: n.params, RuntimeClasses: n.exists})
	if err != nil {
		return "", "", err
	}
	allowed := len(res.Denials) == 0
	if allowed == out.Allowed && (res.Class == out.RuntimeClassName || !allowed) && res.Injected == (out.Mutated && allowed) {
		return "", "", nil
	}
	diff = fmt.Sprintf("webhook: allowed=%v runtimeClassName=%q; native: allowed=%v runtimeClassName=%q", out.Allowed, out.RuntimeClassName, allowed, res.Class)
	if len(res.Denials) > 0 {
		diff += "; native denial: " + strings.Join(res.Denials, "; ")
	}
	return diff, n.explain(&pod), nil
}

// explain names the documented limitation (native.Always and the generator's list) that can
// explain a difference for pod, or "".
func (n *nativeRun) explain(pod *corev1.Pod) string {
	s := pod.Spec
	switch {
	case len(n.custom) > 0:
		return "custom policy modules are not translated (" + strings.Join(n.custom, ", ") + ")"
	case s.NodeName != "" || len(s.NodeSelector) > 0 || len(s.Tolerations) > 0 || (s.Affinity != nil && s.Affinity.NodeAffinity != nil):
		return "placement: the webhook judges classes on the nodes the Pod can reach"
	case len(s.ResourceClaims) > 0:
		return "resource claims (DRA) are not resolved by the native policies"
	}
	return ""
}

func (n *nativeRun) report(w io.Writer, path string, c *testCase, diff, explained string, r *Results) {
	if explained != "" {
		r.NativeExplained++
		fmt.Fprintf(w, "NATIVE DIFFERS (explained) %s: %s\n    %s\n    because %s\n", path, c.name, diff, explained)
		return
	}
	r.NativeDiffs++
	fmt.Fprintf(w, "NATIVE DIFFERS %s: %s\n    at %s:%d\n    %s\n", path, c.name, path, c.line, diff)
}
