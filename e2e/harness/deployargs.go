package harness

import (
	"fmt"
	"regexp"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Flags of `runtimeguard serve` whose chart value only makes sense inside the Pod (container
// ports, the mounted cert dir): StartWebhook always passes its own local value for each of
// them, so ServeArgs leaves them out.
var localOnlyServeFlags = []string{"--cert-dir", "--port", "--bind-address", "--health-probe-bind-address", "--metrics-bind-address"}

// ServeArgsOptions are the local replacements ServeArgs may need.
type ServeArgsOptions struct {
	// Container is the container whose args are used (default "webhook").
	Container string
	// PolicyDir replaces the chart's --policies=/policies (the ConfigMap mount). Required
	// when the chart mounts policies.
	PolicyDir string
}

// Deployment returns the chart's rendered Deployment.
func (r *Rendered) Deployment() (*appsv1.Deployment, error) {
	objs, err := r.Objects("Deployment")
	if err != nil {
		return nil, err
	}
	if len(objs) != 1 {
		return nil, fmt.Errorf("the chart rendered %d Deployments, want 1", len(objs))
	}
	d := &appsv1.Deployment{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(objs[0].Object, d, true); err != nil {
		return nil, fmt.Errorf("chart's Deployment: %w", err)
	}
	return d, nil
}

// ServeArgs returns the `runtimeguard serve` flags exactly as the chart's Deployment passes
// them, for WebhookOptions.Args, so that the e2e runs what the chart runs. Only what must
// differ for a local process is changed:
//   - $(VAR) references are expanded the way the kubelet does, from the container's env
//     (value, or the fieldRef metadata.namespace, i.e. the release namespace);
//   - the local-only flags (--cert-dir, --port, --bind-address, --health-probe-bind-address,
//     --metrics-bind-address) are dropped, because StartWebhook passes local values for them;
//   - --policies=/policies becomes --policies=<PolicyDir>.
//
// The leading "serve" is dropped too (StartWebhook passes it). A flag that StartWebhook also
// sets with a different value (--webhook-namespace or its deprecated name --namespace,
// --kubeconfig) is an error rather than a silent override.
func (r *Rendered) ServeArgs(o ServeArgsOptions) ([]string, error) {
	if o.Container == "" {
		o.Container = "webhook"
	}
	d, err := r.Deployment()
	if err != nil {
		return nil, err
	}
	var c *corev1.Container
	for i := range d.Spec.Template.Spec.Containers {
		if d.Spec.Template.Spec.Containers[i].Name == o.Container {
			c = &d.Spec.Template.Spec.Containers[i]
		}
	}
	if c == nil {
		return nil, fmt.Errorf("the chart's Deployment has no container %q", o.Container)
	}
	args := append(append([]string(nil), c.Command...), c.Args...)
	if len(args) == 0 || args[0] != "serve" {
		return nil, fmt.Errorf("container %q args %q do not start with serve", o.Container, args)
	}
	env, err := containerEnv(c, d.Namespace)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range args[1:] {
		a, err := expandEnv(a, env)
		if err != nil {
			return nil, fmt.Errorf("chart arg %q: %w", a, err)
		}
		name, value, hasValue := strings.Cut(a, "=")
		if !strings.HasPrefix(name, "--") {
			return nil, fmt.Errorf("chart arg %q is not a --flag=value", a)
		}
		switch {
		case contains(localOnlyServeFlags, name):
			continue
		case name == "--policies":
			if o.PolicyDir == "" {
				return nil, fmt.Errorf("the chart passes %s (a ConfigMap mount): give ServeArgsOptions.PolicyDir", a)
			}
			a = "--policies=" + o.PolicyDir
		case (name == "--webhook-namespace" || name == "--namespace") && (!hasValue || value != Namespace):
			return nil, fmt.Errorf("the chart passes %s but StartWebhook runs in --webhook-namespace=%s", a, Namespace)
		case name == "--kubeconfig":
			return nil, fmt.Errorf("the chart passes %s; StartWebhook sets the kubeconfig", a)
		}
		out = append(out, a)
	}
	return out, nil
}

// containerEnv resolves the env vars the kubelet would set from the container spec (literal
// values and the fieldRefs that make sense outside a Pod).
func containerEnv(c *corev1.Container, namespace string) (map[string]string, error) {
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			v, err := expandEnv(e.Value, env)
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
			env[e.Name] = v
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			if namespace == "" {
				namespace = Namespace
			}
			env[e.Name] = namespace
		default:
			// Left unresolved: an arg that uses it fails in expandEnv.
		}
	}
	return env, nil
}

var envRef = regexp.MustCompile(`\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)`)

// expandEnv expands $(VAR) like the kubelet; $$ is a literal $. An unknown variable is an error
// here (the kubelet would leave it as is, which would only hide a chart mistake).
func expandEnv(s string, env map[string]string) (string, error) {
	var missing []string
	out := envRef.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		name := m[2 : len(m)-1]
		v, ok := env[name]
		if !ok {
			missing = append(missing, name)
			return m
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("unresolvable env reference(s) %v", missing)
	}
	return out, nil
}
