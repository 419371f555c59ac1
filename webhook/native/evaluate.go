package native

import (
	"context"
	"errors"
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/policy/mutating/patch"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/cel/environment"
	"k8s.io/client-go/kubernetes/scheme"
)

var (
	podsResource = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	podKind      = schema.GroupVersionKind{Version: "v1", Kind: "Pod"}
)

// Evaluator runs a Bundle in-process with the API server's own CEL admission libraries
// (k8s.io/apiserver), as kube-apiserver would: the mutating policy, then the validating one on
// its result. It is for `runtimeguard test`, which checks the native policies against the
// webhook's decisions; the cluster runs the real thing.
type Evaluator struct {
	bundle *Bundle
	mutate plugincel.MutatingEvaluator
	// mutateVars holds the mutating policy's variables: each evaluation gets a context from it.
	mutateVars *plugincel.CompositedCompiler
	mutateIf   matchconditions.Matcher
	validator  validating.Validator
}

// Result is what the API server would do with one Pod CREATE.
type Result struct {
	// Class is spec.runtimeClassName after the mutating policy ("" when none).
	Class    string
	Injected bool
	// Denials are the messages of failed validations bound with Deny; Warnings those bound
	// with Warn.
	Denials  []string
	Warnings []string
}

// NewEvaluator compiles b; a CEL compile error is returned, naming the expression.
func NewEvaluator(b *Bundle) (*Evaluator, error) {
	env := environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion())
	e := &Evaluator{bundle: b}

	// Compiled like k8s.io/apiserver/pkg/admission/plugin/policy/mutating's compilePolicy.
	mp := b.Mutating.Spec
	mopts := plugincel.OptionalVariableDeclarations{HasParams: mp.ParamKind != nil, HasAuthorizer: true}
	mc, err := plugincel.NewCompositedCompiler(env)
	if err != nil {
		return nil, err
	}
	mc.CompileAndStoreVariables(variables(mp.Variables), mopts, environment.StoredExpressions)
	e.mutateIf = matchconditions.NewMatcher(mc.CompileCondition(conditions(mp.MatchConditions), mopts, environment.StoredExpressions), mp.FailurePolicy, "policy", "mutate", b.Mutating.Name)
	popts := mopts
	popts.HasPatchTypes = true
	e.mutateVars = mc
	e.mutate = mc.CompileMutatingEvaluator(&patch.JSONPatchCondition{Expression: mp.Mutations[0].JSONPatch.Expression}, popts, environment.StoredExpressions)
	if errs := e.mutate.CompilationErrors(); len(errs) > 0 {
		return nil, fmt.Errorf("MutatingAdmissionPolicy %s: %w", b.Mutating.Name, errors.Join(errs...))
	}

	if e.validator, err = compileValidating(env, b.Validating); err != nil {
		return nil, err
	}
	// Compiled so that a CEL error in it surfaces here; suites hold Pods only.
	if _, err := compileValidating(env, b.Workloads); err != nil {
		return nil, err
	}
	return e, nil
}

// compileValidating compiles vap like k8s.io/apiserver/pkg/admission/plugin/policy/validating's
// compilePolicy.
func compileValidating(env *environment.EnvSet, vap *admissionregistrationv1.ValidatingAdmissionPolicy) (validating.Validator, error) {
	vp := vap.Spec
	vopts := plugincel.OptionalVariableDeclarations{HasParams: vp.ParamKind != nil, HasAuthorizer: true}
	msgOpts := plugincel.OptionalVariableDeclarations{HasParams: vp.ParamKind != nil}
	vc, err := plugincel.NewCompositedCompiler(env)
	if err != nil {
		return nil, err
	}
	vc.CompileAndStoreVariables(variables(vp.Variables), vopts, environment.StoredExpressions)
	validations := make([]plugincel.ExpressionAccessor, len(vp.Validations))
	messages := make([]plugincel.ExpressionAccessor, len(vp.Validations))
	for i, v := range vp.Validations {
		validations[i] = &validating.ValidationCondition{Expression: v.Expression, Message: v.Message, Reason: v.Reason}
		messages[i] = &validating.MessageExpressionCondition{MessageExpression: v.MessageExpression}
	}
	filter := vc.CompileCondition(validations, vopts, environment.StoredExpressions)
	messageFilter := vc.CompileCondition(messages, msgOpts, environment.StoredExpressions)
	matcher := vc.CompileCondition(conditions(vp.MatchConditions), vopts, environment.StoredExpressions)
	for _, f := range []plugincel.ConditionEvaluator{filter, messageFilter, matcher} {
		if errs := f.CompilationErrors(); len(errs) > 0 {
			return nil, fmt.Errorf("ValidatingAdmissionPolicy %s: %w", vap.Name, errors.Join(errs...))
		}
	}
	noAuditAnnotations := vc.CompileCondition(nil, vopts, environment.StoredExpressions)
	return validating.NewValidator(filter, matchconditions.NewMatcher(matcher, vp.FailurePolicy, "policy", "validate", vap.Name), noAuditAnnotations, messageFilter, vp.FailurePolicy, nil), nil
}

// Request is one Pod CREATE and what the API server knows when it admits it.
type Request struct {
	Pod       *corev1.Pod
	Namespace *corev1.Namespace
	// Params is the parameter ConfigMap; nil when it does not exist.
	Params *corev1.ConfigMap
	// RuntimeClasses are the RuntimeClasses that exist: the in-tree RuntimeClass admission
	// plugin, which runs between the mutating and the validating policies, rejects a Pod naming
	// any other.
	RuntimeClasses map[string]bool
}

// Evaluate decides one Pod CREATE as the API server's admission chain would.
func (e *Evaluator) Evaluate(ctx context.Context, r Request) (*Result, error) {
	ns, params := r.Namespace, r.Params
	pod := r.Pod.DeepCopy()
	pod.Namespace = ns.Name
	var versionedParams runtime.Object
	if params != nil {
		versionedParams = params
	}
	res := &Result{Class: deref(pod.Spec.RuntimeClassName)}
	if selects(e.bundle.MutatingBinding.Spec.MatchResources, ns) {
		attrs := attributes(pod)
		// As the API server's mutating dispatcher does: variables are evaluated lazily, once
		// per request, through this context.
		ctx := e.mutateVars.CreateContext(ctx)
		match := e.mutateIf.Match(ctx, attrs, versionedParams, nil)
		if match.Error != nil {
			return nil, match.Error
		}
		if match.Matches {
			out, err := patch.NewJSONPatcher(e.mutate).Patch(ctx, patch.Request{
				MatchedResource:     attrs.GetResource(),
				VersionedAttributes: attrs,
				ObjectInterfaces:    admission.NewObjectInterfacesFromScheme(scheme.Scheme),
				OptionalVariables:   plugincel.OptionalVariableBindings{VersionedParams: versionedParams},
				Namespace:           ns,
			}, celconfig.RuntimeCELCostBudget)
			if err != nil {
				return nil, fmt.Errorf("MutatingAdmissionPolicy %s: %w", e.bundle.Mutating.Name, err)
			}
			mutated, ok := out.(*corev1.Pod)
			if !ok {
				return nil, fmt.Errorf("MutatingAdmissionPolicy %s returned a %T", e.bundle.Mutating.Name, out)
			}
			if c := deref(mutated.Spec.RuntimeClassName); c != res.Class {
				res.Class, res.Injected = c, true
			}
			pod = mutated
		}
	}
	if res.Class != "" && !r.RuntimeClasses[res.Class] {
		// k8s.io/kubernetes plugin/pkg/admission/runtimeclass's message.
		res.Denials = append(res.Denials, fmt.Sprintf("pod rejected: RuntimeClass %q not found", res.Class))
		return res, nil
	}
	for _, binding := range e.bundle.ValidatingBindings {
		if !selects(binding.Spec.MatchResources, ns) {
			continue
		}
		result := e.validator.Validate(ctx, attributes(pod).GetResource(), attributes(pod), versionedParams, ns, celconfig.RuntimeCELCostBudget, nil)
		for _, d := range result.Decisions {
			switch {
			case d.Evaluation == validating.EvalError:
				return nil, fmt.Errorf("ValidatingAdmissionPolicy %s: %s", e.bundle.Validating.Name, d.Message)
			case d.Action != validating.ActionDeny:
				continue
			case binding.Spec.ValidationActions[0] == admissionregistrationv1.Deny:
				res.Denials = append(res.Denials, d.Message)
			default:
				res.Warnings = append(res.Warnings, d.Message)
			}
		}
	}
	return res, nil
}

func attributes(pod *corev1.Pod) *admission.VersionedAttributes {
	attrs := admission.NewAttributesRecord(pod, nil, podKind, pod.Namespace, pod.Name, podsResource, "",
		admission.Create, &metav1.CreateOptions{}, false, &user.DefaultInfo{Name: "runtimeguard-test"})
	return &admission.VersionedAttributes{Attributes: attrs, VersionedKind: podKind, VersionedObject: admission.NewLazyObject(pod)}
}

// selects says whether a binding's namespaceSelector selects ns, with the
// kubernetes.io/metadata.name label the API server sets on every namespace.
func selects(m *admissionregistrationv1.MatchResources, ns *corev1.Namespace) bool {
	if m == nil || m.NamespaceSelector == nil {
		return true
	}
	sel, err := metav1.LabelSelectorAsSelector(m.NamespaceSelector)
	if err != nil {
		return false
	}
	set := labels.Set{corev1.LabelMetadataName: ns.Name}
	for k, v := range ns.Labels {
		set[k] = v
	}
	return sel.Matches(set)
}

func variables(vs []admissionregistrationv1.Variable) []plugincel.NamedExpressionAccessor {
	out := make([]plugincel.NamedExpressionAccessor, len(vs))
	for i, v := range vs {
		out[i] = &validating.Variable{Name: v.Name, Expression: v.Expression}
	}
	return out
}

func conditions(cs []admissionregistrationv1.MatchCondition) []plugincel.ExpressionAccessor {
	out := make([]plugincel.ExpressionAccessor, len(cs))
	for i := range cs {
		out[i] = (*matchconditions.MatchCondition)(&cs[i])
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
