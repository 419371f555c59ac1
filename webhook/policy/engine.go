package policy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

// Query is the document runtimeguard reads.
const Query = "data.runtimeguard.decision"

// DefaultTimeout bounds one evaluation; well under the webhook's default 5 s timeout.
const DefaultTimeout = time.Second

// program is one compiled policy set.
type program struct {
	query      rego.PreparedEvalQuery
	generation uint64
	files      []string
	// set is what query was compiled from; explain (explain.go) prepares its own query on it.
	set     *Set
	explain explainQuery
}

// Engine evaluates the current policy set. Safe for concurrent use; Swap replaces the policy
// set atomically while evaluations run.
type Engine struct {
	timeout time.Duration
	current atomic.Pointer[program]
	gens    atomic.Uint64

	clusterMu    sync.Mutex
	clusterCache atomic.Pointer[clusterEntry]

	cache decisionCache
}

type clusterEntry struct {
	generation uint64
	term       *ast.Term
}

// NewEngine compiles set; timeout <= 0 means DefaultTimeout.
func NewEngine(ctx context.Context, set *Set, timeout time.Duration) (*Engine, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	e := &Engine{timeout: timeout}
	if err := e.Swap(ctx, set); err != nil {
		return nil, err
	}
	return e, nil
}

// Compile compiles a policy set against runtimeguard's restricted capabilities and checks that
// it defines the decision. Errors carry file:row.
func Compile(ctx context.Context, set *Set) (rego.PreparedEvalQuery, error) {
	data := set.Data
	if data == nil { // inmem panics on a nil root
		data = map[string]any{}
	}
	opts := []func(*rego.Rego){
		rego.Query(Query),
		rego.Capabilities(Capabilities()),
		rego.StrictBuiltinErrors(true),
		rego.SetRegoVersion(ast.RegoV1),
		rego.Store(inmem.NewFromObject(data)),
	}
	for _, m := range set.Modules {
		opts = append(opts, rego.ParsedModule(m))
	}
	r := rego.New(opts...)
	pq, err := r.PrepareForEval(ctx)
	if err != nil {
		return rego.PreparedEvalQuery{}, explainForbidden(err)
	}
	if !definesDecision(set) {
		return rego.PreparedEvalQuery{}, errors.New("no module defines data.runtimeguard.decision (package runtimeguard, rule decision)")
	}
	return pq, nil
}

func definesDecision(set *Set) bool {
	want := ast.MustParseRef(Query)
	for _, m := range set.Modules {
		for _, r := range m.Rules {
			if r.Ref().GroundPrefix().Equal(want) || m.Package.Path.Extend(r.Ref()).Equal(want) {
				return true
			}
		}
	}
	return false
}

// Swap compiles set and, only if that succeeds, makes it the current policy. A broken set
// leaves the previous one serving.
func (e *Engine) Swap(ctx context.Context, set *Set) error {
	pq, err := Compile(ctx, set)
	if err != nil {
		return err
	}
	e.current.Store(&program{query: pq, generation: e.gens.Add(1), files: set.Files, set: set})
	return nil
}

// Files lists the files of the current policy set.
func (e *Engine) Files() []string { return e.current.Load().files }

// Request is one thing to decide.
type Request struct {
	Operation string
	Namespace *cluster.Namespace
	Pod       *Pod
	Cluster   *cluster.Snapshot
}

// Decide evaluates the policy for req, serving repeated inputs from the cache. The returned
// Decision is shared: callers must not modify it.
func (e *Engine) Decide(ctx context.Context, req Request) (*Decision, error) {
	d, _, err := e.decide(ctx, req)
	return d, err
}

// DecideTraced is Decide that also reports whether the cache answered (for metrics and tests).
func (e *Engine) DecideTraced(ctx context.Context, req Request) (*Decision, bool, error) {
	return e.decide(ctx, req)
}

func (e *Engine) decide(ctx context.Context, req Request) (*Decision, bool, error) {
	prog := e.current.Load()
	pod, err := podTerm(req.Pod)
	if err != nil {
		return nil, false, err
	}
	key := ast.ArrayTerm(ast.StringTerm(req.Operation), namespaceTerm(req.Namespace), pod)
	gen := generation{policy: prog.generation, cluster: req.Cluster.Generation}
	if d := e.cache.get(gen, key); d != nil {
		return d, true, nil
	}
	clusterValue, err := e.clusterTerm(req.Cluster)
	if err != nil {
		return nil, false, err
	}
	input := ast.NewObject(
		ast.Item(keyOperation, key.Value.(*ast.Array).Elem(0)),
		ast.Item(keyNamespace, key.Value.(*ast.Array).Elem(1)),
		ast.Item(keyPod, pod),
		ast.Item(keyCluster, clusterValue),
	)
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	rs, err := prog.query.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, fmt.Errorf("policy evaluation did not finish within %s: %w", e.timeout, err)
		}
		return nil, false, fmt.Errorf("policy evaluation failed: %w", err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, false, errors.New("data.runtimeguard.decision is undefined for this input: a policy must always define it")
	}
	if len(rs) > 1 {
		return nil, false, errors.New("data.runtimeguard.decision has more than one value: a policy must define exactly one")
	}
	d, err := parseDecision(rs[0].Expressions[0].Value)
	if err != nil {
		return nil, false, fmt.Errorf("policy returned the wrong shape: %w", err)
	}
	e.cache.put(gen, key, d)
	return d, false, nil
}

func (e *Engine) clusterTerm(s *cluster.Snapshot) (*ast.Term, error) {
	if c := e.clusterCache.Load(); c != nil && c.generation == s.Generation {
		return c.term, nil
	}
	e.clusterMu.Lock()
	defer e.clusterMu.Unlock()
	if c := e.clusterCache.Load(); c != nil && c.generation == s.Generation {
		return c.term, nil
	}
	t, err := clusterTerm(s)
	if err != nil {
		return nil, err
	}
	e.clusterCache.Store(&clusterEntry{generation: s.Generation, term: t})
	return t, nil
}
