package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// policyGate holds the policy the webhook serves. A replica may start without one: when the
// policy on disk does not load or compile, the process stays up and NotReady (the readiness
// check says why), answers admissions with 503 (the API server's failurePolicy applies, as for
// an unreachable webhook), and the reload watcher retries when the files change. Exiting
// instead would crash-loop with nothing but a restart count to show for it.
type policyGate struct {
	opts    *Options
	view    *cluster.View
	metrics *webhook.Metrics

	mu       sync.Mutex // serialises apply
	engine   atomic.Pointer[policy.Engine]
	pipeline atomic.Pointer[webhook.Pipeline]
	handlers atomic.Pointer[gateHandlers]
	reason   atomic.Pointer[string] // why no policy serves; read only while engine is nil
}

type gateHandlers struct{ mutate, validate http.Handler }

// apply compiles set and makes it the serving policy: the first good set creates the pipeline,
// later ones are swapped in (policy.Engine.Swap: a broken set leaves the previous one serving).
func (g *policyGate) apply(ctx context.Context, set *policy.Set) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e := g.engine.Load(); e != nil {
		return e.Swap(ctx, set)
	}
	p, e, err := g.opts.NewPipeline(ctx, set, g.view, g.metrics)
	if err != nil {
		g.fail(err)
		return err
	}
	g.handlers.Store(&gateHandlers{mutate: p.MutateHandler(), validate: p.ValidateHandler()})
	g.pipeline.Store(p)
	g.engine.Store(e)
	return nil
}

// fail records why no policy serves; once one does, failures are the watcher's to report.
func (g *policyGate) fail(err error) {
	if g.engine.Load() == nil {
		reason := err.Error()
		g.reason.Store(&reason)
	}
}

// Pipeline returns the serving pipeline (its engine is swapped on reload), nil while no policy
// has loaded.
func (g *policyGate) Pipeline() *webhook.Pipeline { return g.pipeline.Load() }

// Engine returns the serving engine, nil while no policy has loaded.
func (g *policyGate) Engine() *policy.Engine { return g.engine.Load() }

// check is the readiness check: ready once a policy serves.
func (g *policyGate) check(*http.Request) error {
	if g.engine.Load() != nil {
		return nil
	}
	reason := "not loaded yet"
	if r := g.reason.Load(); r != nil {
		reason = *r
	}
	return errors.New("no valid policy: " + reason)
}

// gpuPolicy is what the serving policy says about GPUs; nothing while none serves.
func (g *policyGate) gpuPolicy() cluster.GPUPolicy {
	if e := g.engine.Load(); e != nil {
		return e.GPUPolicy()
	}
	return cluster.GPUPolicy{}
}

// mutate and validate are the webhook handlers, answering 503 while no policy serves.
func (g *policyGate) mutate() http.Handler {
	return g.handler(func(h *gateHandlers) http.Handler { return h.mutate })
}

func (g *policyGate) validate() http.Handler {
	return g.handler(func(h *gateHandlers) http.Handler { return h.validate })
}

func (g *policyGate) handler(pick func(*gateHandlers) http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := g.handlers.Load(); h != nil {
			pick(h).ServeHTTP(w, r)
			return
		}
		http.Error(w, fmt.Sprintf("runtimeguard has no valid policy loaded, so it cannot decide (%v); fix the policy files", g.check(r)), http.StatusServiceUnavailable)
	})
}
