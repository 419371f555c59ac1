package charts

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/runtimeguard/runtimeguard/e2e/tools"
)

const (
	chartRel    = "charts/runtimeguard"
	releaseName = "runtimeguard"
	// fullname of releaseName: the release name already contains the chart name.
	fullname = "runtimeguard"
	// defaultNS is the namespace the tests render into unless a case says otherwise.
	defaultNS = "runtimeguard"
)

// ciFiles are the value files under ci/ and the scenario each one must keep covering.
var ciFiles = map[string]string{
	"default-values.yaml":                      "chart defaults",
	"certmanager-existing-issuer-values.yaml":  "cert-manager with an existing issuer",
	"selfsigned-values.yaml":                   "self-signed certificate mode",
	"inline-policies-values.yaml":              "inline policies",
	"existing-configmap-values.yaml":           "policies from an existing ConfigMap",
	"runtimeclasses-values.yaml":               "RuntimeClasses created",
	"networkpolicy-servicemonitor-values.yaml": "NetworkPolicy and ServiceMonitor on",
	"warn-ignore-values.yaml":                  "warn mode with failurePolicy Ignore",
	"platform-values.yaml":                     "host network, custom ports, extraArgs/extraEnv, OpenShift security contexts, one replica",
	"monitoring-values.yaml":                   "ServiceMonitor, PrometheusRule and Grafana dashboard on",
	"policy-layer-values.yaml":                 "a policy layer (data and a module) over the built-in policy",
	"audit-values.yaml":                        "background audit with its RBAC, PolicyReports and the PolicyReport CRD",
}

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// repoRoot walks up from the test's working directory to the directory holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	rootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			rootErr = err
			return
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				rootDir = dir
				readChartFiles(dir)
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				rootErr = errors.New("no go.mod above the test directory")
				return
			}
			dir = parent
		}
	})
	if rootErr != nil {
		t.Fatalf("locating the repository root: %v", rootErr)
	}
	return rootDir
}

// readChartFiles reads every chart file and stats bin/helm. `go test` caches a result keyed
// by the files the test process itself opened, and the chart is otherwise only read by the
// helm subprocess, so without this an edited chart would replay a cached pass.
func readChartFiles(root string) {
	_ = filepath.WalkDir(filepath.Join(root, chartRel), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			_, _ = os.ReadFile(path)
		}
		return nil
	})
	_, _ = os.Stat(filepath.Join(root, "bin", "helm"))
}

func chartDir(t *testing.T) string { return filepath.Join(repoRoot(t), chartRel) }

func ciFile(t *testing.T, name string) string {
	return filepath.Join(chartDir(t), "ci", name)
}

// helm runs the pinned bin/helm with throw-away Helm home directories and returns stdout,
// stderr and the exit error.
func helm(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	bin := filepath.Join(tools.ForTest(t, "helm"), "helm")
	home := t.TempDir()
	cmd := exec.Command(bin, args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// templateArgs builds `helm template` arguments for the chart in namespace ns.
func templateArgs(t *testing.T, ns string, extra ...string) []string {
	return append([]string{"template", releaseName, chartDir(t), "--namespace", ns}, extra...)
}

// rendered holds every document of one `helm template` run, decoded strictly into the
// typed Kubernetes objects (unknown fields are errors), or as plain maps for CRD kinds.
type rendered struct {
	ns              string
	deployments     []appsv1.Deployment
	services        []corev1.Service
	serviceAccounts []corev1.ServiceAccount
	secrets         []corev1.Secret
	configMaps      []corev1.ConfigMap
	clusterRoles    []rbacv1.ClusterRole
	clusterBindings []rbacv1.ClusterRoleBinding
	roles           []rbacv1.Role
	roleBindings    []rbacv1.RoleBinding
	pdbs            []policyv1.PodDisruptionBudget
	netpols         []networkingv1.NetworkPolicy
	runtimeClasses  []nodev1.RuntimeClass
	mutating        []admissionv1.MutatingWebhookConfiguration
	validating      []admissionv1.ValidatingWebhookConfiguration
	// custom holds cert-manager and Prometheus Operator objects.
	custom []map[string]any
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// clusterScoped are the rendered kinds that carry no namespace.
var clusterScoped = map[string]bool{
	"ClusterRole": true, "ClusterRoleBinding": true, "RuntimeClass": true, "CustomResourceDefinition": true,
	"MutatingWebhookConfiguration": true, "ValidatingWebhookConfiguration": true,
	"ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true,
	"MutatingAdmissionPolicy": true, "MutatingAdmissionPolicyBinding": true,
}

func decode[T any](t *testing.T, doc []byte, into *[]T) {
	t.Helper()
	var obj T
	if err := yaml.UnmarshalStrict(doc, &obj); err != nil {
		t.Fatalf("decoding %T strictly: %v\n%s", obj, err, doc)
	}
	*into = append(*into, obj)
}

func parse(t *testing.T, ns, out string) *rendered {
	t.Helper()
	r := &rendered{ns: ns}
	for _, part := range docSeparator.Split(out, -1) {
		doc := []byte(part)
		var head struct {
			APIVersion string            `json:"apiVersion"`
			Kind       string            `json:"kind"`
			Metadata   metav1.ObjectMeta `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			t.Fatalf("parsing a rendered document: %v\n%s", err, doc)
		}
		if head.Kind == "" {
			if strings.TrimSpace(stripComments(part)) != "" {
				t.Fatalf("rendered document without kind:\n%s", part)
			}
			continue
		}
		if head.Metadata.Name == "" {
			t.Errorf("%s without metadata.name", head.Kind)
		}
		if clusterScoped[head.Kind] {
			if head.Metadata.Namespace != "" {
				t.Errorf("cluster-scoped %s/%s has namespace %q", head.Kind, head.Metadata.Name, head.Metadata.Namespace)
			}
		} else if head.Metadata.Namespace != ns {
			t.Errorf("%s/%s is in namespace %q, want the release namespace %q", head.Kind, head.Metadata.Name, head.Metadata.Namespace, ns)
		}
		switch head.APIVersion + " " + head.Kind {
		case "apps/v1 Deployment":
			decode(t, doc, &r.deployments)
		case "v1 Service":
			decode(t, doc, &r.services)
		case "v1 ServiceAccount":
			decode(t, doc, &r.serviceAccounts)
		case "v1 Secret":
			decode(t, doc, &r.secrets)
		case "v1 ConfigMap":
			decode(t, doc, &r.configMaps)
		case "rbac.authorization.k8s.io/v1 ClusterRole":
			decode(t, doc, &r.clusterRoles)
		case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
			decode(t, doc, &r.clusterBindings)
		case "rbac.authorization.k8s.io/v1 Role":
			decode(t, doc, &r.roles)
		case "rbac.authorization.k8s.io/v1 RoleBinding":
			decode(t, doc, &r.roleBindings)
		case "policy/v1 PodDisruptionBudget":
			decode(t, doc, &r.pdbs)
		case "networking.k8s.io/v1 NetworkPolicy":
			decode(t, doc, &r.netpols)
		case "node.k8s.io/v1 RuntimeClass":
			decode(t, doc, &r.runtimeClasses)
		case "admissionregistration.k8s.io/v1 MutatingWebhookConfiguration":
			decode(t, doc, &r.mutating)
		case "admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration":
			decode(t, doc, &r.validating)
		case "cert-manager.io/v1 Issuer", "cert-manager.io/v1 Certificate", "monitoring.coreos.com/v1 ServiceMonitor",
			"monitoring.coreos.com/v1 PrometheusRule", "apiextensions.k8s.io/v1 CustomResourceDefinition",
			"admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy", "admissionregistration.k8s.io/v1 ValidatingAdmissionPolicyBinding",
			"admissionregistration.k8s.io/v1 MutatingAdmissionPolicy", "admissionregistration.k8s.io/v1 MutatingAdmissionPolicyBinding":
			decode(t, doc, &r.custom)
		default:
			t.Fatalf("unexpected rendered object %s %s/%s", head.APIVersion, head.Kind, head.Metadata.Name)
		}
	}
	return r
}

func stripComments(s string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// render runs `helm template` and fails the test when it does not render.
func render(t *testing.T, ns string, extra ...string) *rendered {
	t.Helper()
	out, stderr, err := helm(t, templateArgs(t, ns, extra...)...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", extra, err, stderr)
	}
	return parse(t, ns, out)
}

// Accessors that expect exactly one object of a kind.

func one[T any](t *testing.T, what string, objs []T) *T {
	t.Helper()
	if len(objs) != 1 {
		t.Fatalf("want exactly 1 %s, got %d", what, len(objs))
	}
	return &objs[0]
}

func (r *rendered) deployment(t *testing.T) *appsv1.Deployment {
	return one(t, "Deployment", r.deployments)
}

func (r *rendered) container(t *testing.T) *corev1.Container {
	t.Helper()
	return one(t, "container", r.deployment(t).Spec.Template.Spec.Containers)
}

func (r *rendered) args(t *testing.T) []string { return r.container(t).Args }

// webhook is what both webhook kinds share and the tests look at.
type webhook struct {
	kind              string
	name              string
	clientConfig      admissionv1.WebhookClientConfig
	rules             []admissionv1.RuleWithOperations
	failurePolicy     *admissionv1.FailurePolicyType
	sideEffects       *admissionv1.SideEffectClass
	timeoutSeconds    *int32
	reviewVersions    []string
	namespaceSelector *metav1.LabelSelector
	objectSelector    *metav1.LabelSelector
	matchConditions   []admissionv1.MatchCondition
	annotations       map[string]string
	configName        string
}

// webhooks returns the two Pod webhooks; the policy ConfigMap check (policyCheckWebhookName)
// is tested on its own (policylayer_test.go).
func (r *rendered) webhooks(t *testing.T) []webhook {
	t.Helper()
	m := one(t, "MutatingWebhookConfiguration", r.mutating)
	v := one(t, "ValidatingWebhookConfiguration", r.validating)
	var out []webhook
	for _, w := range m.Webhooks {
		out = append(out, webhook{"MutatingWebhookConfiguration", w.Name, w.ClientConfig, w.Rules, w.FailurePolicy,
			w.SideEffects, w.TimeoutSeconds, w.AdmissionReviewVersions, w.NamespaceSelector, w.ObjectSelector,
			w.MatchConditions, m.Annotations, m.Name})
	}
	for _, w := range v.Webhooks {
		if w.Name == policyCheckWebhookName {
			continue
		}
		out = append(out, webhook{"ValidatingWebhookConfiguration", w.Name, w.ClientConfig, w.Rules, w.FailurePolicy,
			w.SideEffects, w.TimeoutSeconds, w.AdmissionReviewVersions, w.NamespaceSelector, w.ObjectSelector,
			w.MatchConditions, v.Annotations, v.Name})
	}
	if len(out) != 2 {
		t.Fatalf("want one mutating and one validating webhook, got %d webhooks", len(out))
	}
	return out
}

// wantWorkloadRules are the workload kinds the validating webhook reviews (workloads.review).
var wantWorkloadRules = []string{
	"/v1/replicationcontrollers CREATE,UPDATE",
	"apps/v1/daemonsets CREATE,UPDATE", "apps/v1/deployments CREATE,UPDATE", "apps/v1/replicasets CREATE,UPDATE", "apps/v1/statefulsets CREATE,UPDATE",
	"batch/v1/cronjobs CREATE,UPDATE", "batch/v1/jobs CREATE,UPDATE",
}

// workloadRules flattens the rules other than pods into sorted "group/version/resource ops".
func workloadRules(rules []admissionv1.RuleWithOperations) []string {
	var out []string
	for _, r := range rules {
		ops := make([]string, 0, len(r.Operations))
		for _, op := range r.Operations {
			ops = append(ops, string(op))
		}
		for _, g := range r.APIGroups {
			for _, v := range r.APIVersions {
				for _, res := range r.Resources {
					if res != "pods" {
						out = append(out, fmt.Sprintf("%s/%s/%s %s", g, v, res, strings.Join(ops, ",")))
					}
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

func (r *rendered) customOfKind(kind string) []map[string]any {
	var out []map[string]any
	for _, o := range r.custom {
		if o["kind"] == kind {
			out = append(out, o)
		}
	}
	return out
}

func (r *rendered) customNamed(t *testing.T, kind, name string) map[string]any {
	t.Helper()
	for _, o := range r.customOfKind(kind) {
		if str(o, "metadata", "name") == name {
			return o
		}
	}
	t.Fatalf("no %s named %s rendered", kind, name)
	return nil
}

// str reads a string at path in a decoded map ("" when absent).
func str(o map[string]any, path ...string) string {
	v, _ := get(o, path...).(string)
	return v
}

func get(o map[string]any, path ...string) any {
	var cur any = o
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func argValue(args []string, flag string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v, true
		}
		if a == flag {
			return "", true
		}
	}
	return "", false
}

// exemptNamespaces returns the values of the `kubernetes.io/metadata.name NotIn` requirement.
func exemptNamespaces(sel *metav1.LabelSelector) []string {
	if sel == nil {
		return nil
	}
	for _, e := range sel.MatchExpressions {
		if e.Key == "kubernetes.io/metadata.name" && e.Operator == metav1.LabelSelectorOpNotIn {
			return e.Values
		}
	}
	return nil
}

func hasRequirement(sel *metav1.LabelSelector, want metav1.LabelSelectorRequirement) bool {
	if sel == nil {
		return false
	}
	for _, e := range sel.MatchExpressions {
		if e.Key == want.Key && e.Operator == want.Operator && slices.Equal(e.Values, want.Values) {
			return true
		}
	}
	return false
}

// ruleTuples flattens RBAC rules into sorted "group/resource verb [names]" strings so a
// whole role can be compared exactly.
func ruleTuples(rules []rbacv1.PolicyRule) []string {
	var out []string
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					s := fmt.Sprintf("%s/%s %s", g, res, v)
					if len(r.ResourceNames) > 0 {
						names := slices.Clone(r.ResourceNames)
						sort.Strings(names)
						s += " " + strings.Join(names, ",")
					}
					out = append(out, s)
				}
			}
		}
		for _, u := range r.NonResourceURLs {
			for _, v := range r.Verbs {
				out = append(out, "url:"+u+" "+v)
			}
		}
	}
	sort.Strings(out)
	return out
}

func (r *rendered) clusterRole(t *testing.T, name string) *rbacv1.ClusterRole {
	t.Helper()
	for i := range r.clusterRoles {
		if r.clusterRoles[i].Name == name {
			return &r.clusterRoles[i]
		}
	}
	t.Fatalf("no ClusterRole %s rendered", name)
	return nil
}

var readOnlyClusterRules = []string{
	"/namespaces get", "/namespaces list", "/namespaces watch",
	"/nodes get", "/nodes list", "/nodes watch",
	"node.k8s.io/runtimeclasses get", "node.k8s.io/runtimeclasses list", "node.k8s.io/runtimeclasses watch",
	"resource.k8s.io/resourceclaims get", "resource.k8s.io/resourceclaims list", "resource.k8s.io/resourceclaims watch",
	"resource.k8s.io/resourceclaimtemplates get", "resource.k8s.io/resourceclaimtemplates list", "resource.k8s.io/resourceclaimtemplates watch",
}

// checkInvariants asserts what must hold for every values file.
func checkInvariants(t *testing.T, r *rendered) {
	t.Helper()
	d := r.deployment(t)
	c := r.container(t)
	svc := one(t, "Service", r.services)

	// Binary flag contract: the listening ports are the container's named ports.
	ports := containerPorts(c)
	for _, want := range []string{fmt.Sprintf("--port=%d", ports["webhook"]), "--cert-dir=/certs",
		fmt.Sprintf("--metrics-bind-address=:%d", ports["metrics"]),
		fmt.Sprintf("--health-probe-bind-address=:%d", ports["health"]), "--webhook-namespace=$(POD_NAMESPACE)"} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("container args %v lack %s", c.Args, want)
		}
	}
	if len(ports) != 3 || ports["webhook"] == 0 || ports["metrics"] == 0 || ports["health"] == 0 {
		t.Errorf("container ports = %v, want webhook, metrics and health", ports)
	}
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Errorf("first container arg should be serve, got %v", c.Args)
	}
	var podNS *corev1.EnvVar
	for i := range c.Env {
		if c.Env[i].Name == "POD_NAMESPACE" {
			podNS = &c.Env[i]
		}
	}
	if podNS == nil || podNS.ValueFrom == nil || podNS.ValueFrom.FieldRef == nil || podNS.ValueFrom.FieldRef.FieldPath != "metadata.namespace" {
		t.Errorf("POD_NAMESPACE must come from the downward API metadata.namespace, got %+v", podNS)
	}

	// Webhooks.
	for _, w := range r.webhooks(t) {
		exempt := exemptNamespaces(w.namespaceSelector)
		if !slices.Contains(exempt, "kube-system") || !slices.Contains(exempt, r.ns) {
			t.Errorf("%s %s: namespaceSelector exempts %v, want kube-system and %s", w.kind, w.name, exempt, r.ns)
		}
		if !hasRequirement(w.namespaceSelector, metav1.LabelSelectorRequirement{Key: "runtimeguard.io/ignore", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"true"}}) {
			t.Errorf("%s %s: namespaceSelector lacks runtimeguard.io/ignore NotIn [true]: %+v", w.kind, w.name, w.namespaceSelector)
		}
		if w.sideEffects == nil || *w.sideEffects != admissionv1.SideEffectClassNone {
			t.Errorf("%s %s: sideEffects = %v, want None", w.kind, w.name, w.sideEffects)
		}
		if !slices.Equal(w.reviewVersions, []string{"v1"}) {
			t.Errorf("%s %s: admissionReviewVersions = %v, want [v1]", w.kind, w.name, w.reviewVersions)
		}
		if len(w.rules) == 0 || !slices.Equal(w.rules[0].Operations, []admissionv1.OperationType{admissionv1.Create}) ||
			!slices.Equal(w.rules[0].Resources, []string{"pods"}) || !slices.Equal(w.rules[0].APIGroups, []string{""}) ||
			!slices.Equal(w.rules[0].APIVersions, []string{"v1"}) {
			t.Errorf("%s %s: rules = %+v, want core/v1 pods CREATE first", w.kind, w.name, w.rules)
		}
		// Only the validating webhook reviews workloads: templates are never mutated.
		if got := workloadRules(w.rules); w.kind == "MutatingWebhookConfiguration" && (len(got) > 0 || len(w.rules) != 1) {
			t.Errorf("%s %s: rules = %+v, want only core/v1 pods CREATE", w.kind, w.name, w.rules)
		} else if len(got) > 0 && !slices.Equal(got, wantWorkloadRules) {
			t.Errorf("%s %s: workload rules = %v\nwant %v", w.kind, w.name, got, wantWorkloadRules)
		}
		mirror := false
		for _, mc := range w.matchConditions {
			if strings.Contains(mc.Expression, "kubernetes.io/config.mirror") {
				mirror = true
			}
		}
		if !mirror {
			t.Errorf("%s %s: no matchCondition skips mirror pods: %+v", w.kind, w.name, w.matchConditions)
		}
		if s := w.clientConfig.Service; s == nil || s.Name != svc.Name || s.Namespace != r.ns || s.Port == nil || *s.Port != 443 {
			t.Errorf("%s %s: clientConfig.service = %+v, want %s/%s:443", w.kind, w.name, s, r.ns, svc.Name)
		}
		if w.configName != fullname {
			t.Errorf("%s is named %s, want the fullname %s", w.kind, w.configName, fullname)
		}
	}

	// Restricted security context. The UID and GID may be left to the platform (OpenShift's
	// SCC assigns them); the defaults test checks 65532.
	pod := d.Spec.Template.Spec
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext not restricted: %+v", psc)
	}
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Errorf("container has no securityContext")
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot,
		sc.RunAsUser != nil && *sc.RunAsUser == 0,
		sc.Privileged != nil && *sc.Privileged,
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem,
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation,
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0,
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("container securityContext not restricted: %+v", sc)
	}
	if pod.AutomountServiceAccountToken == nil || !*pod.AutomountServiceAccountToken {
		t.Errorf("the pod needs its service account token (automountServiceAccountToken true)")
	}
	if pod.HostPID || pod.HostIPC {
		t.Errorf("pod must not use the host's PID or IPC namespace")
	}
	if pod.HostNetwork != (pod.DNSPolicy == corev1.DNSClusterFirstWithHostNet) {
		t.Errorf("hostNetwork %v with dnsPolicy %q: a host-network Pod needs ClusterFirstWithHostNet, and only it", pod.HostNetwork, pod.DNSPolicy)
	}
	// The Service reaches the container ports by name.
	for _, p := range svc.Spec.Ports {
		if p.TargetPort.Type != intstr.String || ports[p.TargetPort.StrVal] == 0 {
			t.Errorf("Service port %s targets %s, which is not a named container port (%v)", p.Name, p.TargetPort.String(), ports)
		}
	}
	// A PodDisruptionBudget only with more than one replica (minAvailable of a single replica
	// blocks node drains).
	if d.Spec.Replicas != nil && *d.Spec.Replicas < 2 && len(r.pdbs) != 0 {
		t.Errorf("a PodDisruptionBudget with %d replica(s) blocks every drain", *d.Spec.Replicas)
	}

	// RBAC hygiene.
	allRules := map[string][]rbacv1.PolicyRule{}
	for _, cr := range r.clusterRoles {
		allRules["ClusterRole/"+cr.Name] = cr.Rules
	}
	for _, ro := range r.roles {
		allRules["Role/"+ro.Name] = ro.Rules
	}
	for who, rules := range allRules {
		for _, rule := range rules {
			for _, field := range [][]string{rule.APIGroups, rule.Resources, rule.Verbs, rule.ResourceNames} {
				if slices.Contains(field, "*") {
					t.Errorf("%s has a wildcard: %+v", who, rule)
				}
			}
			// Pods are only ever listed, by the background audit (audit.enabled).
			if slices.Contains(rule.Resources, "pods") && (who != "ClusterRole/"+fullname+"-audit" || !slices.Equal(rule.Verbs, []string{"list"})) {
				t.Errorf("%s grants access to pods: %+v", who, rule)
			}
			if slices.Contains(rule.Resources, "secrets") && len(rule.ResourceNames) == 0 {
				t.Errorf("%s grants unscoped secret access: %+v", who, rule)
			}
			if len(rule.NonResourceURLs) > 0 {
				t.Errorf("%s grants non-resource URLs: %+v", who, rule)
			}
		}
	}
	if got := ruleTuples(r.clusterRole(t, fullname).Rules); !slices.Equal(got, readOnlyClusterRules) {
		t.Errorf("ClusterRole %s rules = %v, want %v", fullname, got, readOnlyClusterRules)
	}
	sa := pod.ServiceAccountName
	for _, b := range r.clusterBindings {
		if len(b.Subjects) != 1 || b.Subjects[0].Kind != "ServiceAccount" || b.Subjects[0].Name != sa || b.Subjects[0].Namespace != r.ns {
			t.Errorf("ClusterRoleBinding %s subjects = %+v, want only ServiceAccount %s/%s", b.Name, b.Subjects, r.ns, sa)
		}
		r.clusterRole(t, b.RoleRef.Name)
	}
	for _, b := range r.roleBindings {
		if len(b.Subjects) != 1 || b.Subjects[0].Name != sa || b.Subjects[0].Namespace != r.ns {
			t.Errorf("RoleBinding %s subjects = %+v, want only ServiceAccount %s/%s", b.Name, b.Subjects, r.ns, sa)
		}
	}
}

func TestCIValuesFilesCoverTheScenarios(t *testing.T) {
	found, err := filepath.Glob(filepath.Join(chartDir(t), "ci", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range found {
		names = append(names, filepath.Base(f))
	}
	for name, scenario := range ciFiles {
		if !slices.Contains(names, name) {
			t.Errorf("ci/%s (%s) is missing", name, scenario)
		}
	}
	for _, name := range names {
		if _, ok := ciFiles[name]; !ok {
			t.Errorf("ci/%s is not listed in ciFiles: say which scenario it covers", name)
		}
	}
}

// valueSets is the defaults plus every ci/*.yaml file.
func valueSets(t *testing.T) map[string][]string {
	sets := map[string][]string{"chart defaults": nil}
	for name := range ciFiles {
		sets["ci/"+name] = []string{"-f", ciFile(t, name)}
	}
	return sets
}

func TestHelmLintPasses(t *testing.T) {
	for name, extra := range valueSets(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"lint", "--strict", chartDir(t), "--namespace", defaultNS}, extra...)
			out, stderr, err := helm(t, args...)
			if err != nil {
				t.Fatalf("helm lint %v: %v\n%s%s", extra, err, out, stderr)
			}
			if !strings.Contains(out, "1 chart(s) linted, 0 chart(s) failed") {
				t.Errorf("unexpected lint summary:\n%s", out)
			}
			if strings.Contains(out, "[WARNING]") || strings.Contains(out, "[ERROR]") {
				t.Errorf("lint reported problems:\n%s", out)
			}
		})
	}
}

func TestEveryValuesFileRendersValidObjects(t *testing.T) {
	for name, extra := range valueSets(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// A namespace other than the chart's usual one, so nothing can hard-code it.
			checkInvariants(t, render(t, "security-system", extra...))
		})
	}
}

func TestChartBehaviour(t *testing.T) {
	ci := func(name string) []string { return []string{"-f", ciFile(t, name)} }
	cases := []struct {
		behaviour string
		ns        string
		args      []string
		check     func(t *testing.T, r *rendered)
	}{
		{
			behaviour: "the default install runs 2 replicas guarded by a PodDisruptionBudget of minAvailable 1",
			check: func(t *testing.T, r *rendered) {
				d := r.deployment(t)
				if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
					t.Errorf("replicas = %v, want 2", d.Spec.Replicas)
				}
				pdb := one(t, "PodDisruptionBudget", r.pdbs)
				if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
					t.Errorf("minAvailable = %v, want 1", pdb.Spec.MinAvailable)
				}
				if pdb.Spec.Selector == nil || !selects(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
					t.Errorf("PDB selector %v does not select the pods %v", pdb.Spec.Selector, d.Spec.Template.Labels)
				}
			},
		},
		{
			behaviour: "the namespaceSelector exempts kube-system and a custom release namespace",
			ns:        "platform-admission",
			check: func(t *testing.T, r *rendered) {
				for _, w := range r.webhooks(t) {
					if got := exemptNamespaces(w.namespaceSelector); !slices.Equal(got, []string{"kube-system", "platform-admission"}) {
						t.Errorf("%s exempts %v, want [kube-system platform-admission]", w.name, got)
					}
				}
			},
		},
		{
			behaviour: "a user namespaceSelector is added to, and cannot remove, the fixed exemptions",
			ns:        "platform-admission",
			args: []string{
				"--set", "webhook.namespaceSelector.matchExpressions[0].key=kubernetes.io/metadata.name",
				"--set", "webhook.namespaceSelector.matchExpressions[0].operator=In",
				"--set", "webhook.namespaceSelector.matchExpressions[0].values={kube-system,platform-admission,apps}",
				"--set", "webhook.namespaceSelector.matchLabels.team=payments",
			},
			check: func(t *testing.T, r *rendered) {
				for _, w := range r.webhooks(t) {
					if got := exemptNamespaces(w.namespaceSelector); !slices.Equal(got, []string{"kube-system", "platform-admission"}) {
						t.Errorf("%s exempts %v, want [kube-system platform-admission]", w.name, got)
					}
					if !hasRequirement(w.namespaceSelector, metav1.LabelSelectorRequirement{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpIn, Values: []string{"kube-system", "platform-admission", "apps"}}) {
						t.Errorf("%s lost the user's requirement: %+v", w.name, w.namespaceSelector)
					}
					if w.namespaceSelector.MatchLabels["team"] != "payments" {
						t.Errorf("%s lost the user's matchLabels: %+v", w.name, w.namespaceSelector)
					}
				}
			},
		},
		{
			behaviour: "installing into kube-system lists it once in the exemptions",
			ns:        "kube-system",
			check: func(t *testing.T, r *rendered) {
				for _, w := range r.webhooks(t) {
					if got := exemptNamespaces(w.namespaceSelector); !slices.Equal(got, []string{"kube-system"}) {
						t.Errorf("%s exempts %v, want [kube-system]", w.name, got)
					}
				}
			},
		},
		{
			behaviour: "failurePolicy defaults to Fail with a 5s timeout on both webhooks",
			check: func(t *testing.T, r *rendered) {
				for _, w := range r.webhooks(t) {
					if w.failurePolicy == nil || *w.failurePolicy != admissionv1.Fail {
						t.Errorf("%s failurePolicy = %v, want Fail", w.name, w.failurePolicy)
					}
					if w.timeoutSeconds == nil || *w.timeoutSeconds != 5 {
						t.Errorf("%s timeoutSeconds = %v, want 5", w.name, w.timeoutSeconds)
					}
					if got := workloadRules(w.rules); w.kind == "ValidatingWebhookConfiguration" && !slices.Equal(got, wantWorkloadRules) {
						t.Errorf("%s workload rules = %v, want %v (workloads.review defaults to enforce)", w.name, got, wantWorkloadRules)
					}
				}
			},
		},
		{
			behaviour: "the validating webhook reviews workloads by default, and workloads.review=warn tells the server",
			args:      []string{"--set", "workloads.review=warn"},
			check: func(t *testing.T, r *rendered) {
				for _, w := range r.webhooks(t) {
					got := workloadRules(w.rules)
					if w.kind == "ValidatingWebhookConfiguration" && !slices.Equal(got, wantWorkloadRules) {
						t.Errorf("%s workload rules = %v\nwant %v", w.name, got, wantWorkloadRules)
					}
				}
				if v, _ := argValue(r.args(t), "--workload-review"); v != "warn" {
					t.Errorf("--workload-review = %q, want warn", v)
				}
			},
		},
		{
			behaviour: "logDecisions=false turns the decision records off",
			args:      []string{"--set", "logDecisions=false"},
			check: func(t *testing.T, r *rendered) {
				if v, _ := argValue(r.args(t), "--log-decisions"); v != "false" {
					t.Errorf("--log-decisions = %q, want false", v)
				}
			},
		},
		{
			behaviour: "workloads.review=off leaves workloads out of the webhook rules",
			args:      []string{"--set", "workloads.review=off"},
			check: func(t *testing.T, r *rendered) {
				for _, w := range r.webhooks(t) {
					if got := workloadRules(w.rules); len(got) > 0 {
						t.Errorf("%s still reviews workloads: %v", w.name, got)
					}
				}
			},
		},
		{
			behaviour: "failurePolicy Ignore and warn enforcement are passed through",
			args:      ci("warn-ignore-values.yaml"),
			check: func(t *testing.T, r *rendered) {
				for _, w := range r.webhooks(t) {
					if w.failurePolicy == nil || *w.failurePolicy != admissionv1.Ignore {
						t.Errorf("%s failurePolicy = %v, want Ignore", w.name, w.failurePolicy)
					}
				}
				if v, _ := argValue(r.args(t), "--enforcement"); v != "warn" {
					t.Errorf("--enforcement = %q, want warn", v)
				}
				if v, _ := argValue(r.args(t), "--eval-timeout"); v != "500ms" {
					t.Errorf("--eval-timeout = %q, want 500ms", v)
				}
			},
		},
		{
			behaviour: "the webhooks call the service paths and only the mutating one is reinvoked if needed",
			check: func(t *testing.T, r *rendered) {
				m := one(t, "MutatingWebhookConfiguration", r.mutating)
				v := one(t, "ValidatingWebhookConfiguration", r.validating)
				mw, vw := m.Webhooks[0], v.Webhooks[0]
				if mw.Name != "mutate.runtimeguard.io" || *mw.ClientConfig.Service.Path != "/mutate-v1-pod" {
					t.Errorf("mutating webhook %s -> %v", mw.Name, *mw.ClientConfig.Service.Path)
				}
				if vw.Name != "validate.runtimeguard.io" || *vw.ClientConfig.Service.Path != "/validate-v1-pod" {
					t.Errorf("validating webhook %s -> %v", vw.Name, *vw.ClientConfig.Service.Path)
				}
				if mw.ReinvocationPolicy == nil || *mw.ReinvocationPolicy != admissionv1.IfNeededReinvocationPolicy {
					t.Errorf("reinvocationPolicy = %v, want IfNeeded", mw.ReinvocationPolicy)
				}
				if len(mw.ClientConfig.CABundle) != 0 || len(vw.ClientConfig.CABundle) != 0 {
					t.Errorf("caBundle must be left to cainjector or the binary")
				}
				if mw.ObjectSelector == nil || len(mw.ObjectSelector.MatchLabels)+len(mw.ObjectSelector.MatchExpressions) != 0 {
					t.Errorf("objectSelector should default to empty, got %+v", mw.ObjectSelector)
				}
			},
		},
		{
			behaviour: "the service maps 443 to the webhook port 9443",
			check: func(t *testing.T, r *rendered) {
				svc := one(t, "Service", r.services)
				ports := map[string]corev1.ServicePort{}
				for _, p := range svc.Spec.Ports {
					ports[p.Name] = p
				}
				if p := ports["https"]; p.Port != 443 || p.TargetPort.String() != "webhook" {
					t.Errorf("https port = %+v", p)
				}
				var webhookPort int32
				for _, p := range r.container(t).Ports {
					if p.Name == "webhook" {
						webhookPort = p.ContainerPort
					}
				}
				if webhookPort != 9443 {
					t.Errorf("container port webhook = %d, want 9443", webhookPort)
				}
				if !selects(svc.Spec.Selector, r.deployment(t).Spec.Template.Labels) {
					t.Errorf("service selector %v does not select the pods", svc.Spec.Selector)
				}
			},
		},
		{
			behaviour: "the container follows the binary's flag contract with the embedded policy by default",
			check: func(t *testing.T, r *rendered) {
				want := []string{"serve", "--port=9443", "--cert-dir=/certs", "--metrics-bind-address=:8080",
					"--health-probe-bind-address=:8081", "--webhook-namespace=$(POD_NAMESPACE)", "--enforcement=enforce",
					"--workload-review=enforce", "--require-advertised-handlers=false", "--eval-timeout=1s", "--zap-log-level=info",
					"--log-decisions=true", "--mutating-webhook-configuration=" + fullname, "--validating-webhook-configuration=" + fullname, "--failure-policy=Fail"}
				if got := r.args(t); !slices.Equal(got, want) {
					t.Errorf("args = %v\nwant %v", got, want)
				}
				c := r.container(t)
				if c.Image != "ghcr.io/runtimeguard/runtimeguard:0.1.0" {
					t.Errorf("image = %s", c.Image)
				}
				for _, m := range c.VolumeMounts {
					if m.MountPath == "/policies" {
						t.Errorf("no policy directory should be mounted by default")
					}
				}
				if len(r.configMaps) != 0 {
					t.Errorf("no ConfigMap expected by default, got %d", len(r.configMaps))
				}
			},
		},
		{
			behaviour: "probes hit /healthz and /readyz on the health port 8081",
			check: func(t *testing.T, r *rendered) {
				c := r.container(t)
				for probe, want := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
					if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want || probe.HTTPGet.Port.String() != "health" {
						t.Errorf("probe for %s = %+v", want, probe)
					}
				}
				for _, p := range c.Ports {
					if p.Name == "health" && p.ContainerPort != 8081 {
						t.Errorf("health port = %d", p.ContainerPort)
					}
				}
			},
		},
		{
			behaviour: "a rolling update never removes a ready replica and drains before exit",
			check: func(t *testing.T, r *rendered) {
				d := r.deployment(t)
				ru := d.Spec.Strategy.RollingUpdate
				if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
					t.Errorf("strategy = %+v, want RollingUpdate with maxUnavailable 0", d.Spec.Strategy)
				}
				c := r.container(t)
				if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds != 10 {
					t.Fatalf("preStop = %+v, want a 10s sleep action", c.Lifecycle)
				}
				grace := d.Spec.Template.Spec.TerminationGracePeriodSeconds
				if grace == nil || *grace <= c.Lifecycle.PreStop.Sleep.Seconds+5 {
					t.Errorf("terminationGracePeriodSeconds = %v, must exceed the preStop sleep plus the webhook timeout", grace)
				}
			},
		},
		{
			behaviour: "replicas spread across nodes with ScheduleAnyway at system-cluster-critical priority",
			check: func(t *testing.T, r *rendered) {
				spec := r.deployment(t).Spec.Template.Spec
				tsc := one(t, "topologySpreadConstraint", spec.TopologySpreadConstraints)
				if tsc.TopologyKey != "kubernetes.io/hostname" || tsc.WhenUnsatisfiable != corev1.ScheduleAnyway || tsc.MaxSkew != 1 {
					t.Errorf("topology spread = %+v", tsc)
				}
				if tsc.LabelSelector == nil || !selects(tsc.LabelSelector.MatchLabels, r.deployment(t).Spec.Template.Labels) {
					t.Errorf("topology spread selector %v does not select the pods", tsc.LabelSelector)
				}
				if spec.PriorityClassName != "system-cluster-critical" {
					t.Errorf("priorityClassName = %q", spec.PriorityClassName)
				}
			},
		},
		{
			behaviour: "topology spread and priority class are configurable",
			args:      ci("warn-ignore-values.yaml"),
			check: func(t *testing.T, r *rendered) {
				spec := r.deployment(t).Spec.Template.Spec
				tsc := one(t, "topologySpreadConstraint", spec.TopologySpreadConstraints)
				if tsc.TopologyKey != "topology.kubernetes.io/zone" || tsc.WhenUnsatisfiable != corev1.DoNotSchedule {
					t.Errorf("topology spread = %+v", tsc)
				}
				if spec.PriorityClassName != "" {
					t.Errorf("priorityClassName = %q, want none", spec.PriorityClassName)
				}
			},
		},
		{
			behaviour: "resources default to 50m/64Mi requests and a 128Mi memory limit with /tmp on an emptyDir",
			check: func(t *testing.T, r *rendered) {
				res := r.container(t).Resources
				if res.Requests.Cpu().String() != "50m" || res.Requests.Memory().String() != "64Mi" || res.Limits.Memory().String() != "128Mi" {
					t.Errorf("resources = %+v", res)
				}
				var tmp bool
				for _, v := range r.deployment(t).Spec.Template.Spec.Volumes {
					if v.Name == "tmp" && v.EmptyDir != nil {
						tmp = true
					}
				}
				var mounted bool
				for _, m := range r.container(t).VolumeMounts {
					if m.Name == "tmp" && m.MountPath == "/tmp" && !m.ReadOnly {
						mounted = true
					}
				}
				if !tmp || !mounted {
					t.Errorf("/tmp must be a writable emptyDir (volume %v, mount %v)", tmp, mounted)
				}
			},
		},
		{
			behaviour: "default mode grants only get/list/watch on nodes, namespaces, runtimeclasses and resource claims",
			check: func(t *testing.T, r *rendered) {
				if got := ruleTuples(r.clusterRole(t, fullname).Rules); !slices.Equal(got, readOnlyClusterRules) {
					t.Errorf("rules = %v\nwant %v", got, readOnlyClusterRules)
				}
				if len(r.clusterRoles) != 2 || len(r.clusterBindings) != 2 {
					t.Errorf("want the read-only and the failure-policy ClusterRoles (and bindings), got %d/%d", len(r.clusterRoles), len(r.clusterBindings))
				}
				if len(r.roles) != 0 || len(r.roleBindings) != 0 {
					t.Errorf("no namespaced Role expected in cert-manager mode, got %d", len(r.roles))
				}
				if len(r.secrets) != 0 {
					t.Errorf("cert-manager mode must not render Secrets, got %d", len(r.secrets))
				}
			},
		},
		{
			behaviour: "cert-manager mode builds the CA chain and injects the serving certificate's CA",
			check: func(t *testing.T, r *rendered) {
				if n := len(r.customOfKind("Issuer")); n != 2 {
					t.Errorf("want 2 Issuers (self-signed and CA), got %d", n)
				}
				if n := len(r.customOfKind("Certificate")); n != 2 {
					t.Errorf("want 2 Certificates (CA and serving), got %d", n)
				}
				if _, ok := get(r.customNamed(t, "Issuer", fullname+"-selfsigned"), "spec", "selfSigned").(map[string]any); !ok {
					t.Errorf("the -selfsigned Issuer is not selfSigned")
				}
				ca := r.customNamed(t, "Certificate", fullname+"-ca")
				if get(ca, "spec", "isCA") != true || str(ca, "spec", "issuerRef", "name") != fullname+"-selfsigned" {
					t.Errorf("CA certificate = %v", ca["spec"])
				}
				if str(r.customNamed(t, "Issuer", fullname+"-ca"), "spec", "ca", "secretName") != str(ca, "spec", "secretName") {
					t.Errorf("the CA Issuer does not use the CA certificate's Secret")
				}
				serving := r.customNamed(t, "Certificate", fullname+"-serving")
				if str(serving, "spec", "issuerRef", "name") != fullname+"-ca" || str(serving, "spec", "issuerRef", "kind") != "Issuer" {
					t.Errorf("serving certificate issuerRef = %v", get(serving, "spec", "issuerRef"))
				}
				if str(serving, "spec", "privateKey", "algorithm") != "ECDSA" {
					t.Errorf("privateKey = %v, want ECDSA", get(serving, "spec", "privateKey"))
				}
				var dns []string
				for _, n := range get(serving, "spec", "dnsNames").([]any) {
					dns = append(dns, n.(string))
				}
				svc := one(t, "Service", r.services).Name
				wantDNS := []string{svc, svc + "." + r.ns, svc + "." + r.ns + ".svc", svc + "." + r.ns + ".svc.cluster.local"}
				if !slices.Equal(dns, wantDNS) {
					t.Errorf("dnsNames = %v, want %v", dns, wantDNS)
				}
				secret := str(serving, "spec", "secretName")
				if secret != fullname+"-serving-tls" {
					t.Errorf("serving Secret = %s, want %s-serving-tls (distinct from self-signed mode's Secret)", secret, fullname)
				}
				if !mountsSecretAt(r, secret, "/certs") {
					t.Errorf("the serving Secret %s is not mounted at /certs", secret)
				}
				for _, w := range r.webhooks(t) {
					if got := w.annotations["cert-manager.io/inject-ca-from"]; got != r.ns+"/"+fullname+"-serving" {
						t.Errorf("%s inject-ca-from = %q, want %s/%s-serving", w.kind, got, r.ns, fullname)
					}
				}
				if _, self := argValue(r.args(t), "--self-signed-certs"); self {
					t.Errorf("cert-manager mode must not pass --self-signed-certs")
				}
			},
		},
		{
			behaviour: "cert-manager mode with an existing issuer renders only the serving certificate",
			args:      ci("certmanager-existing-issuer-values.yaml"),
			check: func(t *testing.T, r *rendered) {
				if n := len(r.customOfKind("Issuer")); n != 0 {
					t.Errorf("no Issuer expected, got %d", n)
				}
				serving := r.customNamed(t, "Certificate", fullname+"-serving")
				if n := len(r.customOfKind("Certificate")); n != 1 {
					t.Errorf("want only the serving Certificate, got %d", n)
				}
				if got := get(serving, "spec", "issuerRef"); str(serving, "spec", "issuerRef", "name") != "cluster-ca" || str(serving, "spec", "issuerRef", "kind") != "ClusterIssuer" {
					t.Errorf("issuerRef = %v, want ClusterIssuer cluster-ca", got)
				}
				if str(serving, "spec", "privateKey", "algorithm") != "RSA" || get(serving, "spec", "privateKey", "size") != float64(2048) {
					t.Errorf("privateKey = %v, want RSA 2048", get(serving, "spec", "privateKey"))
				}
				for _, w := range r.webhooks(t) {
					if w.annotations["cert-manager.io/inject-ca-from"] != r.ns+"/"+fullname+"-serving" {
						t.Errorf("%s lacks inject-ca-from", w.kind)
					}
				}
			},
		},
		{
			behaviour: "self-signed mode renders no cert-manager objects and passes the self-signed flags",
			args:      ci("selfsigned-values.yaml"),
			check: func(t *testing.T, r *rendered) {
				for _, o := range r.custom {
					if strings.HasPrefix(o["apiVersion"].(string), "cert-manager.io/") {
						t.Errorf("cert-manager object rendered in self-signed mode: %v %v", o["kind"], str(o, "metadata", "name"))
					}
				}
				for _, w := range r.webhooks(t) {
					if _, ok := w.annotations["cert-manager.io/inject-ca-from"]; ok {
						t.Errorf("%s has inject-ca-from in self-signed mode", w.kind)
					}
				}
				args := r.args(t)
				want := map[string]string{
					"--self-signed-certs":                "",
					"--cert-secret-name":                 fullname + "-tls",
					"--service-name":                     one(t, "Service", r.services).Name,
					"--mutating-webhook-configuration":   one(t, "MutatingWebhookConfiguration", r.mutating).Name,
					"--validating-webhook-configuration": one(t, "ValidatingWebhookConfiguration", r.validating).Name,
					"--cert-validity":                    "2160h",
					"--ca-validity":                      "26280h",
					"--cluster-domain":                   "cluster.example",
				}
				for flag, v := range want {
					if got, ok := argValue(args, flag); !ok || got != v {
						t.Errorf("%s = %q (present %v), want %q; args %v", flag, got, ok, v, args)
					}
				}
				secret := one(t, "Secret", r.secrets)
				if secret.Name != fullname+"-tls" || len(secret.Data)+len(secret.StringData) != 0 {
					t.Errorf("want the empty Secret %s-tls, got %s with %d keys", fullname, secret.Name, len(secret.Data))
				}
				if secret.Annotations["helm.sh/resource-policy"] != "" {
					t.Errorf("the certificate Secret should be removed on uninstall")
				}
				// The binary writes /certs itself from the Secret (no kubelet projection delay).
				if mountsSecretAt(r, secret.Name, "/certs") {
					t.Errorf("self-signed mode must not mount the Secret at /certs")
				}
				var certsDir bool
				for _, v := range r.deployment(t).Spec.Template.Spec.Volumes {
					if v.Name == "certs" && v.EmptyDir != nil && v.Secret == nil {
						certsDir = true
					}
				}
				for _, m := range r.container(t).VolumeMounts {
					if m.Name == "certs" && (m.MountPath != "/certs" || m.ReadOnly) {
						certsDir = false
					}
				}
				if !certsDir {
					t.Errorf("/certs must be a writable emptyDir in self-signed mode")
				}
			},
		},
		{
			behaviour: "self-signed mode scopes secret and webhook write access by resourceNames",
			args:      ci("selfsigned-values.yaml"),
			check: func(t *testing.T, r *rendered) {
				role := one(t, "Role", r.roles)
				// Exactly the rules of certs/README.md: list/watch are name-scoped because the
				// binary's watches carry the field selector metadata.name=<name>.
				wantRole := []string{
					"/secrets get " + fullname + "-tls",
					"/secrets list " + fullname + "-tls",
					"/secrets update " + fullname + "-tls",
					"/secrets watch " + fullname + "-tls",
				}
				if got := ruleTuples(role.Rules); !slices.Equal(got, wantRole) {
					t.Errorf("Role rules = %v\nwant %v", got, wantRole)
				}
				rb := one(t, "RoleBinding", r.roleBindings)
				if rb.RoleRef.Kind != "Role" || rb.RoleRef.Name != role.Name {
					t.Errorf("RoleBinding roleRef = %+v", rb.RoleRef)
				}
				wantCluster := []string{
					"admissionregistration.k8s.io/mutatingwebhookconfigurations get " + fullname,
					"admissionregistration.k8s.io/mutatingwebhookconfigurations list " + fullname,
					"admissionregistration.k8s.io/mutatingwebhookconfigurations patch " + fullname,
					"admissionregistration.k8s.io/mutatingwebhookconfigurations watch " + fullname,
					"admissionregistration.k8s.io/validatingwebhookconfigurations get " + fullname,
					"admissionregistration.k8s.io/validatingwebhookconfigurations list " + fullname,
					"admissionregistration.k8s.io/validatingwebhookconfigurations patch " + fullname,
					"admissionregistration.k8s.io/validatingwebhookconfigurations watch " + fullname,
				}
				if got := ruleTuples(r.clusterRole(t, fullname+"-certs").Rules); !slices.Equal(got, wantCluster) {
					t.Errorf("certs ClusterRole rules = %v\nwant %v", got, wantCluster)
				}
				if len(r.clusterRoles) != 3 || len(r.clusterBindings) != 3 {
					t.Errorf("want the read-only, the certs and the failure-policy ClusterRoles (and bindings), got %d/%d", len(r.clusterRoles), len(r.clusterBindings))
				}
				for _, w := range r.webhooks(t) {
					if len(w.clientConfig.CABundle) != 0 {
						t.Errorf("%s: no caBundle can be known without a cluster", w.kind)
					}
				}
			},
		},
		{
			behaviour: "with failurePolicy Fail the binary may get and update its own two webhook configurations, by name, and nothing else",
			check: func(t *testing.T, r *rendered) {
				want := []string{
					"admissionregistration.k8s.io/mutatingwebhookconfigurations get " + fullname,
					"admissionregistration.k8s.io/mutatingwebhookconfigurations update " + fullname,
					"admissionregistration.k8s.io/validatingwebhookconfigurations get " + fullname,
					"admissionregistration.k8s.io/validatingwebhookconfigurations update " + fullname,
				}
				cr := r.clusterRole(t, fullname+"-failure-policy")
				if got := ruleTuples(cr.Rules); !slices.Equal(got, want) {
					t.Errorf("failure-policy ClusterRole rules = %v\nwant %v", got, want)
				}
				bound := false
				for _, b := range r.clusterBindings {
					if b.RoleRef.Name == cr.Name && len(b.Subjects) == 1 && b.Subjects[0].Name == fullname && b.Subjects[0].Namespace == r.ns {
						bound = true
					}
				}
				if !bound {
					t.Errorf("no ClusterRoleBinding binds %s to the ServiceAccount %s/%s", cr.Name, r.ns, fullname)
				}
			},
		},
		{
			behaviour: "with failurePolicy Ignore there is nothing to switch: no --failure-policy and no write access to the webhook configurations",
			args:      ci("warn-ignore-values.yaml"),
			check: func(t *testing.T, r *rendered) {
				for _, flag := range []string{"--failure-policy", "--mutating-webhook-configuration", "--validating-webhook-configuration"} {
					if v, ok := argValue(r.args(t), flag); ok {
						t.Errorf("%s=%s passed with failurePolicy Ignore in cert-manager mode", flag, v)
					}
				}
				for _, cr := range r.clusterRoles {
					for _, tuple := range ruleTuples(cr.Rules) {
						if strings.Contains(tuple, "webhookconfigurations") {
							t.Errorf("ClusterRole %s grants %s with failurePolicy Ignore", cr.Name, tuple)
						}
					}
				}
			},
		},
		{
			behaviour: "inline policies become a ConfigMap mounted at /policies without a rollout checksum",
			args:      ci("inline-policies-values.yaml"),
			check: func(t *testing.T, r *rendered) {
				cm := one(t, "ConfigMap", r.configMaps)
				if cm.Name != fullname+"-policies" || !strings.Contains(cm.Data["runtime.rego"], "package runtimeguard") || cm.Data["data.yaml"] == "" {
					t.Errorf("ConfigMap %s data keys %v", cm.Name, slices.Sorted(maps.Keys(cm.Data)))
				}
				if v, ok := argValue(r.args(t), "--policies"); !ok || v != "/policies" {
					t.Errorf("--policies = %q (present %v)", v, ok)
				}
				if !mountsConfigMapAt(r, cm.Name, "/policies") {
					t.Errorf("ConfigMap %s not mounted as a directory at /policies", cm.Name)
				}
				for k := range r.deployment(t).Spec.Template.Annotations {
					if strings.Contains(k, "checksum") {
						t.Errorf("pod template has %s: policy changes must hot-reload, not roll pods", k)
					}
				}
			},
		},
		{
			behaviour: "an existing policy ConfigMap is mounted at /policies and none is created",
			args:      ci("existing-configmap-values.yaml"),
			check: func(t *testing.T, r *rendered) {
				if len(r.configMaps) != 0 {
					t.Errorf("the chart must not create a ConfigMap, got %d", len(r.configMaps))
				}
				if !mountsConfigMapAt(r, "team-runtime-policies", "/policies") {
					t.Errorf("team-runtime-policies not mounted at /policies")
				}
				if v, _ := argValue(r.args(t), "--policies"); v != "/policies" {
					t.Errorf("--policies = %q", v)
				}
			},
		},
		{
			behaviour: "RuntimeClasses are not created by default",
			check: func(t *testing.T, r *rendered) {
				if len(r.runtimeClasses) != 0 {
					t.Errorf("got %d RuntimeClasses", len(r.runtimeClasses))
				}
			},
		},
		{
			behaviour: "enabled RuntimeClasses are created with their handler, overhead and scheduling",
			args:      ci("runtimeclasses-values.yaml"),
			check: func(t *testing.T, r *rendered) {
				got := map[string]nodev1.RuntimeClass{}
				for _, rc := range r.runtimeClasses {
					got[rc.Name] = rc
				}
				if len(got) != 2 {
					t.Errorf("want gvisor and kata (nvidia disabled), got %v", slices.Sorted(maps.Keys(got)))
				}
				gv, kata := got["gvisor"], got["kata"]
				if gv.Handler != "runsc" || kata.Handler != "kata-qemu" {
					t.Errorf("handlers gvisor=%q kata=%q", gv.Handler, kata.Handler)
				}
				if gv.Overhead == nil || gv.Overhead.PodFixed.Memory().String() != "64Mi" || kata.Overhead == nil || kata.Overhead.PodFixed.Cpu().String() != "250m" {
					t.Errorf("overheads gvisor=%+v kata=%+v", gv.Overhead, kata.Overhead)
				}
				if gv.Scheduling == nil || gv.Scheduling.NodeSelector["sandbox.runtimeguard.io/gvisor"] != "true" || len(gv.Scheduling.Tolerations) != 1 {
					t.Errorf("gvisor scheduling = %+v", gv.Scheduling)
				}
				if v, _ := argValue(r.args(t), "--require-advertised-handlers"); v != "true" {
					t.Errorf("--require-advertised-handlers = %q, want true", v)
				}
			},
		},
		{
			behaviour: "the NetworkPolicy opens the webhook port to all and metrics only to the selected namespaces",
			args:      ci("networkpolicy-servicemonitor-values.yaml"),
			check: func(t *testing.T, r *rendered) {
				np := one(t, "NetworkPolicy", r.netpols)
				if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}) {
					t.Errorf("policyTypes = %v", np.Spec.PolicyTypes)
				}
				if !selects(np.Spec.PodSelector.MatchLabels, r.deployment(t).Spec.Template.Labels) {
					t.Errorf("podSelector does not select the webhook pods")
				}
				var webhookOpen, metricsScoped bool
				for _, rule := range np.Spec.Ingress {
					for _, p := range rule.Ports {
						switch p.Port.String() {
						case "webhook":
							webhookOpen = len(rule.From) == 0
						case "metrics":
							metricsScoped = len(rule.From) == 1 && rule.From[0].NamespaceSelector != nil &&
								rule.From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] == "observability" &&
								rule.From[0].PodSelector != nil
						}
					}
				}
				if !webhookOpen || !metricsScoped {
					t.Errorf("ingress = %+v (webhook open %v, metrics scoped %v)", np.Spec.Ingress, webhookOpen, metricsScoped)
				}
				if len(np.Spec.Egress) != 1 || len(np.Spec.Egress[0].To) != 1 || np.Spec.Egress[0].To[0].IPBlock == nil ||
					np.Spec.Egress[0].To[0].IPBlock.CIDR != "10.0.0.10/32" || np.Spec.Egress[0].Ports[0].Port.IntValue() != 6443 {
					t.Errorf("egress = %+v, want only the API server 10.0.0.10/32:6443", np.Spec.Egress)
				}
			},
		},
		{
			behaviour: "the ServiceMonitor scrapes /metrics on the metrics port of the webhook Service",
			args:      ci("networkpolicy-servicemonitor-values.yaml"),
			check: func(t *testing.T, r *rendered) {
				sms := r.customOfKind("ServiceMonitor")
				if len(sms) != 1 {
					t.Fatalf("want 1 ServiceMonitor, got %d", len(sms))
				}
				sm := sms[0]
				if sm["apiVersion"] != "monitoring.coreos.com/v1" || str(sm, "metadata", "labels", "release") != "kube-prometheus-stack" {
					t.Errorf("ServiceMonitor metadata = %v", sm["metadata"])
				}
				eps := get(sm, "spec", "endpoints").([]any)
				ep := eps[0].(map[string]any)
				if ep["port"] != "metrics" || ep["path"] != "/metrics" || ep["interval"] != "15s" {
					t.Errorf("endpoint = %v", ep)
				}
				svc := one(t, "Service", r.services)
				sel := map[string]string{}
				for k, v := range get(sm, "spec", "selector", "matchLabels").(map[string]any) {
					sel[k] = v.(string)
				}
				if !selects(sel, svc.Labels) {
					t.Errorf("ServiceMonitor selector %v does not match the Service labels %v", sel, svc.Labels)
				}
			},
		},
		{
			behaviour: "NetworkPolicy and ServiceMonitor are off by default",
			check: func(t *testing.T, r *rendered) {
				if len(r.netpols) != 0 || len(r.customOfKind("ServiceMonitor")) != 0 {
					t.Errorf("got %d NetworkPolicies and %d ServiceMonitors", len(r.netpols), len(r.customOfKind("ServiceMonitor")))
				}
			},
		},
		{
			behaviour: "an image digest wins over the tag",
			args:      []string{"--set", "image.digest=sha256:" + strings.Repeat("ab", 32)},
			check: func(t *testing.T, r *rendered) {
				if want := "ghcr.io/runtimeguard/runtimeguard@sha256:" + strings.Repeat("ab", 32); r.container(t).Image != want {
					t.Errorf("image = %s, want %s", r.container(t).Image, want)
				}
			},
		},
		{
			behaviour: "the chart renders for the oldest supported Kubernetes, 1.30",
			args:      []string{"--kube-version", "1.30.0"},
			check:     func(t *testing.T, r *rendered) { r.deployment(t) },
		},
	}
	for _, tc := range cases {
		t.Run(tc.behaviour, func(t *testing.T) {
			t.Parallel()
			ns := tc.ns
			if ns == "" {
				ns = defaultNS
			}
			r := render(t, ns, tc.args...)
			checkInvariants(t, r)
			tc.check(t, r)
		})
	}
}

func TestInvalidValuesAreRejected(t *testing.T) {
	cases := []struct {
		behaviour string
		args      []string
		want      []string
	}{
		{"a typo'd top-level key is rejected by the schema",
			[]string{"--set", "replicaCoutn=3"}, []string{"additional properties 'replicaCoutn' not allowed"}},
		{"a typo'd nested key is rejected by the schema",
			[]string{"--set", "webhook.failurPolicy=Ignore"}, []string{"/webhook", "'failurPolicy' not allowed"}},
		{"a string replica count is rejected by the schema",
			[]string{"--set", "replicaCount=two"}, []string{"/replicaCount", "want integer"}},
		{"an unknown enforcement mode is rejected by the schema",
			[]string{"--set", "enforcement=block"}, []string{"/enforcement", "'enforce', 'warn'"}},
		{"an unknown workload review mode is rejected by the schema",
			[]string{"--set", "workloads.review=deny"}, []string{"/workloads/review", "'enforce', 'warn', 'off'"}},
		{"a logDecisions that is not a boolean is rejected by the schema",
			[]string{"--set-string", "logDecisions=yes"}, []string{"/logDecisions", "want boolean"}},
		{"an unknown failurePolicy is rejected by the schema",
			[]string{"--set", "webhook.failurePolicy=Sometimes"}, []string{"/webhook/failurePolicy", "'Fail', 'Ignore'"}},
		{"a webhook timeout above the API server maximum of 30s is rejected",
			[]string{"--set", "webhook.timeoutSeconds=31"}, []string{"/webhook/timeoutSeconds", "maximum"}},
		{"an evalTimeout that is not a ms/s duration is rejected",
			[]string{"--set", "evalTimeout=1m"}, []string{"/evalTimeout", "does not match pattern"}},
		{"an ECDSA key with an RSA size is rejected",
			[]string{"--set", "certManager.privateKey.size=2048"}, []string{"/certManager/privateKey/size", "256, 384, 521"}},
		{"a policy file name that is not a valid ConfigMap key is rejected",
			[]string{"--set-string", "policies.inline.dir/x\\.rego=x"}, []string{"invalid propertyName 'dir/x.rego'"}},
		{"inline policies and an existing ConfigMap are mutually exclusive",
			[]string{"--set-string", "policies.inline.a\\.rego=package a", "--set", "policies.existingConfigMap=mine"},
			[]string{"policies.inline and policies.existingConfigMap are mutually exclusive"}},
		{"an issuerRef together with the chart's own issuers is rejected",
			[]string{"--set", "certManager.issuerRef.name=corp-ca"},
			[]string{"certManager.issuerRef and certManager.createIssuers=true are mutually exclusive"}},
		{"turning off the chart's issuers without an issuerRef is rejected",
			[]string{"--set", "certManager.createIssuers=false"},
			[]string{"certManager.createIssuers=false requires certManager.issuerRef.name"}},
		{"an issuerRef in self-signed mode is rejected",
			[]string{"--set", "certManager.enabled=false", "--set", "certManager.createIssuers=false", "--set", "certManager.issuerRef.name=corp-ca"},
			[]string{"certManager.issuerRef is set but certManager.enabled=false"}},
		{"an evalTimeout above half the webhook timeout is rejected",
			[]string{"--set", "evalTimeout=3s"}, []string{"evalTimeout (3s) must be at most half of webhook.timeoutSeconds (5s)"}},
		{"a grace period that cannot cover the preStop sleep and a drain is rejected",
			[]string{"--set", "terminationGracePeriodSeconds=15"},
			[]string{"terminationGracePeriodSeconds (15) must exceed preStopSleepSeconds + webhook.timeoutSeconds (15)"}},
		{"a self-signed certificate outliving its CA is rejected",
			[]string{"--set", "certManager.enabled=false", "--set", "selfSignedCerts.certValidity=50000h"},
			[]string{"selfSignedCerts.certValidity (50000h) must not exceed selfSignedCerts.caValidity (43800h)"}},
		{"a self-signed validity that is not whole hours is rejected",
			[]string{"--set", "certManager.enabled=false", "--set", "selfSignedCerts.caValidity=5y"},
			[]string{"/selfSignedCerts/caValidity", "does not match pattern"}},
		{"an existing ServiceAccount without a name is rejected",
			[]string{"--set", "serviceAccount.create=false"}, []string{"serviceAccount.create=false requires serviceAccount.name"}},
		{"a string UID in the container securityContext is rejected by the schema",
			[]string{"--set", "securityContext.runAsUser=nobody"}, []string{"/securityContext/runAsUser", "want integer"}},
		{"a typo'd podSecurityContext key is rejected by the schema",
			[]string{"--set", "podSecurityContext.runAsUsr=1000"}, []string{"/podSecurityContext", "'runAsUsr' not allowed"}},
		{"a hostNetwork that is not a boolean is rejected by the schema",
			[]string{"--set-string", "hostNetwork=yes"}, []string{"/hostNetwork", "want boolean"}},
		{"a port above 65535 is rejected by the schema",
			[]string{"--set", "ports.webhook=70000"}, []string{"/ports/webhook", "maximum"}},
		{"two equal ports are rejected",
			[]string{"--set", "ports.metrics=8081"}, []string{"ports.webhook (9443), ports.metrics (8081) and ports.health (8081) must differ"}},
		{"an extraArgs entry that is not a --flag is rejected by the schema",
			[]string{"--set", "extraArgs={max-staleness=5m}"}, []string{"/extraArgs/0", "does not match pattern"}},
		{"extraArgs that set a port the chart derives are rejected",
			[]string{"--set", "extraArgs={--port=8443}"}, []string{"extraArgs must not set --port", "ports.webhook"}},
		{"an extraEnv entry without a name is rejected by the schema",
			[]string{"--set", "extraEnv[0].value=x"}, []string{"/extraEnv/0", "missing property 'name'"}},
		{"extraEnv cannot replace POD_NAMESPACE",
			[]string{"--set", "extraEnv[0].name=POD_NAMESPACE", "--set", "extraEnv[0].value=other"}, []string{"extraEnv must not set POD_NAMESPACE"}},
		{"a goMemLimit percentage above 100 is rejected by the schema",
			[]string{"--set", "goMemLimit.limitPercent=150"}, []string{"/goMemLimit/limitPercent", "maximum"}},
		{"a goMemLimit value in Kubernetes syntax is rejected (Go wants MiB)",
			[]string{"--set", "goMemLimit.value=200Mi"}, []string{"/goMemLimit/value", "does not match pattern"}},
		{"GOMEMLIMIT without a memory limit to derive it from is rejected",
			[]string{"--set", "resources.limits.memory=null"}, []string{"goMemLimit.enabled derives GOMEMLIMIT from resources.limits.memory, which is not set"}},
		{"a memory limit GOMEMLIMIT cannot be derived from is rejected",
			[]string{"--set-string", "resources.limits.memory=1e9"}, []string{"cannot derive GOMEMLIMIT from resources.limits.memory=1e9"}},
		{"a PrometheusRule switch that is not a boolean is rejected by the schema",
			[]string{"--set-string", "prometheusRule.enabled=true"}, []string{"/prometheusRule/enabled", "want boolean"}},
		{"a PrometheusRule duration that Prometheus cannot parse is rejected by the schema",
			[]string{"--set", "prometheusRule.policyStaleFor=10 minutes"}, []string{"/prometheusRule/policyStaleFor", "does not match pattern"}},
		{"a dashboard label that is not a string is rejected by the schema",
			[]string{"--set", "grafanaDashboard.labels.grafana_dashboard=1"}, []string{"/grafanaDashboard/labels/grafana_dashboard", "want string"}},
		{"Kubernetes older than 1.30 is rejected by the chart's kubeVersion",
			[]string{"--kube-version", "1.29.9"}, []string{"kubeVersion: >=1.30.0-0", "incompatible"}},
	}
	for _, tc := range cases {
		t.Run(tc.behaviour, func(t *testing.T) {
			t.Parallel()
			out, stderr, err := helm(t, templateArgs(t, defaultNS, tc.args...)...)
			if err == nil {
				t.Fatalf("helm template %v rendered, want an error mentioning %q\n%.300s", tc.args, tc.want, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("error does not mention %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// TestNotesExplainHowToCheckTheInstall renders NOTES.txt (which `helm template` does not
// print, and `helm install --dry-run` needs a cluster for) by copying the chart and wrapping
// the notes in a ConfigMap.
func TestNotesExplainHowToCheckTheInstall(t *testing.T) {
	notes, err := os.ReadFile(filepath.Join(chartDir(t), "templates", "NOTES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	dir := chartCopy(t, map[string]string{
		"NOTES.txt":      "",
		"_testnotes.tpl": "{{- define \"test.notes\" }}" + string(notes) + "{{- end }}\n",
		"testnotes.yaml": configMapOf(`{{ include "test.notes" . | quote }}`),
	})
	cases := []struct {
		behaviour string
		args      []string
		want      []string
		wantNot   []string
	}{
		{"the default notes show rollout, certificate, smoke-test and recovery commands", nil,
			[]string{"kubectl -n runtimeguard rollout status deployment/runtimeguard",
				"get certificate runtimeguard-serving",
				"runtimeguard.io/tenancy=untrusted", "{.spec.runtimeClassName}",
				"port-forward deployment/runtimeguard 8080:8080",
				"kubectl delete mutatingwebhookconfiguration,validatingwebhookconfiguration runtimeguard"},
			[]string{"WARNING"}},
		{"self-signed Ignore mode notes skip the certificate and the Fail recovery hint",
			[]string{"--set", "certManager.enabled=false", "--set", "webhook.failurePolicy=Ignore"},
			[]string{"certificates=self-signed", "rollout status"},
			[]string{"get certificate", "failurePolicy is Fail"}},
		{"a single replica is warned about", []string{"--set", "replicaCount=1"},
			[]string{"WARNING: replicaCount=1"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.behaviour, func(t *testing.T) {
			got := renderProbe(t, dir, "testnotes.yaml", tc.args...)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("NOTES lack %q:\n%s", w, got)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(got, w) {
					t.Errorf("NOTES should not contain %q:\n%s", w, got)
				}
			}
		})
	}
}

// chartCopy copies the chart to a temporary directory and replaces files under templates/
// (an empty content removes the file). It lets tests render helpers that `helm template`
// cannot reach on its own.
func chartCopy(t *testing.T, templates map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "runtimeguard")
	if err := os.CopyFS(dir, os.DirFS(chartDir(t))); err != nil {
		t.Fatal(err)
	}
	for name, content := range templates {
		path := filepath.Join(dir, "templates", name)
		var err error
		if content == "" {
			err = os.Remove(path)
		} else {
			err = os.WriteFile(path, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// configMapOf is a test template: a ConfigMap whose data.out is the quoted expression.
func configMapOf(expr string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: probe\ndata:\n  out: " + expr + "\n"
}

// renderProbe renders templates/probe.yaml of a chart copy and returns its data.out.
func renderProbe(t *testing.T, dir, show string, args ...string) string {
	t.Helper()
	all := append([]string{"template", releaseName, dir, "--namespace", defaultNS, "--show-only", "templates/" + show}, args...)
	out, stderr, err := helm(t, all...)
	if err != nil {
		t.Fatalf("rendering %s: %v\n%s", show, err, stderr)
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict([]byte(out), &cm); err != nil {
		t.Fatal(err)
	}
	return cm.Data["out"]
}

// TestSelfSignedCABundleComesFromTheSecret covers the helper that copies the self-signed
// Secret's ca-bundle.crt into clientConfig.caBundle. `helm template` has no cluster (lookup
// returns nothing), so the helper is fed Secret objects directly.
func TestSelfSignedCABundleComesFromTheSecret(t *testing.T) {
	cases := []struct {
		behaviour string
		secret    string
		want      string
	}{
		{"a Secret with a bundle yields its base64 data as caBundle",
			`(dict "data" (dict "ca-bundle.crt" "Q0EgUEVN" "tls.crt" "eA=="))`, "\ncaBundle: Q0EgUEVN"},
		{"a freshly created empty Secret yields no caBundle", `(dict "metadata" (dict "name" "x"))`, ""},
		{"no Secret (lookup without a cluster) yields no caBundle", `(dict)`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.behaviour, func(t *testing.T) {
			t.Parallel()
			dir := chartCopy(t, map[string]string{"probe.yaml": configMapOf(
				`{{ include "runtimeguard.caBundleFromSecret" (dict "secret" ` + tc.secret + `) | quote }}`)})
			if got := renderProbe(t, dir, "probe.yaml"); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestInlinePolicyExampleCompiles checks that the policy shipped in
// ci/inline-policies-values.yaml compiles and yields a decision, so the example stays usable.
// The chart itself never parses Rego; this only guards the example.
func TestInlinePolicyExampleCompiles(t *testing.T) {
	opa := filepath.Join(tools.ForTest(t, "opa"), "opa")
	raw, err := os.ReadFile(ciFile(t, "inline-policies-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Policies struct {
			Inline map[string]string `json:"inline"`
		} `json:"policies"`
	}
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, content := range values.Policies.Inline {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	input := filepath.Join(t.TempDir(), "input.json")
	if err := os.WriteFile(input, []byte(`{"namespace":{"name":"t1","labels":{"runtimeguard.io/tenancy":"untrusted"}},"pod":{},"cluster":{"runtimeClasses":{"gvisor":{"available":true}}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(opa, "eval", "--format=raw", "-d", dir, "-i", input, "data.runtimeguard.decision.class").CombinedOutput()
	if err != nil {
		t.Fatalf("opa eval: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "gvisor" {
		t.Errorf("decision.class for an untrusted namespace = %q, want gvisor", got)
	}
}

// TestValuesAreDocumented checks that every key of values.yaml has a comment right above
// it, except the entries of free-form maps (resource quantities, labels, overheads).
func TestValuesAreDocumented(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir(t), "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	freeForm := map[string]bool{"requests": true, "limits": true, "matchLabels": true, "overhead": true}
	keyLine := regexp.MustCompile(`^( *)([A-Za-z][A-Za-z0-9_.-]*):( |$)`)
	type frame struct {
		indent int
		key    string
	}
	var stack []frame
	prev := ""
	checked := 0
	for i, line := range strings.Split(string(data), "\n") {
		m := keyLine.FindStringSubmatch(line)
		if m != nil {
			indent := len(m[1])
			for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
				stack = stack[:len(stack)-1]
			}
			inFreeForm := len(stack) > 0 && freeForm[stack[len(stack)-1].key]
			if !inFreeForm {
				checked++
				if !strings.HasPrefix(strings.TrimSpace(prev), "#") {
					path := ""
					for _, f := range stack {
						path += f.key + "."
					}
					t.Errorf("values.yaml:%d: %s%s has no comment above it", i+1, path, m[2])
				}
			}
			stack = append(stack, frame{indent, m[2]})
		}
		if strings.TrimSpace(line) != "" {
			prev = line
		}
	}
	if checked < 50 {
		t.Errorf("only %d documented keys found: is the parser still reading values.yaml?", checked)
	}
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func mountsSecretAt(r *rendered, secret, path string) bool {
	return mountsVolumeAt(r, path, func(v corev1.Volume) bool {
		return v.Secret != nil && v.Secret.SecretName == secret
	})
}

func mountsConfigMapAt(r *rendered, cm, path string) bool {
	return mountsVolumeAt(r, path, func(v corev1.Volume) bool {
		return v.ConfigMap != nil && v.ConfigMap.Name == cm
	})
}

// mountsVolumeAt reports whether the container mounts, read-only and as a whole directory
// (no subPath, so updates propagate), a volume matching match at path.
func mountsVolumeAt(r *rendered, path string, match func(corev1.Volume) bool) bool {
	d := r.deployments[0]
	for _, v := range d.Spec.Template.Spec.Volumes {
		if !match(v) {
			continue
		}
		for _, m := range d.Spec.Template.Spec.Containers[0].VolumeMounts {
			if m.Name == v.Name && m.MountPath == path && m.SubPath == "" && m.ReadOnly {
				return true
			}
		}
	}
	return false
}

// containerPorts maps the container's port names to their numbers.
func containerPorts(c *corev1.Container) map[string]int32 {
	out := map[string]int32{}
	for _, p := range c.Ports {
		out[p.Name] = p.ContainerPort
	}
	return out
}
