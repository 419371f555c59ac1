package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/runtimeguard/runtimeguard/e2e/bench/internal/fixtures"
	"github.com/runtimeguard/runtimeguard/e2e/bench/review"
	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// runProfile is `runner profile`: the in-process admission handler on one cluster size under
// pprof, for finding where a missed target goes.
func runProfile(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("profile", flag.ContinueOnError)
	var size fixtures.Size
	fs.IntVar(&size.Nodes, "nodes", 10, "nodes")
	fs.IntVar(&size.Classes, "classes", 10, "runtime classes")
	fs.IntVar(&size.Namespaces, "namespaces", 100, "namespaces")
	unique := fs.Bool("unique", true, "distinct Pods (cache misses)")
	n := fs.Int("n", 5000, "admissions")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile")
	memprofile := fs.String("memprofile", "", "write a heap profile (in use, after the run)")
	var dirs stringList
	fs.Var(&dirs, "policies", "policy directory instead of the embedded default policy (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	set, err := (&webhook.Options{PolicyDirs: dirs}).LoadPolicies()
	if err != nil {
		return err
	}
	engine, err := policy.NewEngine(ctx, set, 0)
	if err != nil {
		return err
	}
	a := webhook.NewPipeline(webhook.Config{Engine: engine, View: fixtures.Generate(size).View()})
	tmpl, err := review.NewTemplate(review.Pod())
	if err != nil {
		return err
	}
	reqs := make([]admission.Request, *n)
	for i := range reqs {
		var ar admissionv1.AdmissionReview
		if err := json.Unmarshal(tmpl.Body(nil, uint64(i), *unique), &ar); err != nil {
			return err
		}
		reqs[i] = admission.Request{AdmissionRequest: *ar.Request}
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start, cpu0 := time.Now(), processCPU()
	for i := range reqs {
		a.Mutate(ctx, reqs[i])
	}
	cpu := processCPU() - cpu0
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	fmt.Fprintf(out, "%s unique=%v: %d admissions, %s CPU each (%s wall), %.0f allocs and %.1f KB each; heap in use after GC %.1f MiB\n",
		size, *unique, *n, cpu/time.Duration(*n), time.Since(start)/time.Duration(*n),
		float64(after.Mallocs-before.Mallocs)/float64(*n), float64(after.TotalAlloc-before.TotalAlloc)/float64(*n)/1024,
		float64(after.HeapInuse)/(1<<20))
	if *memprofile != "" {
		f, err := os.Create(*memprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		return pprof.WriteHeapProfile(f)
	}
	runtime.KeepAlive(reqs)
	return nil
}
