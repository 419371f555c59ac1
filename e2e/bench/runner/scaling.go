package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/runtimeguard/runtimeguard/e2e/bench/internal/baseline"
	"github.com/runtimeguard/runtimeguard/e2e/bench/internal/fixtures"
	"github.com/runtimeguard/runtimeguard/e2e/bench/internal/godecide"
	"github.com/runtimeguard/runtimeguard/e2e/bench/load"
	"github.com/runtimeguard/runtimeguard/e2e/bench/review"
	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// scalingSizes: the base, each dimension grown alone, then all at once.
var scalingSizes = []fixtures.Size{
	{Nodes: 10, Classes: 10, Namespaces: 100},
	{Nodes: 100, Classes: 10, Namespaces: 100},
	{Nodes: 1000, Classes: 10, Namespaces: 100},
	{Nodes: 5000, Classes: 10, Namespaces: 100},
	{Nodes: 10, Classes: 50, Namespaces: 100},
	{Nodes: 10, Classes: 10, Namespaces: 10000},
	{Nodes: 5000, Classes: 50, Namespaces: 10000},
}

type sizeSetup struct {
	size     fixtures.Size
	view     *cluster.View
	admitter *webhook.Pipeline
	base     *baseline.Handler
	load     time.Duration
}

type scaleResult struct {
	hit, miss, change, goBase []time.Duration // CPU per admission, per round
}

// runScaling is `runner scaling`: the admission handler (decode, namespace, decision, patch;
// no HTTP) timed in-process against clusters of growing size, then end to end with the load
// generator against `runtimeguard serve --cluster` on the smallest and largest clusters.
func runScaling(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("scaling", flag.ContinueOnError)
	c := commonFlags(fs)
	rounds := fs.Int("rounds", 3, "rounds over all sizes")
	hits := fs.Int("hits", 10000, "admissions per round with the same Pod (decision cache hits)")
	misses := fs.Int("misses", 1000, "admissions per round with distinct Pods (cache misses)")
	e2eRounds := fs.Int("e2e-rounds", 2, "rounds of the end-to-end comparison (0: skip)")
	e2eRequests := fs.Int("e2e-requests", 6000, "requests per end-to-end run")
	nSizes := fs.Int("sizes", len(scalingSizes), "how many of the cluster sizes to measure (the first N)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pol, err := godecide.Load()
	if err != nil {
		return err
	}
	set, err := (&webhook.Options{}).LoadPolicies()
	if err != nil {
		return err
	}
	tmpl, err := review.NewTemplate(review.Pod())
	if err != nil {
		return err
	}
	request := func(i uint64, unique bool) (admission.Request, error) {
		var ar admissionv1.AdmissionReview
		if err := json.Unmarshal(tmpl.Body(nil, i, unique), &ar); err != nil {
			return admission.Request{}, err
		}
		return admission.Request{AdmissionRequest: *ar.Request}, nil
	}
	same, err := request(1, false)
	if err != nil {
		return err
	}
	distinct := make([]admission.Request, *misses**rounds+50)
	for i := range distinct {
		if distinct[i], err = request(uint64(i+1000), true); err != nil {
			return err
		}
	}
	verifier := review.NewVerifier(review.ExpectedClass)
	check := func(resp admission.Response, req admission.Request, what string) error {
		if err := resp.Complete(req); err != nil {
			return err
		}
		b, err := json.Marshal(admissionv1.AdmissionReview{Response: &resp.AdmissionResponse})
		if err != nil {
			return err
		}
		if err := verifier.Verify(b, string(req.UID)); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}

	var setups []*sizeSetup
	for _, size := range scalingSizes[:max(1, min(*nSizes, len(scalingSizes)))] {
		cl := fixtures.Generate(size)
		start := time.Now()
		view := cl.View()
		loadTime := time.Since(start)
		engine, err := policy.NewEngine(ctx, set, 0)
		if err != nil {
			return err
		}
		s := &sizeSetup{size: size, view: view, load: loadTime,
			admitter: webhook.NewPipeline(webhook.Config{Engine: engine, View: view, Namespace: "runtimeguard-system"}),
			base:     baseline.NewHandler(pol, view, "runtimeguard-system", nil)}
		// Warm up, and check both handlers answer the expected patch.
		for i := 0; i < 20; i++ {
			if err := check(s.admitter.Mutate(ctx, same), same, "runtimeguard "+size.String()); err != nil {
				return err
			}
			other := distinct[len(distinct)-1-i]
			if err := check(s.base.Mutate(ctx, other), other, "baseline "+size.String()); err != nil {
				return err
			}
		}
		setups = append(setups, s)
	}
	res := make([]scaleResult, len(setups))
	for round := 0; round < *rounds; round++ {
		for k, s := range setups {
			r := &res[k]
			r.hit = append(r.hit, cpuPerOp(*hits, func(int) { s.admitter.Mutate(ctx, same) }))
			batch := distinct[round**misses : (round+1)**misses]
			r.miss = append(r.miss, cpuPerOp(len(batch), func(i int) { s.admitter.Mutate(ctx, batch[i]) }))
			r.goBase = append(r.goBase, cpuPerOp(len(batch), func(i int) { s.base.Mutate(ctx, batch[i]) }))
			// A cluster change (a new snapshot generation) empties the decision cache and
			// rebuilds input.cluster: time the first admission after one.
			rc := fixtures.Generate(fixtures.Size{Classes: 5}).Classes[0]
			var changed time.Duration
			for j := 0; j < 20; j++ {
				s.view.UpsertRuntimeClass(rc)
				t0 := processCPU()
				s.admitter.Mutate(ctx, same)
				changed += processCPU() - t0
			}
			r.change = append(r.change, changed/20)
			fmt.Fprintf(os.Stderr, "scaling r%d %-40s hit %-8s miss %-8s after-change %-8s go-baseline %s\n", round+1, s.size,
				r.hit[round], r.miss[round], r.change[round], r.goBase[round])
		}
	}

	fmt.Fprintf(out, "\n### Decision cost against cluster size (in-process admission handler, no HTTP; process CPU per admission, median of %d rounds)\n\n", *rounds)
	fmt.Fprintln(out, "| cluster | view load | cache hit µs | vs base | cache miss µs | vs base | first after a cluster change µs | Go baseline µs |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|---:|---:|")
	baseHit, baseMiss := median(res[0].hit), median(res[0].miss)
	var worstHit, worstMiss float64
	for k, s := range setups {
		h, m := median(res[k].hit), median(res[k].miss)
		gh, gm := float64(h)/float64(baseHit)-1, float64(m)/float64(baseMiss)-1
		worstHit, worstMiss = max(worstHit, gh), max(worstMiss, gm)
		fmt.Fprintf(out, "| %s | %s | %.1f | %+.0f%% | %.1f | %+.0f%% | %.1f | %.1f |\n", s.size, s.load.Round(time.Millisecond),
			us(h), 100*gh, us(m), 100*gm, us(median(res[k].change)), us(median(res[k].goBase)))
	}
	verdict := "met"
	if worstHit >= 0.2 || worstMiss >= 0.2 {
		verdict = "**not met**"
	}
	fmt.Fprintf(out, "\nLargest growth over the %s cluster: cache hit %+.0f%%, cache miss %+.0f%% (target < +20%%: %s).\n",
		setups[0].size, 100*worstHit, 100*worstMiss, verdict)

	if *e2eRounds > 0 {
		return scalingE2E(ctx, c, *e2eRounds, *e2eRequests, out)
	}
	return nil
}

// scalingE2E runs the load generator against `serve --cluster` on the smallest and the largest
// cluster, interleaved.
func scalingE2E(ctx context.Context, c common, rounds, n int, out io.Writer) error {
	e, err := c.env()
	if err != nil {
		return err
	}
	sizes := []fixtures.Size{scalingSizes[0], scalingSizes[len(scalingSizes)-1]}
	files := make([]string, len(sizes))
	for i, s := range sizes {
		if files[i], _, err = writeFixtures(e.out, s); err != nil {
			return err
		}
	}
	type row struct {
		hit, miss []*load.Result
		ready     []time.Duration
	}
	rows := make([]row, len(sizes))
	for round := 1; round <= rounds; round++ {
		for i, s := range sizes {
			srv, err := e.startRuntimeguard(ctx, files[i], "")
			if err != nil {
				return err
			}
			rows[i].ready = append(rows[i].ready, srv.readyAfter)
			for _, unique := range []bool{false, true} {
				cfg := load.Config{URL: srv.url, RootCAs: e.pool, ExpectClass: review.ExpectedClass, ServerPID: srv.pid(),
					Concurrency: 8, Requests: n, Duration: 15 * time.Second, Warmup: 1000, Unique: unique,
					Label: fmt.Sprintf("r%d %s unique=%v", round, s.Name(), unique)}
				if unique {
					cfg.Requests = n / 3
				}
				r, err := runVerified(ctx, cfg)
				if err != nil {
					srv.stop()
					return err
				}
				if unique {
					rows[i].miss = append(rows[i].miss, r)
				} else {
					rows[i].hit = append(rows[i].hit, r)
				}
			}
			srv.stop()
		}
	}
	fmt.Fprintf(out, "\n#### End to end: `runtimeguard serve --cluster` over HTTPS, c=8 (medians of %d interleaved rounds)\n\n", rounds)
	fmt.Fprintln(out, "| cluster | fixture start to ready | admissions/s | server CPU ms per 1,000 (same Pod) | server CPU ms per 1,000 (distinct Pods) | peak RSS MiB |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|")
	for i, s := range sizes {
		var hwm int64
		for _, r := range append(rows[i].hit, rows[i].miss...) {
			hwm = max(hwm, r.ServerHWM)
		}
		fmt.Fprintf(out, "| %s | %s | %.0f | %.0f | %.0f | %s |\n", s, median(rows[i].ready).Round(time.Millisecond),
			median(pick(rows[i].hit, func(r *load.Result) float64 { return r.Throughput })),
			median(pick(rows[i].hit, cpuPer1k)), median(pick(rows[i].miss, cpuPer1k)), mib(hwm))
	}
	return nil
}

func mib(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// cpuPerOp runs f n times and returns the process CPU time per call (GC included).
func cpuPerOp(n int, f func(i int)) time.Duration {
	runtime.GC()
	before := processCPU()
	for i := 0; i < n; i++ {
		f(i)
	}
	return (processCPU() - before) / time.Duration(n)
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
