package policy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// precomputed holds the values of a policy set's rules that read neither input nor anything
// that changes between evaluations: the ranked classes, the known labels, lookup tables built
// from data. OPA derives them again on every evaluation (for the default policy, a fifth of a
// cache miss); they change only with the policy set, so they are evaluated once when it loads
// and handed to each evaluation through its virtual-document cache (seededCache).
type precomputed struct {
	// values is read-only once built: evaluations on many goroutines share it.
	values topdown.VirtualCache
	// docs are the documents that were evaluated, for tests and logs.
	docs []string
}

// precompute finds the input-independent documents of set and evaluates them within timeout
// (the bound of one evaluation). A set whose constant documents cannot be evaluated (one fails
// or takes too long) gets none: each evaluation then derives them itself, and reports the
// failure where admission can see it.
func precompute(ctx context.Context, set *compiledSet, docs []ast.Ref, timeout time.Duration) (*precomputed, error) {
	if len(docs) == 0 {
		return nil, nil
	}
	pq, err := prepareDocuments(ctx, set, docs)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	values := topdown.NewVirtualCache()
	if _, err := pq.Eval(ctx, rego.EvalVirtualCache(values)); err != nil {
		return nil, nil //nolint:nilerr // see the doc comment: evaluations report it
	}
	return &precomputed{values: values, docs: documentNames(docs)}, nil
}

// pureDocuments lists the rule documents (not functions) of set that depend on no input that
// changes per admission. constant: every rule of the document, and every rule or function it
// reaches, reads no input, uses no `with` and calls no nondeterministic builtin; such a document
// has one value per policy set. cluster: the same, except that it reads input.cluster (and is
// not constant); one value per policy set and cluster generation. c is the compiled set.
func pureDocuments(c *ast.Compiler) (constant, cluster []ast.Ref) {
	constant = documentsOf(c, false)
	cluster = slices.DeleteFunc(documentsOf(c, true), func(d ast.Ref) bool {
		return slices.ContainsFunc(constant, func(k ast.Ref) bool { return d.HasPrefix(k) })
	})
	return constant, cluster
}

// documentsOf lists the documents of c that read no input, or with cluster none but
// input.cluster.
func documentsOf(c *ast.Compiler, cluster bool) []ast.Ref {
	a := purity{compiler: c, verdict: map[*ast.Rule]bool{}, cluster: cluster}
	seen := map[string]bool{}
	var docs []ast.Ref
	for _, name := range slices.Sorted(maps.Keys(c.Modules)) {
		for _, rule := range c.Modules[name].Rules {
			if len(rule.Head.Args) > 0 {
				continue // a function: its calls are cached with their arguments when reached
			}
			doc := rule.Ref().GroundPrefix()
			key := doc.String()
			if seen[key] {
				continue
			}
			seen[key] = true
			if a.documentIsConstant(doc) {
				docs = append(docs, doc)
			}
		}
	}
	// known["a"] contains x and known[k] contains y are one document: evaluate it whole.
	all := slices.Clone(docs)
	return slices.DeleteFunc(docs, func(d ast.Ref) bool {
		return slices.ContainsFunc(all, func(other ast.Ref) bool { return len(other) < len(d) && d.HasPrefix(other) })
	})
}

type purity struct {
	compiler *ast.Compiler
	verdict  map[*ast.Rule]bool
	// cluster allows references under input.cluster.
	cluster bool
}

var inputClusterRef = ast.InputRootRef.Append(ast.InternedTerm("cluster"))

// documentIsConstant says whether every rule that can contribute to doc is constant.
func (p *purity) documentIsConstant(doc ast.Ref) bool {
	rules := p.compiler.GetRulesDynamic(doc)
	if len(rules) == 0 {
		return false
	}
	for _, r := range rules {
		if !p.ruleIsConstant(r) {
			return false
		}
	}
	return true
}

func (p *purity) ruleIsConstant(rule *ast.Rule) bool {
	if v, ok := p.verdict[rule]; ok {
		return v
	}
	p.verdict[rule] = false // Rego forbids recursion; this only guards the walk
	constant := true
	for r := rule; r != nil && constant; r = r.Else {
		constant = p.termsAreConstant(r)
	}
	p.verdict[rule] = constant
	return constant
}

// termsAreConstant checks one rule body and head (not its else).
func (p *purity) termsAreConstant(rule *ast.Rule) bool {
	constant := true
	var walk func(any)
	var check func(any) bool
	check = func(x any) bool {
		if !constant {
			return true
		}
		switch x := x.(type) {
		case *ast.Expr:
			if len(x.With) > 0 {
				constant = false
			}
			if x.IsCall() {
				if op := x.Operator(); !p.refIsConstant(op) {
					constant = false
				}
			}
		case ast.Var:
			// input or data whole, as in x := input
			if x.Equal(ast.InputRootDocument.Value) || x.Equal(ast.DefaultRootDocument.Value) {
				constant = false
			}
		case ast.Call:
			if op, ok := x[0].Value.(ast.Ref); ok && !p.refIsConstant(op) {
				constant = false
			}
		case ast.Ref:
			if !p.refIsConstant(x) {
				constant = false
			}
			// The head is judged with the whole ref (data there is not all of data);
			// the rest may hold references of its own.
			for _, t := range x[1:] {
				walk(t)
			}
			return true
		}
		return !constant
	}
	walk = func(x any) { ast.NewGenericVisitor(check).Walk(x) }
	walk(rule.Head)
	walk(rule.Body)
	return constant
}

// refIsConstant judges one reference: input never is, data is when the rules it can reach
// are, a builtin is unless it is nondeterministic or prints, a local variable is.
func (p *purity) refIsConstant(ref ast.Ref) bool {
	switch {
	case ref.HasPrefix(ast.InputRootRef):
		return p.cluster && ref.HasPrefix(inputClusterRef)
	case ref.HasPrefix(ast.DefaultRootRef):
		for _, r := range p.compiler.GetRulesDynamic(ref) {
			if !p.ruleIsConstant(r) {
				return false
			}
		}
		return true
	}
	if b, ok := ast.BuiltinMap[ref.String()]; ok {
		return !b.Nondeterministic && b.Name != ast.Print.Name && b.Name != ast.InternalPrint.Name && b.Name != ast.Trace.Name
	}
	return true
}

// seededCache is the virtual-document cache of one evaluation: OPA's own, in front of the
// precomputed values. Those answer only in the evaluation's base frame: a `with` pushes a
// frame, and under `with` a constant document may have another value.
type seededCache struct {
	seed  topdown.VirtualCache
	own   topdown.VirtualCache
	depth int
}

// newSeededCache answers from the cluster documents of the evaluation's cluster generation
// (which hold the constant ones too), or without them from the constant documents, then from
// the evaluation's own cache. Either may be nil.
func newSeededCache(constants *precomputed, cluster topdown.VirtualCache) topdown.VirtualCache {
	own := topdown.NewVirtualCache()
	switch {
	case cluster != nil:
		return &seededCache{seed: cluster, own: own}
	case constants != nil:
		return &seededCache{seed: constants.values, own: own}
	}
	return own
}

func (c *seededCache) Push() { c.depth++; c.own.Push() }

func (c *seededCache) Pop() { c.depth--; c.own.Pop() }

func (c *seededCache) Get(ref ast.Ref) (*ast.Term, bool) {
	if c.depth == 0 {
		if v, undefined := c.seed.Get(ref); v != nil || undefined {
			return v, undefined
		}
	}
	return c.own.Get(ref)
}

func (c *seededCache) Put(ref ast.Ref, value *ast.Term) { c.own.Put(ref, value) }

func (c *seededCache) Keys() []ast.Ref { return c.own.Keys() }

// clusterPlan evaluates a policy set's cluster documents (pureDocuments): per-class
// availability and the like, which OPA would otherwise derive again on every cache miss. They
// are evaluated once per cluster generation, on the first miss that needs them.
type clusterPlan struct {
	query rego.PreparedEvalQuery
	docs  []string
}

// planCluster prepares the query of set's cluster documents; nil when it has none. The query
// evaluates the constant documents too, so that one cache holds both and an evaluation looks
// a document up in two caches (this and its own), not three: a lookup per rule reached is a
// cost every cache miss pays.
func planCluster(ctx context.Context, set *compiledSet, docs, constant []ast.Ref) (*clusterPlan, error) {
	if len(docs) == 0 {
		return nil, nil
	}
	pq, err := prepareDocuments(ctx, set, append(slices.Clone(docs), constant...))
	if err != nil {
		return nil, err
	}
	return &clusterPlan{query: pq, docs: documentNames(docs)}, nil
}

// prepareDocuments prepares one query that reads every document of docs; a comprehension per
// document keeps an undefined one from making the whole query undefined.
func prepareDocuments(ctx context.Context, set *compiledSet, docs []ast.Ref) (rego.PreparedEvalQuery, error) {
	parts := make([]string, len(docs))
	for i, d := range docs {
		parts[i] = fmt.Sprintf("__c%d := [__x | __x := %s]", i, d)
	}
	return set.prepare(ctx, strings.Join(parts, "; "))
}

func documentNames(docs []ast.Ref) []string {
	names := make([]string, len(docs))
	for i, d := range docs {
		names[i] = d.String()
	}
	return names
}

// evaluate returns the values of the cluster and constant documents for the cluster term
// (input.cluster), or nil when they cannot be evaluated within timeout: each evaluation then
// derives them itself, and reports the failure where admission can see it.
func (p *clusterPlan) evaluate(ctx context.Context, cluster *ast.Term, timeout time.Duration) topdown.VirtualCache {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	values := topdown.NewVirtualCache()
	input := ast.NewObject(ast.Item(keyCluster, cluster))
	if _, err := p.query.Eval(ctx, rego.EvalVirtualCache(values), rego.EvalParsedInput(input)); err != nil {
		return nil
	}
	return values
}
