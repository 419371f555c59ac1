package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/runtimeguard/runtimeguard/e2e/bench/internal/fixtures"
	"github.com/runtimeguard/runtimeguard/e2e/bench/internal/proc"
	"github.com/runtimeguard/runtimeguard/e2e/bench/load"
	"github.com/runtimeguard/runtimeguard/e2e/bench/review"
)

// placementScenarios are the load shapes of `runner placement`, per mix: c8 for CPU per
// admission, open1000 for the latency target.
func placementScenarios(n int) []scenario {
	return []scenario{
		{name: "c8", what: "closed loop, 8 workers, HTTP/1.1 keep-alive", cfg: func(c load.Config) load.Config {
			c.Concurrency, c.Requests, c.Duration, c.Warmup = 8, n, 10*time.Second, 1500
			return c
		}},
		{name: "open1000", what: "open loop, 1,000/s for 4 s, latency from the scheduled time", cfg: func(c load.Config) load.Config {
			c.Concurrency, c.Rate, c.Requests, c.Duration, c.Warmup = 32, 1000, 4000, 4*time.Second, 200
			return c
		}},
	}
}

// runPlacement is `runner placement`: runtimeguard, the Go baseline and the minimal webhook
// (which make the same placement check) on a large generated cluster, under mixes of Pods with placement
// constraints (review.Mix), interleaved over rounds.
func runPlacement(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("placement", flag.ContinueOnError)
	c := commonFlags(fs)
	rounds := fs.Int("rounds", 3, "rounds of [runtimeguard, baseline, minimal]")
	n := fs.Int("requests", 8000, "requests per round and mix in the c=8 scenario")
	size := fixtures.Size{}
	fs.IntVar(&size.Nodes, "nodes", 5000, "nodes in the fixture cluster")
	fs.IntVar(&size.Classes, "classes", 10, "runtime classes in the fixture cluster")
	fs.IntVar(&size.Namespaces, "namespaces", 10000, "namespaces in the fixture cluster")
	mixes := fs.String("mixes", "pool,bound", "mixes to send (review.Mix)")
	only := fs.String("servers", "runtimeguard,baseline,minimal", "servers to run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	e, err := c.env()
	if err != nil {
		return err
	}
	clusterFile, _, err := writeFixtures(e.out, size)
	if err != nil {
		return err
	}
	mixNames := strings.Split(*mixes, ",")
	variants := map[string][]review.Variant{}
	for _, m := range mixNames {
		if variants[m], err = review.Mix(m, size.Nodes); err != nil {
			return err
		}
	}
	servers := strings.Split(*only, ",")
	fmt.Fprintf(os.Stderr, "placement: %s; %d rounds of %v, mixes %v\n", size, *rounds, servers, mixNames)
	res := results{} // server -> "mix scenario" -> rounds
	for round := 1; round <= *rounds; round++ {
		for _, name := range servers {
			s, err := e.startServer(ctx, name, clusterFile, "", nil)
			if err != nil {
				return err
			}
			for _, m := range mixNames {
				for _, sc := range placementScenarios(*n) {
					cfg := sc.cfg(load.Config{URL: s.url, RootCAs: e.pool, Mix: variants[m], ServerPID: s.pid()})
					cfg.Label = fmt.Sprintf("r%d %s %s %s", round, name, m, sc.name)
					r, err := runVerified(ctx, cfg)
					if err != nil {
						s.stop()
						return fmt.Errorf("%w (server log %s)", err, s.log)
					}
					res.add(name, m+" "+sc.name, r)
				}
			}
			s.stop()
		}
	}
	printPlacement(out, res, servers, mixNames, variants, size, *rounds)
	return nil
}

func printPlacement(out io.Writer, res results, servers, mixes []string, variants map[string][]review.Variant, size fixtures.Size, rounds int) {
	fmt.Fprintf(out, "\n### Placement mixes (%s; medians of %d interleaved rounds)\n\n", size, rounds)
	for _, m := range mixes {
		var vs []string
		for _, v := range variants[m] {
			class := v.Class
			if class == "" {
				class = "no patch"
			}
			vs = append(vs, fmt.Sprintf("%s -> %s", v.Name, class))
		}
		fmt.Fprintf(out, "- `%s`: %s (%s)\n", m, review.Mixes[m], strings.Join(vs, "; "))
	}
	fmt.Fprintln(out, "\n| mix | scenario | server | admissions/s | p50 ms | p99 ms | server CPU ms per 1,000 | runtimeguard / baseline CPU (rounds) | runtimeguard / minimal CPU (rounds) | client CPU ms per 1,000 | other processes' CPU | peak RSS MiB |")
	fmt.Fprintln(out, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, m := range mixes {
		for _, sc := range placementScenarios(0) {
			key := m + " " + sc.name
			for _, name := range servers {
				rs := res[name][key]
				if len(rs) == 0 {
					continue
				}
				var hwm int64
				for _, r := range rs {
					hwm = max(hwm, r.ServerHWM)
				}
				ratio := func(other string) string {
					rb := res[other][key]
					if name != "runtimeguard" || len(rb) == 0 {
						return "-"
					}
					var xs []float64
					for i := 0; i < min(len(rs), len(rb)); i++ {
						xs = append(xs, cpuPer1k(rs[i])/cpuPer1k(rb[i]))
					}
					sort.Float64s(xs)
					return fmt.Sprintf("%.2fx (%.2f-%.2f)", median(xs), xs[0], xs[len(xs)-1])
				}
				fmt.Fprintf(out, "| %s | %s | %s | %.0f | %s | %s | %.0f | %s | %s | %.0f | %.0f%% | %s |\n", m, sc.name, name,
					median(pick(rs, func(r *load.Result) float64 { return r.Throughput })),
					ms(median(pick(rs, func(r *load.Result) time.Duration { return r.P50 }))),
					ms(median(pick(rs, func(r *load.Result) time.Duration { return r.P99 }))),
					median(pick(rs, cpuPer1k)), ratio("baseline"), ratio("minimal"),
					median(pick(rs, func(r *load.Result) float64 {
						return float64(r.ClientCPU) / float64(time.Millisecond) * 1000 / float64(max(r.Requests, 1))
					})),
					100*median(pick(rs, func(r *load.Result) float64 { return r.OtherCPU })),
					proc.MiB(hwm))
			}
		}
	}
	fmt.Fprintln(out)
	for _, sc := range placementScenarios(0) {
		fmt.Fprintf(out, "- `%s`: %s\n", sc.name, sc.what)
	}
	fmt.Fprintln(out, "- peak RSS is the server's VmHWM after that run; one process serves the mixes in the order of the table, so a row's peak includes the rows above it for that server and round.")
}
