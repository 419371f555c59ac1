package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/runtimeguard/runtimeguard/e2e/bench/internal/fixtures"
	"github.com/runtimeguard/runtimeguard/e2e/bench/internal/proc"
	"github.com/runtimeguard/runtimeguard/e2e/bench/load"
	"github.com/runtimeguard/runtimeguard/e2e/bench/review"
)

// scenario is one load shape.
type scenario struct {
	name    string
	what    string
	servers map[string]bool // nil: every server
	// validate sends to the validating webhook (the Pods name the class they need); mix, when
	// set, names the review.Mix (or ValidateMix) to send instead of the benchmark Pod.
	validate bool
	mix      string
	cfg      func(base load.Config) load.Config
}

// goServers are the servers with both webhooks and a decision cache or none: runtimeguard and the
// two Go contenders.
var goServers = map[string]bool{"runtimeguard": true, "baseline": true, "minimal": true}

func scenarios(n int) []scenario {
	c8 := func(requests, warmup int) func(load.Config) load.Config {
		return func(c load.Config) load.Config {
			c.Concurrency, c.Requests, c.Duration, c.Warmup = 8, requests, 10*time.Second, warmup
			return c
		}
	}
	unique := func(f func(load.Config) load.Config) func(load.Config) load.Config {
		return func(c load.Config) load.Config { c = f(c); c.Unique = true; return c }
	}
	return []scenario{
		{name: "c8", what: "closed loop, 8 workers, HTTP/1.1 keep-alive (one connection each), the benchmark Pod", cfg: c8(n, 1500)},
		{name: "c1", what: "closed loop, 1 worker (unloaded latency)", cfg: func(c load.Config) load.Config {
			c.Concurrency, c.Requests, c.Duration, c.Warmup = 1, n/5, 5*time.Second, 200
			return c
		}},
		{name: "open1000", what: "open loop, 1,000/s for 4 s, latency from the scheduled time", cfg: func(c load.Config) load.Config {
			c.Concurrency, c.Rate, c.Requests, c.Duration, c.Warmup = 32, 1000, 4000, 4*time.Second, 200
			return c
		}},
		{name: "h2-c8", what: "closed loop, 8 streams on one HTTP/2 connection", servers: map[string]bool{"runtimeguard": true, "baseline": true}, cfg: func(c load.Config) load.Config {
			c.HTTP2, c.Concurrency, c.Requests, c.Duration, c.Warmup = true, 8, n/2, 6*time.Second, 500
			return c
		}},
		{name: "miss-c8", what: "closed loop, 8 workers, a distinct Pod per request (`--unique`: its own first container name, so every input differs to the policy; every decision a cache miss)",
			servers: goServers, cfg: unique(c8(n/2, 300))},
		{name: "realistic-c8", what: "closed loop, 8 workers, `--mix realistic`: 70% the benchmark Deployment Pod, 30% StatefulSet and Job Pods with per-Pod labels (unique per request)",
			servers: goServers, mix: "realistic", cfg: c8(n/2, 500)},
		{name: "validate-c8", what: "`c8` on /validate-v1-pod, the benchmark Pod naming gvisor (as the mutating webhook left it): allowed, no patch, no warning",
			servers: goServers, validate: true, cfg: c8(n/2, 500)},
		{name: "validate-miss-c8", what: "`miss-c8` on /validate-v1-pod", servers: goServers, validate: true, cfg: unique(c8(n/2, 300))},
		{name: "validate-realistic-c8", what: "`realistic-c8` on /validate-v1-pod, every Pod naming gvisor", servers: goServers, validate: true, mix: "realistic", cfg: c8(n/2, 500)},
	}
}

type results map[string]map[string][]*load.Result // server -> scenario -> rounds

func (r results) add(server, scen string, res *load.Result) {
	if r[server] == nil {
		r[server] = map[string][]*load.Result{}
	}
	r[server][scen] = append(r[server][scen], res)
}

// runHTTP is `runner http`: the servers, one at a time, interleaved over rounds.
func runHTTP(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("http", flag.ContinueOnError)
	c := commonFlags(fs)
	rounds := fs.Int("rounds", 3, "rounds of [runtimeguard, baseline, minimal, opa]")
	n := fs.Int("requests", 8000, "requests per round in the c=8 scenario (others scale from it)")
	size := fixtures.Size{}
	fs.IntVar(&size.Nodes, "nodes", 100, "nodes in the fixture cluster")
	fs.IntVar(&size.Classes, "classes", 10, "runtime classes in the fixture cluster")
	fs.IntVar(&size.Namespaces, "namespaces", 100, "namespaces in the fixture cluster")
	only := fs.String("servers", "runtimeguard,baseline,minimal,opa", "servers to run")
	scens := fs.String("scenarios", "", "scenarios to run, comma-separated (default: all)")
	var rgEnv stringList
	fs.Var(&rgEnv, "rg-env", "KEY=VALUE added to runtimeguard's environment (repeatable; experiments such as GOMEMLIMIT)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	e, err := c.env()
	if err != nil {
		return err
	}
	clusterFile, opaData, err := writeFixtures(e.out, size)
	if err != nil {
		return err
	}
	all := scenarios(*n)
	if *scens != "" {
		if all, err = pickScenarios(all, strings.Split(*scens, ",")); err != nil {
			return err
		}
	}
	servers := strings.Split(*only, ",")
	fmt.Fprintf(os.Stderr, "http: %s; %d rounds of %v\n", size, *rounds, servers)
	res := results{}
	for round := 1; round <= *rounds; round++ {
		for _, name := range servers {
			s, err := e.startServer(ctx, name, clusterFile, opaData, rgEnv)
			if err != nil {
				return err
			}
			for _, sc := range all {
				if sc.servers != nil && !sc.servers[name] {
					continue
				}
				cfg, err := sc.config(s, e, size.Nodes)
				if err != nil {
					s.stop()
					return err
				}
				cfg.Label = fmt.Sprintf("r%d %s %s", round, name, sc.name)
				r, err := runVerified(ctx, cfg)
				if err != nil {
					s.stop()
					return fmt.Errorf("%w (server log %s)", err, s.log)
				}
				res.add(name, sc.name, r)
			}
			s.stop()
		}
	}
	printHTTP(out, res, servers, all, size, *rounds)
	return nil
}

// config is the load for sc against s.
func (sc scenario) config(s *server, e *env, nodes int) (load.Config, error) {
	cfg := load.Config{URL: s.url, RootCAs: e.pool, ExpectClass: review.ExpectedClass, Validate: sc.validate, ServerPID: s.pid()}
	if sc.validate {
		if s.validateURL == "" {
			return cfg, fmt.Errorf("scenario %s: %s has no validating webhook", sc.name, s.name)
		}
		cfg.URL = s.validateURL
	}
	var err error
	switch {
	case sc.mix != "" && sc.validate:
		cfg.Mix, err = review.ValidateMix(sc.mix, nodes)
	case sc.mix != "":
		cfg.Mix, err = review.Mix(sc.mix, nodes)
	}
	return sc.cfg(cfg), err
}

func pickScenarios(all []scenario, names []string) ([]scenario, error) {
	var out []scenario
	for _, name := range names {
		i := slices.IndexFunc(all, func(s scenario) bool { return s.name == name })
		if i < 0 {
			return nil, fmt.Errorf("unknown scenario %q", name)
		}
		out = append(out, all[i])
	}
	return out, nil
}

func writeFixtures(dir string, size fixtures.Size) (clusterFile, opaData string, err error) {
	cl := fixtures.Generate(size)
	clusterFile = filepath.Join(dir, "cluster-"+size.Name()+".yaml")
	opaData = filepath.Join(dir, "opa-data-"+size.Name()+".json")
	f, err := os.Create(clusterFile)
	if err != nil {
		return "", "", err
	}
	if err := cl.WriteYAML(f); err != nil {
		f.Close()
		return "", "", err
	}
	if err := f.Close(); err != nil {
		return "", "", err
	}
	b, err := cl.OPAData()
	if err != nil {
		return "", "", err
	}
	return clusterFile, opaData, os.WriteFile(opaData, b, 0o644)
}

func median[T int64 | float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := append([]T(nil), xs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func pick[T any](rs []*load.Result, f func(*load.Result) T) []T {
	out := make([]T, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond)) }

// cpuPer1k is server CPU ms per 1,000 admissions.
func cpuPer1k(r *load.Result) float64 {
	return float64(r.CPUPerAdmission) / float64(time.Millisecond) * 1000
}

func printHTTP(out io.Writer, res results, servers []string, scens []scenario, size fixtures.Size, rounds int) {
	fmt.Fprintf(out, "\n### Webhook servers under load (%s; medians of %d interleaved rounds)\n\n", size, rounds)
	fmt.Fprintln(out, "| scenario | server | admissions/s | p50 ms | p90 ms | p99 ms | max ms | server CPU ms per 1,000 adm. | server-only capacity, 2 cores | client CPU ms per 1,000 | other processes' CPU | peak RSS MiB | requests x rounds |")
	fmt.Fprintln(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, sc := range scens {
		for _, name := range servers {
			rs := res[name][sc.name]
			if len(rs) == 0 {
				continue
			}
			var hwm int64
			for _, r := range rs {
				hwm = max(hwm, r.ServerHWM)
			}
			cpu := median(pick(rs, cpuPer1k))
			fmt.Fprintf(out, "| %s | %s | %.0f | %s | %s | %s | %s | %.0f | %.0f/s | %.0f | %.0f%% | %s | %d x %d |\n", sc.name, name,
				median(pick(rs, func(r *load.Result) float64 { return r.Throughput })),
				ms(median(pick(rs, func(r *load.Result) time.Duration { return r.P50 }))),
				ms(median(pick(rs, func(r *load.Result) time.Duration { return r.P90 }))),
				ms(median(pick(rs, func(r *load.Result) time.Duration { return r.P99 }))),
				ms(median(pick(rs, func(r *load.Result) time.Duration { return r.Max }))),
				cpu, 2*1000*1000/cpu,
				median(pick(rs, func(r *load.Result) float64 {
					return float64(r.ClientCPU) / float64(time.Millisecond) * 1000 / float64(max(r.Requests, 1))
				})),
				100*median(pick(rs, func(r *load.Result) float64 { return r.OtherCPU })),
				proc.MiB(hwm), rs[0].Requests, len(rs))
		}
	}
	fmt.Fprintln(out)
	for _, sc := range scens {
		fmt.Fprintf(out, "- `%s`: %s\n", sc.name, sc.what)
	}
	// Ratios: per round (the servers of one round ran back to back), then the median.
	ratio := func(a, b, scen string) (med, lo, hi float64, ok bool) {
		ra, rb := res[a][scen], res[b][scen]
		if len(ra) == 0 || len(rb) == 0 {
			return 0, 0, 0, false
		}
		var rs []float64
		for i := 0; i < min(len(ra), len(rb)); i++ {
			rs = append(rs, cpuPer1k(ra[i])/cpuPer1k(rb[i]))
		}
		sort.Float64s(rs)
		return median(rs), rs[0], rs[len(rs)-1], true
	}
	fmt.Fprintf(out, "\n#### Ratios and targets\n\n| what | measured | target | verdict |\n|---|---:|---:|---|\n")
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	// Against the minimal hand-written webhook (issue 12): the number to beat, per endpoint.
	for _, t := range []struct {
		scen, what string
		target     float64
	}{
		{"c8", "the benchmark Pod, c=8, /mutate-v1-pod", 1.0},
		{"validate-c8", "the benchmark Pod, c=8, /validate-v1-pod", 1.0},
		{"miss-c8", "every Pod distinct (`--unique`), c=8, /mutate-v1-pod", 2.0},
		{"validate-miss-c8", "every Pod distinct (`--unique`), c=8, /validate-v1-pod", 2.0},
		{"realistic-c8", "`--mix realistic`, c=8, /mutate-v1-pod", 1.2},
		{"validate-realistic-c8", "`--mix realistic`, c=8, /validate-v1-pod", 1.2},
	} {
		if m, lo, hi, ok := ratio("runtimeguard", "minimal", t.scen); ok {
			fmt.Fprintf(out, "| server CPU per admission, runtimeguard / minimal webhook, %s | %.2fx (rounds %.2f-%.2f) | <= %.1fx | %s |\n", t.what, m, lo, hi, t.target, verdict(m <= t.target))
		}
	}
	if m, lo, hi, ok := ratio("runtimeguard", "baseline", "c8"); ok {
		fmt.Fprintf(out, "| server CPU per admission, runtimeguard / Go baseline, c=8 | %.2fx (rounds %.2f-%.2f) | <= 1.3x | %s |\n", m, lo, hi, verdict(m <= 1.3))
	}
	for _, scen := range []string{"miss-c8", "realistic-c8", "validate-c8"} {
		if m, lo, hi, ok := ratio("runtimeguard", "baseline", scen); ok {
			fmt.Fprintf(out, "| same, `%s` (informative) | %.2fx (rounds %.2f-%.2f) | - | - |\n", scen, m, lo, hi)
		}
	}
	if m, lo, hi, ok := ratio("baseline", "minimal", "c8"); ok {
		fmt.Fprintf(out, "| what the framework costs: Go baseline / minimal webhook, c=8 (informative) | %.2fx (rounds %.2f-%.2f) | - | - |\n", m, lo, hi)
	}
	if m, lo, hi, ok := ratio("opa", "runtimeguard", "c8"); ok {
		fmt.Fprintf(out, "| server CPU per admission, opa run --server / runtimeguard, c=8 | %.2fx (rounds %.2f-%.2f) | >= 4x | %s |\n", m, lo, hi, verdict(m >= 4))
	}
	if rs := res["runtimeguard"]["c8"]; len(rs) > 0 {
		t := median(pick(rs, func(r *load.Result) float64 { return r.Throughput }))
		fmt.Fprintf(out, "| runtimeguard admissions/s, c=8 (load generator on the same 2 cores) | %.0f/s | >= 4,000/s | %s |\n", t, verdict(t >= 4000))
	}
	if rs := res["runtimeguard"]["open1000"]; len(rs) > 0 {
		p := median(pick(rs, func(r *load.Result) time.Duration { return r.P99 }))
		fmt.Fprintf(out, "| runtimeguard p99 at 1,000/s open loop | %s ms | <= 5 ms | %s |\n", ms(p), verdict(p <= 5*time.Millisecond))
	}
	if rs := res["runtimeguard"]["c1"]; len(rs) > 0 {
		p50 := median(pick(rs, func(r *load.Result) time.Duration { return r.P50 }))
		p99 := median(pick(rs, func(r *load.Result) time.Duration { return r.P99 }))
		fmt.Fprintf(out, "| runtimeguard p50 / p99 unloaded (c=1) | %s / %s ms | <= 0.5 / 2 ms | %s |\n", ms(p50), ms(p99),
			verdict(p50 <= 500*time.Microsecond && p99 <= 2*time.Millisecond))
	}
	// VmHWM only grows within a process: the scenarios before the first one with distinct Pods
	// give the peak with a small cache, the last one the peak after it filled.
	var hwm, missHWM int64
	var before []string
	filled := false
	for _, sc := range scens {
		filled = filled || sc.mix == "realistic" || strings.Contains(sc.name, "miss")
		for _, r := range res["runtimeguard"][sc.name] {
			if filled {
				missHWM = max(missHWM, r.ServerHWM)
			} else {
				hwm = max(hwm, r.ServerHWM)
			}
		}
		if !filled && len(res["runtimeguard"][sc.name]) > 0 {
			before = append(before, sc.name)
		}
	}
	if hwm > 0 {
		fmt.Fprintf(out, "| runtimeguard peak RSS (VmHWM) under load, fixture mode (%s) | %s MiB | <= 64 MiB | %s |\n", strings.Join(before, ", "), proc.MiB(hwm), verdict(hwm <= 64<<20))
	}
	if missHWM > 0 {
		fmt.Fprintf(out, "| same after the scenarios with distinct Pods (the decision cache fills) | %s MiB | <= 64 MiB | %s |\n", proc.MiB(missHWM), verdict(missHWM <= 64<<20))
	}
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }
