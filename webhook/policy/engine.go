package policy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

// DecisionQuery is the document admission reads.
const DecisionQuery = "data.runtimeguard.decision"

// DefaultTimeout bounds one evaluation; well under the webhook's default 5 s timeout.
const DefaultTimeout = time.Second

// program is one compiled policy set.
type program struct {
	decision rego.PreparedEvalQuery
	// faces are the queries for what the webhooks read (MutateFields, ValidateFields) and for
	// AllFields, when the policy defines the decision key by key; other Fields, or a decision
	// defined whole, evaluate the decision itself.
	faces      map[Fields]rego.PreparedEvalQuery
	generation uint64
	set        *Set
	hash       string
	// reads is what of labels and annotations the policy is given (data.config.reads).
	reads *Reads
	// trace is prepared on first use: admission never pays for it.
	trace lazyQuery
	// constants are the documents that depend only on the policy set, evaluated at load.
	constants *precomputed
	// cluster evaluates the documents that depend only on the policy set and input.cluster,
	// once per cluster generation (Engine.clusterValues); nil when there are none.
	cluster *clusterPlan
	// classes are the class names the data lists, read once per set for KnownClass.
	classes map[string]bool
}

// Engine evaluates the current policy set. Safe for concurrent use; Swap replaces the policy
// set atomically while evaluations run.
type Engine struct {
	timeout time.Duration
	current atomic.Pointer[program]
	gens    atomic.Uint64

	clusterMu    sync.Mutex
	clusterCache atomic.Pointer[clusterEntry]
	clusterDocs  atomic.Pointer[clusterDocsEntry]

	cache      decisionCache
	placements termMemo[*cluster.PodReach]
	namespaces termMemo[*cluster.Namespace]
}

type clusterEntry struct {
	generation uint64
	term       *ast.Term
}

// clusterDocsEntry holds the cluster documents of one policy and cluster generation; values is
// nil when they could not be evaluated.
type clusterDocsEntry struct {
	generation generation
	values     topdown.VirtualCache
}

// termMemo holds input terms per shared, never-modified object for one generation:
// input.placement per PodReach (View.Reach gives every Pod of a cluster generation that asks
// the same of its nodes one PodReach, and all that ask nothing the snapshot's) and
// input.namespace per Namespace (the view keeps each version of a Namespace as is). A
// decision-cache miss then finds them built: with 10 RuntimeClasses the placement alone is
// some 140 allocations.
type termMemo[K comparable] struct {
	mu         sync.Mutex
	generation uint64
	terms      map[K]*ast.Term
}

// maxMemoTerms bounds a memo: Pods pinned to one node each bring their own PodReach, and
// Namespaces fetched from the API server (not in the view) their own Namespace.
const maxMemoTerms = 1024

// term returns the term of k for generation, built by build on first use. A request of an
// older generation gets a term built for it alone.
func (m *termMemo[K]) term(k K, generation uint64, build func() *ast.Term) *ast.Term {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.generation != generation || m.terms == nil || len(m.terms) >= maxMemoTerms {
		if generation < m.generation {
			return build()
		}
		m.generation, m.terms = generation, make(map[K]*ast.Term)
	}
	t := m.terms[k]
	if t == nil {
		t = build()
		m.terms[k] = t
	}
	return t
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
	pq, err := prepare(ctx, set, DecisionQuery)
	if err != nil {
		return rego.PreparedEvalQuery{}, err
	}
	if !set.Defines(DecisionQuery) {
		return rego.PreparedEvalQuery{}, errors.New("no module defines data.runtimeguard.decision (package runtimeguard, rule decision)")
	}
	if _, err := set.Reads(); err != nil {
		return rego.PreparedEvalQuery{}, err
	}
	return pq, nil
}

// Reads returns what of labels and annotations the set's policy reads (data.config.reads),
// refusing a declaration that is malformed or that leaves out a key a module reads by name.
func (s *Set) Reads() (*Reads, error) {
	data := s.Data
	if data == nil {
		data = map[string]any{}
	}
	reads, err := readsOf(data)
	if err != nil {
		return nil, err
	}
	if err := checkReads(s, reads); err != nil {
		return nil, err
	}
	return reads, nil
}

// prepare compiles query over set: the one place that says how policies are compiled.
func prepare(ctx context.Context, set *Set, query string) (rego.PreparedEvalQuery, error) {
	opts := regoOptions(query, newStore(set))
	for _, m := range set.Modules {
		opts = append(opts, rego.ParsedModule(m))
	}
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return rego.PreparedEvalQuery{}, hintForbiddenBuiltin(err)
	}
	return pq, nil
}

func regoOptions(query string, store storage.Store) []func(*rego.Rego) {
	return []func(*rego.Rego){
		rego.Query(query),
		rego.Capabilities(Capabilities()),
		rego.StrictBuiltinErrors(true),
		rego.SetRegoVersion(ast.RegoV1),
		rego.Store(store),
	}
}

func newStore(set *Set) storage.Store {
	data := set.Data
	if data == nil { // inmem panics on a nil root
		data = map[string]any{}
	}
	return inmem.NewFromObjectWithOpts(data, inmem.OptReturnASTValuesOnRead(true))
}

// compiledSet is a policy set compiled once for the queries Swap prepares besides the decision
// (the webhooks' keys, the constant and cluster documents). prepare compiles every module
// again for each query, some 17 ms for the default policy; these were five such compiles on
// every load. The set has passed prepare (Compile) first, so it compiles here too.
type compiledSet struct {
	compiler *ast.Compiler
	store    storage.Store
}

func compileSet(set *Set) (*compiledSet, error) {
	c := ast.NewCompiler().
		WithCapabilities(Capabilities()).
		WithDefaultRegoVersion(ast.RegoV1)
	c.Compile(set.Modules)
	if c.Failed() {
		return nil, c.Errors
	}
	return &compiledSet{compiler: c, store: newStore(set)}, nil
}

// prepare compiles only query, against the compiled modules.
func (c *compiledSet) prepare(ctx context.Context, query string) (rego.PreparedEvalQuery, error) {
	return rego.New(append(regoOptions(query, c.store), rego.Compiler(c.compiler))...).PrepareForEval(ctx)
}

// Swap compiles set and, only if that succeeds, makes it the current policy. A broken set
// leaves the previous one serving.
func (e *Engine) Swap(ctx context.Context, set *Set) error {
	pq, err := Compile(ctx, set)
	if err != nil {
		return err
	}
	reads, err := set.Reads()
	if err != nil {
		return err
	}
	compiled, err := compileSet(set)
	if err != nil {
		return err
	}
	constantDocs, clusterDocs := pureDocuments(compiled.compiler)
	constants, err := precompute(ctx, compiled, constantDocs, e.timeout)
	if err != nil {
		return err
	}
	cluster, err := planCluster(ctx, compiled, clusterDocs, constantDocs)
	if err != nil {
		return err
	}
	// Only a decision defined key by key gains from evaluating some keys; one defined whole is
	// evaluated whole whatever is read, so it keeps one query and every key's shape checked.
	faces := map[Fields]rego.PreparedEvalQuery{}
	if whole, keys := set.definitions(DecisionQuery); keys && !whole {
		for _, f := range []Fields{MutateFields, ValidateFields, AllFields} {
			q, err := compiled.prepare(ctx, f.query())
			if err != nil {
				return err
			}
			faces[f] = q
		}
	}
	e.current.Store(&program{decision: pq, faces: faces, generation: e.gens.Add(1), set: set, hash: set.Hash(), reads: reads, constants: constants, cluster: cluster, classes: set.ClassNames()})
	return nil
}

// Generation returns how many sets this engine has compiled so far (1 for the first) and the
// content hash of the current one.
func (e *Engine) Generation() (generation uint64, hash string) {
	p := e.current.Load()
	return p.generation, p.hash
}

// Files lists the files of the current policy set.
func (e *Engine) Files() []string { return e.current.Load().set.Files }

// Data returns the data document of the current policy set (data.config and the like). Callers
// must not modify it.
func (e *Engine) Data() map[string]any {
	if data := e.current.Load().set.Data; data != nil {
		return data
	}
	return map[string]any{}
}

// Request is one thing to decide.
type Request struct {
	Operation string
	Namespace *cluster.Namespace
	Pod       *Pod
	Cluster   *cluster.Snapshot
	// Reach says where the Pod can run under each class (View.Reach); nil means nowhere known.
	Reach *cluster.PodReach
	// Claims resolves the Pod's spec.resourceClaims (input.pod.resourceClaims); nil resolves
	// none of them (each is then unresolved, with that reason).
	Claims *cluster.Claims
	// Fields are the keys of the decision the caller reads; zero means all of them. The
	// returned Decision may leave the others empty.
	Fields Fields
}

// Decide evaluates the policy for req, serving repeated inputs from the cache; cacheHit says
// whether the cache answered. The returned Decision is shared: callers must not modify it.
// A Pod bound or pinned to one node is decided with the node's name hidden (pinned.go), so
// Pods on nodes that look alike to the policy share a decision.
func (e *Engine) Decide(ctx context.Context, req Request) (d *Decision, cacheHit bool, err error) {
	prog := e.current.Load()
	node := ""
	if !prog.reads.PodNodeName {
		name := PinnedNode(req.Pod)
		if masked, ok := maskNode(req, name); ok {
			req, node = masked, name
		}
	}
	d, cacheHit, err = e.decide(ctx, prog, req)
	if err != nil || node == "" {
		return d, cacheHit, err
	}
	return d.withNode(node), cacheHit, nil
}

func (e *Engine) decide(ctx context.Context, prog *program, req Request) (d *Decision, cacheHit bool, err error) {
	in := prog.reads.project(ctx, req)
	buf := keyBuffers.Get().(*[]byte)
	defer keyBuffers.Put(buf)
	fields := req.Fields.orAll()
	// A decision of some fields must never answer a caller that reads others.
	key := cacheKey(append((*buf)[:0], byte(fields)), req, &in)
	*buf = key[:0] // keep the grown buffer
	gen := generation{policy: prog.generation, cluster: req.Cluster.Generation}
	if d := e.cache.get(gen, key); d != nil {
		return d, true, nil
	}
	input, err := e.input(prog, req, &in)
	if err != nil {
		return nil, false, err
	}
	seeds := e.clusterValues(ctx, prog, req.Cluster, gen)
	q, partial := prog.faces[fields]
	if !partial {
		q = prog.decision
	}
	d, err = e.evalDecision(ctx, prog, q, input, seeds)
	if partial && errors.Is(err, errWrongShape) {
		// The keys alone made no decision: the whole one says exactly what is wrong
		// (undefined, not an object, no class), as it always has.
		d, err = e.evalDecision(ctx, prog, prog.decision, input, seeds)
	}
	if err != nil {
		return nil, false, err
	}
	e.cache.put(gen, key, d)
	return d, false, nil
}

// evalDecision evaluates q, a query for the decision or some of its keys, and reads the result.
func (e *Engine) evalDecision(ctx context.Context, prog *program, q rego.PreparedEvalQuery, input ast.Value, cluster topdown.VirtualCache) (*Decision, error) {
	value, err := e.eval(ctx, q, input, DecisionQuery, rego.EvalVirtualCache(newSeededCache(prog.constants, cluster)))
	if err != nil {
		return nil, err
	}
	d, err := parseDecision(value)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errWrongShape, err)
	}
	return d, nil
}

var errWrongShape = errors.New("policy returned the wrong shape")

// placementTerm is input.placement for r, built once per PodReach and cluster generation.
func (e *Engine) placementTerm(r *cluster.PodReach, generation uint64) *ast.Term {
	if r == nil {
		return placementTerm(nil)
	}
	return e.placements.term(r, generation, func() *ast.Term { return placementTerm(r) })
}

// input builds the whole Rego input: the request as projected (operation, namespace, pod,
// placement) and the cluster part, built once per cluster generation.
func (e *Engine) input(prog *program, req Request, in *projected) (ast.Value, error) {
	clusterValue, err := e.clusterTerm(req.Cluster)
	if err != nil {
		return nil, err
	}
	pod, err := podTerm(req.Pod, in)
	if err != nil {
		return nil, err
	}
	return ast.NewObject(
		ast.Item(keyOperation, ast.StringTerm(req.Operation)),
		ast.Item(keyNamespace, e.namespaces.term(req.Namespace, prog.generation, func() *ast.Term { return namespaceTerm(req.Namespace, in) })),
		ast.Item(keyPod, pod),
		ast.Item(keyPlacement, e.placementTerm(req.Reach, req.Cluster.Generation)),
		ast.Item(keyCluster, clusterValue),
	), nil
}

// eval runs a prepared query under the engine's deadline and returns its single value.
func (e *Engine) eval(caller context.Context, q rego.PreparedEvalQuery, input ast.Value, query string, opts ...rego.EvalOption) (any, error) {
	ctx, cancel := context.WithTimeout(caller, e.timeout)
	defer cancel()
	// Without a Cancel of its own, OPA starts a goroutine per evaluation to watch ctx: its
	// start, wake-up and exit were a third of an in-process cache miss's CPU. A callback on
	// ctx, run by the context package when the deadline passes or the caller gives up, stops
	// the evaluation as well.
	stop := topdown.NewCancel()
	defer context.AfterFunc(ctx, stop.Cancel)()
	// Nothing reads OPA's per-evaluation timers; without a Metrics it makes one per evaluation.
	rs, err := q.Eval(ctx, append(opts, rego.EvalParsedInput(input), rego.EvalExternalCancel(stop), rego.EvalMetrics(metrics.NoOp()))...)
	switch {
	case err != nil && caller.Err() != nil:
		return nil, fmt.Errorf("policy evaluation stopped, the request was cancelled: %w", err)
	case err != nil && ctx.Err() != nil:
		return nil, fmt.Errorf("policy evaluation did not finish within %s: %w", e.timeout, err)
	case err != nil:
		return nil, fmt.Errorf("policy evaluation failed: %w", err)
	case len(rs) == 0 || len(rs[0].Expressions) == 0:
		return nil, fmt.Errorf("%s is undefined for this input: a policy must always define it", query)
	case len(rs) > 1:
		return nil, fmt.Errorf("%s has more than one value: a policy must define exactly one", query)
	}
	return rs[0].Expressions[0].Value, nil
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

// clusterValues returns the cluster documents of prog for snapshot s (generation gen),
// evaluating them on the first call of a generation; nil when prog has none or they failed.
func (e *Engine) clusterValues(ctx context.Context, prog *program, s *cluster.Snapshot, gen generation) topdown.VirtualCache {
	if prog.cluster == nil {
		return nil
	}
	if c := e.clusterDocs.Load(); c != nil && c.generation == gen {
		return c.values
	}
	term, err := e.clusterTerm(s)
	if err != nil {
		return nil
	}
	e.clusterMu.Lock()
	defer e.clusterMu.Unlock()
	if c := e.clusterDocs.Load(); c != nil && c.generation == gen {
		return c.values
	}
	// Not the caller's context: one admission's cancellation must not leave a generation
	// without its documents.
	values := prog.cluster.evaluate(context.WithoutCancel(ctx), term, e.timeout)
	if c := e.clusterDocs.Load(); c == nil || c.generation.policy <= gen.policy && c.generation.cluster <= gen.cluster {
		e.clusterDocs.Store(&clusterDocsEntry{generation: gen, values: values})
	}
	return values
}

// KnownClass says whether the current policy's data lists the class name: what bounds the
// runtime_class label of the admission metrics.
func (e *Engine) KnownClass(name string) bool { return e.current.Load().classes[name] }

// GPUClasses lists the classes the current policy's data marks gpu: true.
func (e *Engine) GPUClasses() map[string]bool { return e.current.Load().set.GPUClasses() }

// GPUPolicy is what the current policy's data says about GPUs (classes and resource names).
func (e *Engine) GPUPolicy() cluster.GPUPolicy { return e.current.Load().set.GPUPolicy() }
