package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/runtimeguard/runtimeguard/e2e/harness"
)

// Scenario 33.
//
// The chart's values for real platforms change what runs, not only what renders: with
// charts/runtimeguard/ci/platform-values.yaml the Deployment runs on the host network with its
// own ports (the container ports and serve's --port follow ports.*), without fixed UIDs, with
// the extraArgs and extraEnv given and a GOMEMLIMIT of goMemLimit.value; and serve, started with
// exactly the flags that Deployment passes (extraArgs included), becomes Ready against the real
// API server and injects gvisor into an untrusted Pod. (Scenario 13 has the API server accept
// the same rendering, PDB absent at one replica; a kubelet would be needed to run the Pod itself.)
func TestPlatformValuesRunAsTheChartDeploysThem(t *testing.T) {
	ensureStandardCluster(t)
	values := filepath.Join(s.root, "charts", "runtimeguard", "ci", "platform-values.yaml")
	// failurePolicy Ignore: a replica with --failure-policy=Fail would take over the suite's
	// own webhook configurations, which share the chart's names.
	r, err := harness.RenderChart(s.ctx, "-f", values, "--set", "webhook.failurePolicy=Ignore")
	if err != nil {
		t.Fatal(err)
	}
	d, err := r.Deployment()
	if err != nil {
		t.Fatal(err)
	}
	pod := d.Spec.Template.Spec
	var c *corev1.Container
	for i := range pod.Containers {
		if pod.Containers[i].Name == "webhook" {
			c = &pod.Containers[i]
		}
	}
	if c == nil {
		t.Fatal("the Deployment has no webhook container")
	}
	if !pod.HostNetwork || pod.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Errorf("hostNetwork %v, dnsPolicy %q; want true and ClusterFirstWithHostNet", pod.HostNetwork, pod.DNSPolicy)
	}
	var ports []int32
	for _, p := range c.Ports {
		ports = append(ports, p.ContainerPort)
	}
	slices.Sort(ports)
	if !slices.Equal(ports, []int32{10260, 10261, 10262}) {
		t.Errorf("container ports %v, want ports.* of the values (10260, 10261, 10262)", ports)
	}
	for _, want := range []string{"--port=10260", "--metrics-bind-address=:10261", "--health-probe-bind-address=:10262", "--max-staleness=5m"} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("serve args %q lack %s", c.Args, want)
		}
	}
	env := map[string]string{}
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			v = "fieldRef:" + e.ValueFrom.FieldRef.FieldPath
		}
		env[e.Name] = v
	}
	for name, want := range map[string]string{"GOMEMLIMIT": "200MiB", "GODEBUG": "http2debug=0", "NODE_NAME": "fieldRef:spec.nodeName"} {
		if env[name] != want {
			t.Errorf("env %s = %q, want %q", name, env[name], want)
		}
	}
	if sc := c.SecurityContext; sc == nil || sc.RunAsUser != nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("container securityContext %+v: want no fixed runAsUser (the platform picks it) and runAsNonRoot", sc)
	}

	args, err := r.ServeArgs(harness.ServeArgsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(args, "--max-staleness=5m") {
		t.Fatalf("the serve flags taken from the chart %q lack the extraArgs", args)
	}
	o := s.webhookCfg
	o.Port = 0
	o.LogPath = filepath.Join(s.logDir, "platform-values.log")
	o.Args = args
	w, err := harness.StartWebhook(s.ctx, o) // waits for /readyz
	if err != nil {
		t.Fatalf("serve with the platform values' flags %q: %v (log: %s)", args, err, o.LogPath)
	}
	t.Cleanup(w.Stop)
	const uid = "platform-values"
	status, body, err := postAdmissionReview(admissionHTTPClient(), fmt.Sprintf("https://127.0.0.1:%d/mutate-v1-pod", w.Port), realisticPodReview(nsUntrusted)(uid))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := decodeAnswer(status, body, uid)
	if err != nil {
		t.Fatal(err)
	}
	if class, err := patchClass(resp); err != nil || !resp.Allowed || class != "gvisor" {
		t.Errorf("answer allowed=%v patch %s (%v), want gvisor injected", resp.Allowed, resp.Patch, err)
	}
}
