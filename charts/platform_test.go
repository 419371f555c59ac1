package charts

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"
)

// The values for real platforms: security contexts, extra args and env, GOMEMLIMIT, host
// network and ports, the PodDisruptionBudget's replica condition, alerts and the dashboard.

func TestDefaultSecurityContextsAreRestricted(t *testing.T) {
	r := render(t, defaultNS)
	spec := r.deployment(t).Spec.Template.Spec
	wantPod := &corev1.PodSecurityContext{
		RunAsNonRoot:   ptrTo(true),
		RunAsUser:      ptrTo[int64](65532),
		RunAsGroup:     ptrTo[int64](65532),
		FSGroup:        ptrTo[int64](65532),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	if got := spec.SecurityContext; !jsonEqual(t, got, wantPod) {
		t.Errorf("pod securityContext = %s\nwant %s", toJSON(t, got), toJSON(t, wantPod))
	}
	wantContainer := &corev1.SecurityContext{
		RunAsNonRoot:             ptrTo(true),
		RunAsUser:                ptrTo[int64](65532),
		RunAsGroup:               ptrTo[int64](65532),
		ReadOnlyRootFilesystem:   ptrTo(true),
		AllowPrivilegeEscalation: ptrTo(false),
		Privileged:               ptrTo(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	if got := r.container(t).SecurityContext; !jsonEqual(t, got, wantContainer) {
		t.Errorf("container securityContext = %s\nwant %s", toJSON(t, got), toJSON(t, wantContainer))
	}
	if spec.HostNetwork || spec.DNSPolicy != "" {
		t.Errorf("hostNetwork %v, dnsPolicy %q by default, want neither", spec.HostNetwork, spec.DNSPolicy)
	}
}

// TestOpenShiftExampleInTheREADMERenders renders the README's OpenShift values: no fixed
// UID/GID anywhere, everything else still restricted.
func TestOpenShiftExampleInTheREADMERenders(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(chartDir(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "### OpenShift")
	if !ok {
		t.Fatal("README.md has no \"### OpenShift\" section")
	}
	_, block, ok := strings.Cut(after, "```yaml\n")
	if !ok {
		t.Fatal("the OpenShift section has no ```yaml block")
	}
	block, _, _ = strings.Cut(block, "```")
	values := filepath.Join(t.TempDir(), "openshift.yaml")
	if err := os.WriteFile(values, []byte(block), 0o644); err != nil {
		t.Fatal(err)
	}
	r := render(t, defaultNS, "-f", values)
	checkInvariants(t, r)
	psc := r.deployment(t).Spec.Template.Spec.SecurityContext
	sc := r.container(t).SecurityContext
	if psc.RunAsUser != nil || psc.RunAsGroup != nil || psc.FSGroup != nil || sc.RunAsUser != nil || sc.RunAsGroup != nil {
		t.Errorf("the OpenShift example still fixes an ID: pod %s, container %s", toJSON(t, psc), toJSON(t, sc))
	}
	if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("the OpenShift example lost the restricted settings: pod %s, container %s", toJSON(t, psc), toJSON(t, sc))
	}
}

func TestSecurityContextsAreOverridable(t *testing.T) {
	r := render(t, defaultNS, "--set", "podSecurityContext.fsGroupChangePolicy=OnRootMismatch",
		"--set", "securityContext.runAsUser=1000700000", "--set", "securityContext.seccompProfile.type=Localhost",
		"--set", "securityContext.seccompProfile.localhostProfile=profiles/runtimeguard.json")
	psc := r.deployment(t).Spec.Template.Spec.SecurityContext
	if psc.FSGroupChangePolicy == nil || *psc.FSGroupChangePolicy != corev1.FSGroupChangeOnRootMismatch || psc.FSGroup == nil || *psc.FSGroup != 65532 {
		t.Errorf("pod securityContext = %s, want the default plus fsGroupChangePolicy", toJSON(t, psc))
	}
	sc := r.container(t).SecurityContext
	if sc.RunAsUser == nil || *sc.RunAsUser != 1000700000 || sc.SeccompProfile.Type != corev1.SeccompProfileTypeLocalhost ||
		sc.SeccompProfile.LocalhostProfile == nil || *sc.SeccompProfile.LocalhostProfile != "profiles/runtimeguard.json" || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("container securityContext = %s", toJSON(t, sc))
	}
}

func TestPodDisruptionBudgetOnlyWithMoreThanOneReplica(t *testing.T) {
	cases := []struct {
		behaviour string
		args      []string
		want      int
	}{
		{"one replica renders no PDB (it would block drains)", []string{"--set", "replicaCount=1"}, 0},
		{"two replicas render the PDB", []string{"--set", "replicaCount=2"}, 1},
		{"three replicas render the PDB", []string{"--set", "replicaCount=3"}, 1},
		{"a disabled PDB stays off with more replicas", []string{"--set", "replicaCount=3", "--set", "podDisruptionBudget.enabled=false"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.behaviour, func(t *testing.T) {
			t.Parallel()
			r := render(t, defaultNS, tc.args...)
			if len(r.pdbs) != tc.want {
				t.Errorf("got %d PodDisruptionBudgets, want %d", len(r.pdbs), tc.want)
			}
		})
	}
}

func TestExtraArgsAndEnvReachTheContainer(t *testing.T) {
	r := render(t, defaultNS, "--set", "extraArgs={--max-staleness=5m,--zap-log-level=debug}",
		"--set", "extraEnv[0].name=GODEBUG", "--set", "extraEnv[0].value=x509sha1=1",
		"--set", "extraEnv[1].name=NODE_NAME", "--set", "extraEnv[1].valueFrom.fieldRef.fieldPath=spec.nodeName")
	args := r.args(t)
	if tail := args[len(args)-2:]; !slices.Equal(tail, []string{"--max-staleness=5m", "--zap-log-level=debug"}) {
		t.Errorf("args end with %v, want the extraArgs in order: %v", tail, args)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range r.container(t).Env {
		env[e.Name] = e
	}
	if env["GODEBUG"].Value != "x509sha1=1" {
		t.Errorf("GODEBUG = %+v", env["GODEBUG"])
	}
	if f := env["NODE_NAME"].ValueFrom; f == nil || f.FieldRef == nil || f.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("NODE_NAME = %+v", env["NODE_NAME"])
	}
	if _, ok := env["POD_NAMESPACE"]; !ok {
		t.Errorf("POD_NAMESPACE is gone: %v", r.container(t).Env)
	}
}

// The chart passes serve's current flag names: the deprecated aliases print a notice on every
// start. Every logLevel its schema allows must be a level --zap-log-level accepts (it is
// parsed here by controller-runtime's own flag, as serve binds it), and warn, which that flag
// refuses, must be refused by the schema rather than crash-loop the replicas.
func TestChartUsesTheCurrentServeFlags(t *testing.T) {
	args := render(t, defaultNS).args(t)
	for _, deprecated := range []string{"--namespace", "--log-level"} {
		if _, ok := argValue(args, deprecated); ok {
			t.Errorf("the chart passes the deprecated %s: %q", deprecated, args)
		}
	}
	if v, _ := argValue(args, "--webhook-namespace"); v != "$(POD_NAMESPACE)" {
		t.Errorf("--webhook-namespace = %q, want $(POD_NAMESPACE)", v)
	}

	var schema struct {
		Properties struct {
			LogLevel struct {
				Enum []string `json:"enum"`
			} `json:"logLevel"`
		} `json:"properties"`
	}
	b, err := os.ReadFile(filepath.Join(chartDir(t), "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	levels := schema.Properties.LogLevel.Enum
	if len(levels) == 0 {
		t.Fatal("values.schema.json has no logLevel enum")
	}
	for _, level := range levels {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		(&zap.Options{}).BindFlags(fs)
		if err := fs.Set("zap-log-level", level); err != nil {
			t.Errorf("the schema allows logLevel %q, which --zap-log-level refuses: %v", level, err)
		}
		args := render(t, defaultNS, "--set", "logLevel="+level).args(t)
		if v, _ := argValue(args, "--zap-log-level"); v != level {
			t.Errorf("logLevel=%s renders --zap-log-level=%q", level, v)
		}
	}
	if _, stderr, err := helm(t, templateArgs(t, defaultNS, "--set", "logLevel=warn")...); err == nil || !strings.Contains(stderr, "/logLevel") {
		t.Errorf("logLevel=warn: err %v, stderr %q; want the schema to refuse it", err, stderr)
	}
	for _, flag := range []string{"--webhook-namespace", "--namespace"} {
		_, stderr, err := helm(t, templateArgs(t, defaultNS, "--set", "extraArgs={"+flag+"=other}")...)
		if err == nil || !strings.Contains(stderr, "extraArgs must not set "+flag) {
			t.Errorf("extraArgs=%s=other: err %v, stderr %q; want it refused", flag, err, stderr)
		}
	}
}

func TestGOMEMLIMIT(t *testing.T) {
	cases := []struct {
		behaviour string
		args      []string
		want      string // "" = no GOMEMLIMIT
	}{
		{"the default 128Mi limit gives 38%, 48MiB", nil, "48MiB"},
		{"a 256Mi limit gives 97MiB", []string{"--set", "resources.limits.memory=256Mi"}, "97MiB"},
		{"a 1Gi limit gives 389MiB", []string{"--set", "resources.limits.memory=1Gi"}, "389MiB"},
		{"a fractional 1.5Gi limit gives 583MiB", []string{"--set", "resources.limits.memory=1.5Gi"}, "583MiB"},
		{"a decimal 500M limit gives 181MiB", []string{"--set", "resources.limits.memory=500M"}, "181MiB"},
		{"a limit in plain bytes (a YAML number) gives 97MiB", []string{"--set", "resources.limits.memory=268435456"}, "97MiB"},
		{"limitPercent 90 of 128Mi gives 115MiB", []string{"--set", "goMemLimit.limitPercent=90"}, "115MiB"},
		{"an explicit value wins over the limit", []string{"--set", "goMemLimit.value=200MiB"}, "200MiB"},
		{"disabled sets none", []string{"--set", "goMemLimit.enabled=false"}, ""},
		{"disabled needs no memory limit", []string{"--set", "goMemLimit.enabled=false", "--set", "resources.limits.memory=null"}, ""},
		{"a GOMEMLIMIT in extraEnv replaces the derived one", []string{"--set", "extraEnv[0].name=GOMEMLIMIT", "--set", "extraEnv[0].value=1GiB"}, "1GiB"},
	}
	for _, tc := range cases {
		t.Run(tc.behaviour, func(t *testing.T) {
			t.Parallel()
			r := render(t, defaultNS, tc.args...)
			var got []string
			for _, e := range r.container(t).Env {
				if e.Name == "GOMEMLIMIT" {
					got = append(got, e.Value)
				}
			}
			want := []string{tc.want}
			if tc.want == "" {
				want = nil
			}
			if !slices.Equal(got, want) {
				t.Errorf("GOMEMLIMIT values = %q, want %q", got, want)
			}
		})
	}
}

func TestHostNetworkAndPorts(t *testing.T) {
	r := render(t, defaultNS, "-f", ciFile(t, "platform-values.yaml"))
	spec := r.deployment(t).Spec.Template.Spec
	if !spec.HostNetwork || spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Errorf("hostNetwork %v, dnsPolicy %q; want true, ClusterFirstWithHostNet", spec.HostNetwork, spec.DNSPolicy)
	}
	c := r.container(t)
	want := map[string]int32{"webhook": 10260, "metrics": 10261, "health": 10262}
	if got := containerPorts(c); !jsonEqual(t, got, want) {
		t.Errorf("container ports = %v, want %v", got, want)
	}
	for _, flag := range []string{"--port=10260", "--metrics-bind-address=:10261", "--health-probe-bind-address=:10262"} {
		if !slices.Contains(c.Args, flag) {
			t.Errorf("args %v lack %s", c.Args, flag)
		}
	}
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || want[p.HTTPGet.Port.String()] != 10262 {
			t.Errorf("%s probe port = %+v, want the health port 10262", name, p)
		}
	}
	svc := one(t, "Service", r.services)
	for _, p := range svc.Spec.Ports {
		switch p.Name {
		case "https":
			if p.Port != 443 || want[p.TargetPort.String()] != 10260 {
				t.Errorf("https %d -> %s, want 443 -> the webhook port 10260", p.Port, p.TargetPort.String())
			}
		case "metrics":
			if p.Port != 10261 || want[p.TargetPort.String()] != 10261 {
				t.Errorf("metrics %d -> %s, want 10261 -> the metrics port", p.Port, p.TargetPort.String())
			}
		}
	}
	if v, _ := argValue(c.Args, "--max-staleness"); v != "5m" {
		t.Errorf("extraArgs from the values file missing: %v", c.Args)
	}
	if len(r.pdbs) != 0 {
		t.Errorf("a single replica must not get a PDB")
	}
}

// exportedMetrics are the metric names runtimeguard registers, read from the Go sources
// (Name: "runtimeguard_..." and prometheus.NewDesc("runtimeguard_...").
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	re := regexp.MustCompile(`(?:Name:\s*|NewDesc\(\s*)"(runtimeguard_[a-z0-9_]+)"`)
	out := map[string]bool{}
	for _, dir := range []string{"webhook", "certs", "cmd"} {
		err := filepath.WalkDir(filepath.Join(repoRoot(t), dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range re.FindAllStringSubmatch(string(src), -1) {
				out[m[1]] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if !out["runtimeguard_admissions_total"] || len(out) < 8 {
		t.Fatalf("found only %v in the sources: is the scan still finding the metrics?", out)
	}
	return out
}

// pendingMetrics are referenced by the alerts and the dashboard before `serve` exports them.
var pendingMetrics = map[string]string{
	"runtimeguard_serving_certificate_expiry_timestamp_seconds": "the certificate-expiry gauge of issue 13 item 3",
}

var metricRef = regexp.MustCompile(`\bruntimeguard_[a-z0-9_]+`)

// checkMetricNames fails for a metric name in expr that runtimeguard does not export.
func checkMetricNames(t *testing.T, where, expr string, exported map[string]bool) {
	t.Helper()
	refs := metricRef.FindAllString(expr, -1)
	if len(refs) == 0 {
		t.Errorf("%s: no runtimeguard metric in %q", where, expr)
	}
	for _, m := range refs {
		base := m
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if b, ok := strings.CutSuffix(m, suffix); ok && exported[b] {
				base = b
			}
		}
		if exported[base] {
			continue
		}
		if why, ok := pendingMetrics[base]; ok {
			t.Logf("%s uses %s, not exported yet (%s)", where, base, why)
			continue
		}
		t.Errorf("%s: %s is not a metric runtimeguard exports", where, m)
	}
	if strings.Count(expr, "(") != strings.Count(expr, ")") || strings.Count(expr, "{") != strings.Count(expr, "}") ||
		strings.Count(expr, "[") != strings.Count(expr, "]") {
		t.Errorf("%s: unbalanced brackets in %q", where, expr)
	}
}

// prometheusRule is the part of monitoring.coreos.com/v1 PrometheusRule the chart uses,
// decoded strictly so a misspelt field fails.
type prometheusRule struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata"`
	Spec       struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for,omitempty"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

var promDuration = regexp.MustCompile(`^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$`)

func TestPrometheusRule(t *testing.T) {
	if n := len(render(t, defaultNS).customOfKind("PrometheusRule")); n != 0 {
		t.Fatalf("the PrometheusRule is rendered by default (%d)", n)
	}
	out, stderr, err := helm(t, templateArgs(t, defaultNS, "-f", ciFile(t, "monitoring-values.yaml"),
		"--show-only", "templates/prometheusrule.yaml")...)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, stderr)
	}
	var pr prometheusRule
	if err := yaml.UnmarshalStrict([]byte(out), &pr); err != nil {
		t.Fatalf("the PrometheusRule does not decode strictly: %v\n%s", err, out)
	}
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" {
		t.Errorf("got %s %s", pr.APIVersion, pr.Kind)
	}
	if labels, _ := pr.Metadata["labels"].(map[string]any); labels["release"] != "kube-prometheus-stack" {
		t.Errorf("prometheusRule.labels not applied: %v", pr.Metadata["labels"])
	}
	exported := exportedMetrics(t)
	want := []string{"RuntimeguardServingCertificateExpiresSoon", "RuntimeguardPolicyReloadFailed", "RuntimeguardPolicyStale",
		"RuntimeguardClusterViewStale", "RuntimeguardDenialSurge"}
	var alerts []string
	for _, g := range pr.Spec.Groups {
		for _, rule := range g.Rules {
			alerts = append(alerts, rule.Alert)
			checkMetricNames(t, rule.Alert, rule.Expr, exported)
			if !strings.Contains(rule.Expr, `job="runtimeguard",namespace="runtimeguard"`) {
				t.Errorf("%s does not select the release's series: %s", rule.Alert, rule.Expr)
			}
			if rule.For != "" && !promDuration.MatchString(rule.For) {
				t.Errorf("%s: for %q is not a Prometheus duration", rule.Alert, rule.For)
			}
			if rule.Labels["team"] != "platform" || (rule.Labels["severity"] != "warning" && rule.Labels["severity"] != "critical") {
				t.Errorf("%s labels = %v, want severity and the alertLabels", rule.Alert, rule.Labels)
			}
			if rule.Annotations["summary"] == "" || rule.Annotations["description"] == "" {
				t.Errorf("%s lacks summary or description", rule.Alert)
			}
		}
	}
	if !slices.Equal(alerts, want) {
		t.Errorf("alerts = %v, want %v", alerts, want)
	}
	if !strings.Contains(out, "< 14 * 86400") {
		t.Errorf("certificateExpiryDays=14 is not in the expiry alert:\n%s", out)
	}

	t.Run("a metricSelector replaces the default matchers and alertLabels may override severity", func(t *testing.T) {
		out, stderr, err := helm(t, templateArgs(t, defaultNS, "--set", "prometheusRule.enabled=true",
			"--set", `prometheusRule.metricSelector=app="rg"`, "--set", "prometheusRule.alertLabels.severity=page",
			"--show-only", "templates/prometheusrule.yaml")...)
		if err != nil {
			t.Fatalf("helm template: %v\n%s", err, stderr)
		}
		var pr prometheusRule
		if err := yaml.UnmarshalStrict([]byte(out), &pr); err != nil {
			t.Fatal(err)
		}
		for _, rule := range pr.Spec.Groups[0].Rules {
			if strings.Contains(rule.Expr, "job=") || !strings.Contains(rule.Expr, `{app="rg"`) {
				t.Errorf("%s: %s", rule.Alert, rule.Expr)
			}
			if rule.Labels["severity"] != "page" {
				t.Errorf("%s severity = %q, want the alertLabels' page", rule.Alert, rule.Labels["severity"])
			}
		}
	})
}

func TestGrafanaDashboard(t *testing.T) {
	if n := len(render(t, defaultNS).configMaps); n != 0 {
		t.Fatalf("a ConfigMap is rendered by default (%d)", n)
	}
	r := render(t, defaultNS, "-f", ciFile(t, "monitoring-values.yaml"))
	cm := one(t, "ConfigMap", r.configMaps)
	if cm.Name != fullname+"-dashboard" || cm.Labels["grafana_dashboard"] != "1" || cm.Annotations["grafana_folder"] != "Admission" {
		t.Errorf("ConfigMap %s labels %v annotations %v", cm.Name, cm.Labels, cm.Annotations)
	}
	var dash struct {
		UID        string `json:"uid"`
		Title      string `json:"title"`
		Templating struct {
			List []struct {
				Name string `json:"name"`
				Type string `json:"type"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title      string `json:"title"`
			Type       string `json:"type"`
			Datasource *struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	raw := cm.Data["runtimeguard.json"]
	if err := json.Unmarshal([]byte(raw), &dash); err != nil {
		t.Fatalf("the dashboard is not valid JSON: %v", err)
	}
	if dash.UID != "runtimeguard" || dash.Title == "" || len(dash.Templating.List) == 0 || dash.Templating.List[0].Type != "datasource" {
		t.Errorf("uid %q title %q templating %+v", dash.UID, dash.Title, dash.Templating.List)
	}
	exported := exportedMetrics(t)
	used := map[string]bool{}
	graphs := 0
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		graphs++
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: datasource %+v, %d targets", p.Title, p.Datasource, len(p.Targets))
		}
		for _, tg := range p.Targets {
			checkMetricNames(t, "panel "+p.Title, tg.Expr, exported)
			if !strings.Contains(tg.Expr, `namespace=~"$namespace"`) {
				t.Errorf("panel %q ignores the namespace variable: %s", p.Title, tg.Expr)
			}
			for _, m := range metricRef.FindAllString(tg.Expr, -1) {
				used[m] = true
			}
		}
	}
	if graphs < 8 {
		t.Errorf("only %d panels", graphs)
	}
	for _, m := range []string{"runtimeguard_admissions_total", "runtimeguard_decision_duration_seconds_bucket",
		"runtimeguard_policy_reloads_total", "runtimeguard_cluster_view_staleness_seconds", "runtimeguard_runtimeclass_available"} {
		if !used[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
}

func jsonEqual(t *testing.T, a, b any) bool { return toJSON(t, a) == toJSON(t, b) }

func toJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func ptrTo[T any](v T) *T { return &v }
