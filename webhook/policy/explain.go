package policy

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// ExplainQuery is the document `runtimeguard explain` and `eval --trace` read: a per-class trace
// of the decision (policies/explain.rego). Admission never evaluates it.
const ExplainQuery = "data.runtimeguard.explain"

// explainQuery is the explain query of one program, prepared on first use: admission never pays
// for it.
type explainQuery struct {
	once  sync.Once
	query rego.PreparedEvalQuery
	err   error
}

// DefinesExplain reports whether a module of set defines data.runtimeguard.explain.
func DefinesExplain(set *Set) bool {
	want := ast.MustParseRef(ExplainQuery)
	for _, m := range set.Modules {
		for _, r := range m.Rules {
			// A rule's ref is relative to the package, or already absolute once loaded.
			if r.Ref().GroundPrefix().Equal(want) || m.Package.Path.Extend(r.Ref()).Equal(want) {
				return true
			}
		}
	}
	return false
}

// Data returns the data document of the current policy set (data.config and the like). Callers
// must not modify it.
func (e *Engine) Data() map[string]any {
	if p := e.current.Load(); p != nil && p.set != nil {
		return p.set.Data
	}
	return nil
}

// Explain evaluates data.runtimeguard.explain for req against the current policy set, with the
// same input, capabilities and timeout as Decide. It is never cached. An error says so when the
// set defines no explain rule.
func (e *Engine) Explain(ctx context.Context, req Request) (map[string]any, error) {
	prog := e.current.Load()
	if prog.set == nil {
		return nil, errors.New("the policy set was not kept: cannot explain")
	}
	prog.explain.once.Do(func() {
		if !DefinesExplain(prog.set) {
			prog.explain.err = errors.New("no module defines data.runtimeguard.explain (policies/explain.rego)")
			return
		}
		prog.explain.query, prog.explain.err = prepare(ctx, prog.set, ExplainQuery)
	})
	if prog.explain.err != nil {
		return nil, prog.explain.err
	}
	pod, err := podTerm(req.Pod)
	if err != nil {
		return nil, err
	}
	clusterValue, err := clusterTerm(req.Cluster)
	if err != nil {
		return nil, err
	}
	input := ast.NewObject(
		ast.Item(keyOperation, ast.StringTerm(req.Operation)),
		ast.Item(keyNamespace, namespaceTerm(req.Namespace)),
		ast.Item(keyPod, pod),
		ast.Item(keyCluster, clusterValue),
	)
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	rs, err := prog.explain.query.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		return nil, fmt.Errorf("explain evaluation failed: %w", err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) == 0 {
		return nil, errors.New("data.runtimeguard.explain is undefined for this input")
	}
	out, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("data.runtimeguard.explain is %s, want an object", typeName(rs[0].Expressions[0].Value))
	}
	return out, nil
}

// prepare compiles query over set with the options Compile uses for the decision.
func prepare(ctx context.Context, set *Set, query string) (rego.PreparedEvalQuery, error) {
	data := set.Data
	if data == nil {
		data = map[string]any{} // a Set built from modules alone
	}
	opts := []func(*rego.Rego){
		rego.Query(query),
		rego.Capabilities(Capabilities()),
		rego.StrictBuiltinErrors(true),
		rego.SetRegoVersion(ast.RegoV1),
		rego.Store(inmem.NewFromObject(data)),
	}
	for _, m := range set.Modules {
		opts = append(opts, rego.ParsedModule(m))
	}
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return rego.PreparedEvalQuery{}, explainForbidden(err)
	}
	return pq, nil
}
