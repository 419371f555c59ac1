// Command loadgen posts realistic Pod AdmissionReviews to an admission webhook on this machine
// and verifies every answer. See docs/benchmarks.md.
//
//	loadgen --url https://127.0.0.1:9443/mutate-v1-pod --ca bin/bench/certs/ca.crt \
//	    --concurrency 8 --requests 20000 --duration 30s --server-pid PID
//	loadgen --url https://127.0.0.1:9443/validate-v1-pod --validate --mix realistic ...
//
// Closed loop by default (--concurrency requests in flight); --rate R switches to open loop
// (R requests/s at fixed intervals, latency measured from each request's scheduled time).
// Only loopback targets are accepted, and every run is bounded by --requests and --duration.
package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/runtimeguard/runtimeguard/e2e/bench/load"
	"github.com/runtimeguard/runtimeguard/e2e/bench/review"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	var cfg load.Config
	var caFile string
	var asJSON bool
	var mix string
	var nodes int
	fs.StringVar(&cfg.Label, "label", "loadgen", "name of the run in the output")
	fs.StringVar(&cfg.URL, "url", "https://127.0.0.1:9443/mutate-v1-pod", "webhook URL (loopback only)")
	fs.StringVar(&caFile, "ca", "", "PEM file of the CA that signed the server certificate (required)")
	fs.BoolVar(&cfg.HTTP2, "http2", false, "multiplex over one HTTP/2 connection instead of one HTTP/1.1 keep-alive connection per worker")
	fs.IntVar(&cfg.Concurrency, "concurrency", 8, "workers; closed loop: requests in flight")
	fs.Float64Var(&cfg.Rate, "rate", 0, "open loop: requests per second at fixed intervals (0: closed loop)")
	fs.IntVar(&cfg.Requests, "requests", 20000, "measured requests (upper bound)")
	fs.DurationVar(&cfg.Duration, "duration", 60*time.Second, "measured time (upper bound)")
	fs.IntVar(&cfg.Warmup, "warmup", 1000, "unmeasured warm-up requests")
	fs.BoolVar(&cfg.Unique, "unique", false, "a distinct Pod per request (defeats decision caches)")
	fs.StringVar(&cfg.ExpectClass, "expect-class", review.ExpectedClass, "runtime class the patch must set (\"\": expect no patch); with --validate, the class the Pod names")
	fs.BoolVar(&cfg.Validate, "validate", false, "for the validating webhook (--url .../validate-v1-pod): every Pod names the class the mutating webhook gives it, and each answer must allow it without a patch or a warning")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "server process to charge CPU and memory to (from /proc)")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	fs.StringVar(&mix, "mix", "", "send a mix of Pods, each verified against its own expected answer: template, pool, bound or realistic (docs/benchmarks.md); replaces --expect-class")
	fs.IntVar(&nodes, "nodes", 5000, "nodes of the generated cluster the server holds (--mix bound pins Pods to them)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if caFile == "" {
		return errors.New("--ca is required")
	}
	if cfg.Duration > 10*time.Minute {
		return errors.New("--duration: at most 10m")
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	cfg.RootCAs = x509.NewCertPool()
	if !cfg.RootCAs.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	switch {
	case mix != "" && cfg.Validate:
		cfg.Mix, err = review.ValidateMix(mix, nodes)
	case mix != "":
		cfg.Mix, err = review.Mix(mix, nodes)
	}
	if err != nil {
		return err
	}
	res, err := load.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(out)
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(out, res)
	}
	if res.Errors > 0 {
		return fmt.Errorf("%d of %d answers failed verification; first: %s", res.Errors, res.Requests, res.FirstError)
	}
	return nil
}
