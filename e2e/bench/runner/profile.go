package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"time"

	"github.com/google/pprof/profile"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/runtimeguard/runtimeguard/e2e/bench/internal/fixtures"
	"github.com/runtimeguard/runtimeguard/e2e/bench/review"
	"github.com/runtimeguard/runtimeguard/webhook"
)

// runProfile is `runner profile`: the admission handler `serve` registers
// (Pipeline.MutateHandler or ValidateHandler, the Pipeline built by
// Options.NewPipeline with Prometheus metrics, as serve builds it), called in-process with
// review bodies, on one cluster size under pprof. It prints where a call's CPU goes as
// markdown tables (top functions by flat and by cumulative time), for the report and for
// finding where a missed target goes. What the profile leaves out: TLS, net/http's connection
// handling and controller-runtime's metrics wrapper around registered handlers.
func runProfile(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("profile", flag.ContinueOnError)
	var size fixtures.Size
	fs.IntVar(&size.Nodes, "nodes", 100, "nodes")
	fs.IntVar(&size.Classes, "classes", 10, "runtime classes")
	fs.IntVar(&size.Namespaces, "namespaces", 100, "namespaces")
	unique := fs.Bool("unique", false, "distinct Pods (decision-cache misses)")
	validate := fs.Bool("validate", false, "the validating webhook (Pods name the class they need) instead of the mutating one")
	mixName := fs.String("mix", "template", "Pods to send (review.Mix: template, pool, bound, realistic)")
	n := fs.Int("n", 20000, "admissions (enough for a few thousand samples)")
	top := fs.Int("top", 20, "functions per table (0: no table)")
	cpuprofile := fs.String("cpuprofile", "", "also write the CPU profile here (for go tool pprof)")
	memprofile := fs.String("memprofile", "", "write a heap profile (in use, after the run)")
	var dirs stringList
	fs.Var(&dirs, "policies", "policy directory instead of the embedded default policy (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o := webhook.DefaultOptions()
	o.PolicyDirs, o.Namespace = dirs, "runtimeguard-system"
	set, err := o.LoadPolicies()
	if err != nil {
		return err
	}
	pipeline, _, err := o.NewPipeline(ctx, set, fixtures.Generate(size).View(), webhook.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		return err
	}
	handler, path := pipeline.MutateHandler(), webhook.MutatePath
	mix := review.Mix
	if *validate {
		handler, path, mix = pipeline.ValidateHandler(), webhook.ValidatePath, review.ValidateMix
	}
	variants, err := mix(*mixName, size.Nodes)
	if err != nil {
		return err
	}
	verifiers := make([]*review.Verifier, len(variants))
	for i, v := range variants {
		verifiers[i] = v.Verifier()
	}
	target := &url.URL{Scheme: "https", Host: "127.0.0.1", Path: path}
	header := http.Header{"Content-Type": {"application/json"}}
	w := &answerWriter{header: http.Header{}}

	var prof bytes.Buffer
	if *top > 0 || *cpuprofile != "" {
		if err := pprof.StartCPUProfile(&prof); err != nil {
			return err
		}
	}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start, cpu0 := time.Now(), processCPU()
	handlerLabels := pprof.Labels("part", "handler")
	var body []byte
	for i := range *n {
		body = variants[i%len(variants)].Template.Body(body, uint64(i), *unique)
		req := (&http.Request{Method: http.MethodPost, URL: target, Header: header, Body: io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}).WithContext(ctx)
		w.body.Reset()
		pprof.Do(ctx, handlerLabels, func(context.Context) { handler.ServeHTTP(w, req) })
		// A sample of the answers is verified: verifying all of them would put the harness's
		// allocations into the GC work the profile charges.
		if i < 50 || i%97 == 0 {
			if err := verifiers[i%len(variants)].Verify(w.body.Bytes(), review.UID(uint64(i))); err != nil {
				pprof.StopCPUProfile()
				return fmt.Errorf("answer %d (%s): %w", i, variants[i%len(variants)].Name, err)
			}
		}
	}
	cpu := processCPU() - cpu0
	wall := time.Since(start)
	if *top > 0 || *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	endpoint := "/mutate-v1-pod"
	if *validate {
		endpoint = "/validate-v1-pod"
	}
	fmt.Fprintf(out, "%s, %s, mix %s, unique=%v: %d admissions, %s CPU each (%s wall), %.0f allocs and %.1f KB each; heap in use after GC %.1f MiB\n",
		size, endpoint, *mixName, *unique, *n, cpu/time.Duration(*n), wall/time.Duration(*n),
		float64(after.Mallocs-before.Mallocs)/float64(*n), float64(after.TotalAlloc-before.TotalAlloc)/float64(*n)/1024,
		float64(after.HeapInuse)/(1<<20))
	if *cpuprofile != "" {
		if err := os.WriteFile(*cpuprofile, prof.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if *top > 0 {
		p, err := profile.Parse(&prof)
		if err != nil {
			return fmt.Errorf("reading the CPU profile: %w", err)
		}
		printProfileTables(out, p, *n, *top)
	}
	if *memprofile != "" {
		f, err := os.Create(*memprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		return pprof.WriteHeapProfile(f)
	}
	return nil
}

// answerWriter is the ResponseWriter the handler answers into.
type answerWriter struct {
	header http.Header
	body   bytes.Buffer
	status int
}

func (w *answerWriter) Header() http.Header         { return w.header }
func (w *answerWriter) Write(b []byte) (int, error) { return w.body.Write(b) }
func (w *answerWriter) WriteHeader(status int)      { w.status = status }

// funcCost is one function's share of the profile.
type funcCost struct {
	name      string
	flat, cum int64 // CPU nanoseconds
}

// printProfileTables prints the top functions by flat and by cumulative CPU, as `go tool pprof
// -top` counts them: flat is time in the function itself (the innermost frame, inlined ones
// included), cum the time with the function anywhere on the stack. Samples of the handler
// (labelled part=handler) and of the runtime's unlabelled background work (the GC workers,
// the scheduler) are counted; the harness's are not.
func printProfileTables(out io.Writer, p *profile.Profile, n, top int) {
	vi := len(p.SampleType) - 1 // cpu nanoseconds
	for i, st := range p.SampleType {
		if st.Type == "cpu" {
			vi = i
		}
	}
	costs := map[string]*funcCost{}
	var handler, background int64
	for _, s := range p.Sample {
		v := s.Value[vi]
		if part := s.Label["part"]; len(part) > 0 && part[0] == "handler" {
			handler += v
		} else if len(part) == 0 {
			background += v
		} else {
			continue
		}
		seen := map[string]bool{}
		for li, loc := range s.Location {
			// Lines run from the innermost inlined call outwards.
			for k, line := range loc.Line {
				if line.Function == nil {
					continue
				}
				name := line.Function.Name
				c := costs[name]
				if c == nil {
					c = &funcCost{name: name}
					costs[name] = c
				}
				if li == 0 && k == 0 {
					c.flat += v
				}
				if !seen[name] {
					seen[name] = true
					c.cum += v
				}
			}
		}
	}
	total := handler + background
	if total == 0 {
		fmt.Fprintln(out, "\nNo CPU samples: raise -n.")
		return
	}
	all := make([]*funcCost, 0, len(costs))
	for _, c := range costs {
		if !harnessFunc(c.name) {
			all = append(all, c)
		}
	}
	us := func(ns int64) string { return fmt.Sprintf("%.2f", float64(ns)/1e3/float64(n)) }
	pct := func(ns int64) string { return fmt.Sprintf("%.1f%%", 100*float64(ns)/float64(total)) }
	fmt.Fprintf(out, "\nProfiled CPU: %s us per admission (%s in the handler, %s in the runtime's background work: GC workers, scheduler).\n",
		us(total), pct(handler), pct(background))
	for _, by := range []struct {
		title string
		key   func(*funcCost) int64
	}{{"flat (in the function itself)", func(c *funcCost) int64 { return c.flat }}, {"cumulative (with what it calls)", func(c *funcCost) int64 { return c.cum }}} {
		sort.Slice(all, func(i, j int) bool {
			if by.key(all[i]) != by.key(all[j]) {
				return by.key(all[i]) > by.key(all[j])
			}
			return all[i].name < all[j].name
		})
		fmt.Fprintf(out, "\nTop %d functions by %s:\n\n| function | flat us/adm. | flat %% | cum us/adm. | cum %% |\n|---|---:|---:|---:|---:|\n", top, by.title)
		for _, c := range all[:min(top, len(all))] {
			fmt.Fprintf(out, "| `%s` | %s | %s | %s | %s |\n", shortFunc(c.name), us(c.flat), pct(c.flat), us(c.cum), pct(c.cum))
		}
	}
}

// harnessFunc says whether name is this command's own frame around the handler call.
func harnessFunc(name string) bool {
	switch name {
	case "main.main", "runtime.main", "runtime/pprof.Do":
		return true
	}
	return strings.HasPrefix(name, "main.runProfile") && !strings.Contains(name, "Handler.")
}

// shortFunc drops the module path prefixes that make every row wide, and names the product's
// closures the compiler inlined into runProfile after the product function.
func shortFunc(name string) string {
	for _, prefix := range []string{"github.com/runtimeguard/runtimeguard/", "github.com/open-policy-agent/opa/v1/", "sigs.k8s.io/controller-runtime/pkg/", "k8s.io/apimachinery/pkg/"} {
		if strings.HasPrefix(name, prefix) {
			return name[len(prefix):]
		}
	}
	return name
}
