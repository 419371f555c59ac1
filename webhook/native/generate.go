package native

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// Names of the generated objects.
const (
	PolicyName = "runtimeguard-pods"
	// WorkloadsPolicyName judges the Pod templates of workloads; templates are never mutated.
	WorkloadsPolicyName = "runtimeguard-workloads"
	// ParamsName is the ConfigMap holding each class's availability: data[class] is "true"
	// when the class can run Pods now.
	ParamsName = "runtimeguard-native-params"
)

// Labels and annotations the generated policies read, as the webhook does (webhook/pipeline.go).
const (
	ignoreLabel      = "runtimeguard.io/ignore"
	enforcementLabel = "runtimeguard.io/enforcement"
	mirrorAnnotation = "kubernetes.io/config.mirror"
)

// Options say where the policies apply.
type Options struct {
	// Namespace is runtimeguard's own namespace: exempt like kube-system, and where the
	// parameter ConfigMap lives.
	Namespace string
	// Warn makes warn mode the default: only namespaces labelled
	// runtimeguard.io/enforcement=enforce are denied (otherwise only those labelled warn are
	// warned).
	Warn bool
	// Available is each class's availability for the parameter ConfigMap; nil leaves the
	// ConfigMap out (serve keeps it current).
	Available map[string]bool
	// Extra names what the policy set holds beyond the data the native policies are generated
	// from (custom Rego modules): each is listed as a limitation.
	Extra []string
}

// Bundle is the native form of the default policy.
type Bundle struct {
	Validating         *admissionregistrationv1.ValidatingAdmissionPolicy
	ValidatingBindings []*admissionregistrationv1.ValidatingAdmissionPolicyBinding
	// Workloads judges Deployments, StatefulSets, DaemonSets, ReplicaSets,
	// ReplicationControllers, Jobs and CronJobs by their Pod template.
	Workloads         *admissionregistrationv1.ValidatingAdmissionPolicy
	WorkloadsBindings []*admissionregistrationv1.ValidatingAdmissionPolicyBinding
	Mutating          *admissionregistrationv1.MutatingAdmissionPolicy
	MutatingBinding   *admissionregistrationv1.MutatingAdmissionPolicyBinding
	// Params is nil unless Options.Available was given.
	Params *corev1.ConfigMap
	// Limitations say what the native policies do not do that the webhook does.
	Limitations []string
}

// Always lists what no native policy can do, whatever the data.
var Always = []string{
	"placement: the native policies judge a class by its cluster-wide availability; the webhook judges it on the nodes the Pod's nodeName, nodeSelector, node affinity and tolerations leave",
	"warnings: misspelt runtimeguard.io/ labels and unresolved resource claims draw no warning",
	"reasons: no audit annotations explain the decision",
}

type config struct {
	Traits  map[string]policy.Trait `json:"traits"`
	Classes []policy.ClassDef       `json:"classes"`
}

// Generate builds the native policies from the policy data (the document whose "config" the
// default policy reads). What they cannot express is left out and listed in Limitations;
// the rest is still generated.
func Generate(data map[string]any, opts Options) (*Bundle, error) {
	raw, err := json.Marshal(data["config"])
	if err != nil {
		return nil, err
	}
	var cfg config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("data.config: %w", err)
	}
	g := &generator{cfg: cfg}
	g.limitations = append(g.limitations, Always...)
	for _, name := range opts.Extra {
		g.limitf("custom policy %s: Rego beyond data.config is not translated; the native policies apply only the data-driven default", name)
	}
	g.prepare()
	variables := g.variables(podObject)
	b := &Bundle{
		// An UPDATE that leaves the Pod template alone (a scale, a status or label change) is
		// not decided, as in the webhook.
		Workloads: validatingPolicy(WorkloadsPolicyName, workloadWrites(), []admissionregistrationv1.MatchCondition{{
			Name:       "creates-or-changes-the-template",
			Expression: `request.operation == "CREATE" || (has(object.spec.jobTemplate) ? object.spec.jobTemplate.spec.template != oldObject.spec.jobTemplate.spec.template : object.spec.template != oldObject.spec.template)`,
		}}, g.variables(workloadTemplate), g.validations(workloadTemplate)),
		Validating: validatingPolicy(PolicyName, podCreates(), notMirror(), variables, g.validations(podObject)),
		Mutating: &admissionregistrationv1.MutatingAdmissionPolicy{
			TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingAdmissionPolicy"},
			ObjectMeta: metav1.ObjectMeta{Name: PolicyName},
			Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
				ParamKind:        &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"},
				MatchConstraints: podCreates(),
				MatchConditions: append(notMirror(), admissionregistrationv1.MatchCondition{
					Name:       "names-no-class",
					Expression: `!has(object.spec.runtimeClassName) || object.spec.runtimeClassName == ""`,
				}),
				// An error must not let a Pod through without its class: the validating
				// policy would deny it anyway, with a message; Fail says why sooner.
				FailurePolicy:      ptr(admissionregistrationv1.Fail),
				ReinvocationPolicy: admissionregistrationv1.NeverReinvocationPolicy,
				Variables:          variables,
				Mutations: []admissionregistrationv1.Mutation{{
					PatchType: admissionregistrationv1.PatchTypeJSONPatch,
					JSONPatch: &admissionregistrationv1.JSONPatch{
						Expression: `variables.chosen == "" ? [] : [JSONPatch{op: "add", path: "/spec/runtimeClassName", value: variables.chosen}]`,
					},
				}},
			},
		},
	}
	paramRef := func(action admissionregistrationv1.ParameterNotFoundActionType) *admissionregistrationv1.ParamRef {
		return &admissionregistrationv1.ParamRef{Name: ParamsName, Namespace: opts.Namespace, ParameterNotFoundAction: &action}
	}
	enforced, warned := metav1.LabelSelectorOpNotIn, metav1.LabelSelectorOpIn
	enforcedValues, warnedValues := []string{"warn"}, []string{"warn"}
	if opts.Warn {
		enforced, warned = metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn
		enforcedValues, warnedValues = []string{"enforce"}, []string{"enforce"}
	}
	// Without the parameter object every class counts as unavailable: Pods that need a class
	// are denied (saying so), the others are untouched. Deny here would block every Pod.
	allow := admissionregistrationv1.AllowAction
	// Each validating policy is bound twice: Deny where enforced, Warn where in warn mode.
	bind := func(policy string) []*admissionregistrationv1.ValidatingAdmissionPolicyBinding {
		return []*admissionregistrationv1.ValidatingAdmissionPolicyBinding{
			vapBinding(policy, "-enforce", opts.Namespace, enforced, enforcedValues, admissionregistrationv1.Deny, paramRef(allow)),
			vapBinding(policy, "-warn", opts.Namespace, warned, warnedValues, admissionregistrationv1.Warn, paramRef(allow)),
		}
	}
	b.ValidatingBindings, b.WorkloadsBindings = bind(PolicyName), bind(WorkloadsPolicyName)
	b.MutatingBinding = &admissionregistrationv1.MutatingAdmissionPolicyBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingAdmissionPolicyBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: PolicyName},
		Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{
			PolicyName: PolicyName,
			ParamRef:   paramRef(allow),
			// Warn mode injects nothing, as in the webhook.
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: exemptions(opts.Namespace, enforced, enforcedValues)},
		},
	}
	if opts.Available != nil {
		b.Params = Params(opts.Namespace, opts.Available)
		for name := range opts.Available {
			if errs := validation.IsConfigMapKey(name); len(errs) > 0 {
				g.limitf("class %q cannot be a ConfigMap key (%s): it never counts as available", name, strings.Join(errs, "; "))
			}
		}
	}
	b.Limitations = g.limitations
	return b, nil
}

// Params is the parameter ConfigMap for the given availability.
func Params(namespace string, available map[string]bool) *corev1.ConfigMap {
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: ParamsName, Namespace: namespace, Labels: map[string]string{"app.kubernetes.io/managed-by": "runtimeguard"}},
		Data:       map[string]string{},
	}
	for name, ok := range available {
		if len(validation.IsConfigMapKey(name)) == 0 {
			cm.Data[name] = strconv.FormatBool(ok)
		}
	}
	return cm
}

func podCreates() *admissionregistrationv1.MatchResources {
	return &admissionregistrationv1.MatchResources{
		ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
			RuleWithOperations: admissionregistrationv1.RuleWithOperations{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"},
				},
			},
		}},
	}
}

// workloadWrites are the workload kinds the webhook reviews (webhook/workload.go).
func workloadWrites() *admissionregistrationv1.MatchResources {
	ops := []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}
	rule := func(group string, resources ...string) admissionregistrationv1.NamedRuleWithOperations {
		return admissionregistrationv1.NamedRuleWithOperations{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
			Operations: ops,
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{group}, APIVersions: []string{"v1"}, Resources: resources},
		}}
	}
	return &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{
		rule("apps", "deployments", "statefulsets", "daemonsets", "replicasets"),
		rule("", "replicationcontrollers"),
		rule("batch", "jobs", "cronjobs"),
	}}
}

func notMirror() []admissionregistrationv1.MatchCondition {
	return []admissionregistrationv1.MatchCondition{{
		Name:       "not-a-mirror-pod",
		Expression: fmt.Sprintf(`!has(object.metadata.annotations) || !(%s in object.metadata.annotations)`, strconv.Quote(mirrorAnnotation)),
	}}
}

// exemptions selects the namespaces the webhook decides in: not kube-system, not
// runtimeguard's own, not labelled runtimeguard.io/ignore=true; and by enforcement mode.
func exemptions(namespace string, op metav1.LabelSelectorOperator, values []string) *metav1.LabelSelector {
	exempt := []string{"kube-system"}
	if namespace != "" && namespace != "kube-system" {
		exempt = append(exempt, namespace)
	}
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpNotIn, Values: exempt},
		{Key: ignoreLabel, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"true"}},
		{Key: enforcementLabel, Operator: op, Values: values},
	}}
}

// validatingPolicy is one of the generated ValidatingAdmissionPolicies: parameters from the
// ConfigMap, failing closed on an error.
func validatingPolicy(name string, match *admissionregistrationv1.MatchResources, conditions []admissionregistrationv1.MatchCondition,
	variables []admissionregistrationv1.Variable, validations []admissionregistrationv1.Validation) *admissionregistrationv1.ValidatingAdmissionPolicy {
	return &admissionregistrationv1.ValidatingAdmissionPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			ParamKind:        &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"},
			MatchConstraints: match,
			MatchConditions:  conditions,
			FailurePolicy:    ptr(admissionregistrationv1.Fail),
			Variables:        variables,
			Validations:      validations,
		},
	}
}

// vapBinding binds policy (named policy+suffix) in the namespaces the exemptions and the
// enforcement label select.
func vapBinding(policy, suffix, namespace string, op metav1.LabelSelectorOperator, values []string, action admissionregistrationv1.ValidationAction, ref *admissionregistrationv1.ParamRef) *admissionregistrationv1.ValidatingAdmissionPolicyBinding {
	return &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicyBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: policy + suffix},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        policy,
			ParamRef:          ref,
			MatchResources:    &admissionregistrationv1.MatchResources{NamespaceSelector: exemptions(namespace, op, values)},
			ValidationActions: []admissionregistrationv1.ValidationAction{action},
		},
	}
}

func ptr[T any](v T) *T { return &v }

// generator turns data.config into CEL. Traits are handled in name order so the output is
// stable; classes keep their data order (the price order's last tie-breaker).
type generator struct {
	cfg         config
	traits      []string
	ranked      []policy.ClassDef
	limitations []string
}

func (g *generator) limitf(format string, args ...any) {
	g.limitations = append(g.limitations, fmt.Sprintf(format, args...))
}

// prepare orders traits and classes and records what cannot be expressed.
func (g *generator) prepare() {
	for name, t := range g.cfg.Traits {
		g.traits = append(g.traits, name)
		if len(t.DeviceClasses) > 0 {
			g.limitf("trait %s: device_classes (%s) are not read: resolving a Pod's resource claims needs the ResourceClaimTemplates and ResourceClaims, which a native policy cannot look up", name, strings.Join(t.DeviceClasses, ", "))
		}
	}
	slices.Sort(g.traits)
	// The price order of runtimeguard.rego's ranked: classes without a GPU first, then lowest
	// isolation, then data order.
	g.ranked = slices.Clone(g.cfg.Classes)
	slices.SortStableFunc(g.ranked, func(a, b policy.ClassDef) int {
		if a.GPU != b.GPU {
			if a.GPU {
				return 1
			}
			return -1
		}
		return a.Isolation - b.Isolation
	})
}

func q(s string) string { return strconv.Quote(s) }

// traitVar names the variable holding a trait's sources, in the denials' words.
func traitVar(i int) string { return fmt.Sprintf("trait%d", i) }

// podSource says where the policy finds the Pod: the object itself, or a workload's template.
type podSource struct {
	// meta and spec are CEL expressions of the Pod's metadata and spec.
	meta, spec string
	// prefix starts a denial, as the webhook words it for this kind of object.
	prefix string
	// first are variables the others read (the workload's template).
	first []admissionregistrationv1.Variable
}

var (
	podObject = podSource{meta: "object.metadata", spec: "object.spec", prefix: `"pod rejected: "`}
	// workloadTemplate: a CronJob's Pod template is under spec.jobTemplate, every other
	// workload's under spec.template.
	workloadTemplate = podSource{
		meta: "variables.template.metadata", spec: "variables.template.spec",
		prefix: `object.kind.lowerAscii() + " \"" + object.metadata.name + "\": its pods would be rejected: "`,
		first: []admissionregistrationv1.Variable{{
			Name:       "template",
			Expression: `has(object.spec.jobTemplate) ? object.spec.jobTemplate.spec.template : object.spec.template`,
		}},
	}
)

func (g *generator) variables(src podSource) []admissionregistrationv1.Variable {
	vars := slices.Clone(src.first)
	add := func(name, expr string) {
		vars = append(vars, admissionregistrationv1.Variable{Name: name, Expression: expr})
	}
	add("prefix", src.prefix)
	add("namespaceLabels", `has(namespaceObject.metadata.labels) ? namespaceObject.metadata.labels : {}`)
	add("podLabels", fmt.Sprintf(`has(%[1]s.labels) ? %[1]s.labels : {}`, src.meta))
	add("containers", fmt.Sprintf(`%[1]s.containers + (has(%[1]s.initContainers) ? %[1]s.initContainers : [])`, src.spec))
	var gpuTraits, isolations []string
	for i, name := range g.traits {
		t := g.cfg.Traits[name]
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(t.NamespaceLabels)) {
			v := t.NamespaceLabels[k]
			parts = append(parts, fmt.Sprintf(`(%s in variables.namespaceLabels && variables.namespaceLabels[%s] == %s ? ["namespace \"" + namespaceObject.metadata.name + "\" is " + %s] : [])`,
				q(k), q(k), q(v), q(k+"="+v)))
		}
		for _, k := range slices.Sorted(maps.Keys(t.PodLabels)) {
			v := t.PodLabels[k]
			parts = append(parts, fmt.Sprintf(`(%s in variables.podLabels && variables.podLabels[%s] == %s ? [%s] : [])`,
				q(k), q(k), q(v), q("pod label "+k+"="+v)))
		}
		for _, r := range t.ExtendedResources {
			// max(request, limit) > 0, as webhook/policy reads extended resources.
			parts = append(parts, fmt.Sprintf(`variables.containers.filter(c, has(c.resources) && ((has(c.resources.requests) && %[1]s in c.resources.requests && quantity(c.resources.requests[%[1]s]).isGreaterThan(quantity("0"))) || (has(c.resources.limits) && %[1]s in c.resources.limits && quantity(c.resources.limits[%[1]s]).isGreaterThan(quantity("0"))))).map(c, "container \"" + c.name + "\" requests " + %[1]s)`, q(r)))
		}
		if len(parts) == 0 {
			parts = []string{"[]"}
		}
		add(traitVar(i), strings.Join(parts, " + "))
		if t.Requires.GPU {
			gpuTraits = append(gpuTraits, fmt.Sprintf("size(variables.%s) > 0", traitVar(i)))
		}
		if t.Requires.Isolation > 0 {
			isolations = append(isolations, fmt.Sprintf("(size(variables.%s) > 0 ? %d : 0)", traitVar(i), t.Requires.Isolation))
		}
	}
	add("requiredIsolation", fmt.Sprintf("[%s].max()", strings.Join(append(isolations, "0"), ", ")))
	add("requiredGPU", orFalse(gpuTraits))
	add("hasRequirement", "variables.requiredIsolation > 0 || variables.requiredGPU")
	var sources []string
	for i := range g.traits {
		sources = append(sources, "variables."+traitVar(i))
	}
	if len(sources) == 0 {
		sources = []string{"[]"}
	}
	add("sources", strings.Join(sources, " + "))
	add("requirementText", `variables.requiredIsolation > 0 && variables.requiredGPU ? "isolation >= " + string(variables.requiredIsolation) + " and a GPU runtime" : variables.requiredGPU ? "a GPU runtime" : "isolation >= " + string(variables.requiredIsolation)`)
	isoOf, gpuOf, ranked := make([]string, 0, len(g.ranked)), make([]string, 0, len(g.ranked)), make([]string, 0, len(g.ranked))
	for _, c := range g.ranked {
		isoOf = append(isoOf, fmt.Sprintf("%s: %d", q(c.Name), c.Isolation))
		gpuOf = append(gpuOf, fmt.Sprintf("%s: %t", q(c.Name), c.GPU))
		ranked = append(ranked, q(c.Name))
	}
	add("isolationOf", "{"+strings.Join(isoOf, ", ")+"}")
	add("gpuOf", "{"+strings.Join(gpuOf, ", ")+"}")
	add("candidates", fmt.Sprintf("[%s].filter(n, variables.isolationOf[n] >= variables.requiredIsolation && (!variables.requiredGPU || variables.gpuOf[n]))", strings.Join(ranked, ", ")))
	add("available", `variables.candidates.filter(n, params != null && has(params.data) && n in params.data && params.data[n] == "true")`)
	add("chosen", `variables.hasRequirement && size(variables.available) > 0 ? variables.available[0] : ""`)
	add("named", fmt.Sprintf(`has(%[1]s.runtimeClassName) ? %[1]s.runtimeClassName : ""`, src.spec))
	// A class the data does not describe provides isolation 0 and no GPU.
	add("namedIsolation", `variables.named in variables.isolationOf ? variables.isolationOf[variables.named] : 0`)
	add("namedGPU", `variables.named in variables.gpuOf && variables.gpuOf[variables.named]`)
	add("suggested", `size(variables.available) > 0 ? variables.available[0] : size(variables.candidates) > 0 ? variables.candidates[0] : ""`)
	var unmet []string
	for i, name := range g.traits {
		t := g.cfg.Traits[name]
		unmet = append(unmet, fmt.Sprintf(`(variables.namedIsolation >= %d && (%t == false || variables.namedGPU) ? [] : variables.%s.map(s, s + ", which needs " + %s))`,
			t.Requires.Isolation, t.Requires.GPU, traitVar(i), q(needsText(t))))
	}
	if len(unmet) == 0 {
		unmet = []string{"[]"}
	}
	add("unmet", strings.Join(unmet, " + "))
	return vars
}

// validations judge the Pod; for a workload's template, a missing class is fine while one is
// available (its Pods get it injected; templates are never mutated).
func (g *generator) validations(src podSource) []admissionregistrationv1.Validation {
	missing := `!variables.hasRequirement || variables.named != ""`
	if src.spec != podObject.spec {
		missing = `!variables.hasRequirement || variables.named != "" || size(variables.available) > 0`
	}
	return []admissionregistrationv1.Validation{
		{
			Expression: missing,
			MessageExpression: `size(variables.available) > 0 ?
  variables.prefix + variables.sources.join(" and ") + ", which needs " + variables.requirementText + "; spec.runtimeClassName is not set; set it to \"" + variables.available[0] + "\" (the MutatingAdmissionPolicy ` + PolicyName + ` does this)" :
  variables.prefix + variables.sources.join(" and ") + ", which needs " + variables.requirementText + ", but no runtime class that provides it is available (" + (size(variables.candidates) > 0 ? variables.candidates.join(", ") + ": not available in ` + ParamsName + `" : "no class in data.config.classes provides it") + "); install the runtime on a node and make it advertise the handler, or create the RuntimeClass"`,
			Reason: ptr(metav1.StatusReasonForbidden),
		},
		{
			// The webhook's own check that a named class can run Pods now: the parameter
			// object says so for every RuntimeClass in the cluster.
			Expression:        `variables.named == "" || params == null || !has(params.data) || !(variables.named in params.data) || params.data[variables.named] == "true"`,
			MessageExpression: `variables.prefix + "spec.runtimeClassName is \"" + variables.named + "\", but no Ready node runs that class's handler (` + ParamsName + ` says it is unavailable); run the handler on a node, or remove spec.runtimeClassName to let runtimeguard choose"`,
			Reason:            ptr(metav1.StatusReasonForbidden),
		},
		{
			Expression:        `variables.named == "" || size(variables.unmet) == 0`,
			MessageExpression: `variables.prefix + variables.unmet.join(" and ") + " (" + (variables.suggested != "" ? "runtime class \"" + variables.suggested + "\" or stronger" : "no runtime class in data.config.classes provides it") + "); spec.runtimeClassName is \"" + variables.named + "\"; " + (variables.suggested != "" ? "remove spec.runtimeClassName to let runtimeguard choose, or set it to \"" + variables.suggested + "\"" : "describe a class that provides it in data.config.classes")`,
			Reason:            ptr(metav1.StatusReasonForbidden),
		},
	}
}

// needsText is runtimeguard.rego's needs_text: what one trait needs, in the denials' words.
func needsText(t policy.Trait) string {
	switch {
	case t.Requires.Isolation > 0 && t.Requires.GPU:
		return fmt.Sprintf("isolation >= %d and a GPU runtime", t.Requires.Isolation)
	case t.Requires.GPU:
		return "a GPU runtime"
	}
	return fmt.Sprintf("isolation >= %d", t.Requires.Isolation)
}

func orFalse(terms []string) string {
	if len(terms) == 0 {
		return "false"
	}
	return strings.Join(terms, " || ")
}

// YAML is the bundle as one multi-document YAML stream, in the order kubectl should apply it
// (policies before their bindings).
func (b *Bundle) YAML() ([]byte, error) {
	objs := []any{b.Validating}
	for _, binding := range b.ValidatingBindings {
		objs = append(objs, binding)
	}
	objs = append(objs, b.Workloads)
	for _, binding := range b.WorkloadsBindings {
		objs = append(objs, binding)
	}
	objs = append(objs, b.Mutating, b.MutatingBinding)
	if b.Params != nil {
		objs = append(objs, b.Params)
	}
	var out []byte
	for i, o := range objs {
		doc, err := yaml.Marshal(o)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			out = append(out, "---\n"...)
		}
		out = append(out, doc...)
	}
	return out, nil
}
