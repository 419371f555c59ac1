// Command runner drives runtimeguard's benchmarks (docs/benchmarks.md); e2e/bench/run.sh
// builds what it needs and calls it.
//
//	runner http      the four webhook servers under load, interleaved rounds, one table
//	runner placement runtimeguard and the Go webhooks under mixes of Pods with placement constraints
//	runner scaling   decision cost against cluster size, in-process and end to end
//	runner cluster   start-up time and memory against a real kube-apiserver with 5,000 Nodes
//	runner profile   the in-process admission handler under pprof (--cpuprofile, --memprofile)
//	runner informer-heap   (internal) one informer variant's heap, for `runner cluster`
//
// Everything runs on this machine: servers listen on 127.0.0.1 and the load generator refuses
// any other address.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/runtimeguard/runtimeguard/e2e/bench/load"
	"github.com/runtimeguard/runtimeguard/e2e/controlplane"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: runner http|placement|scaling|cluster|profile|native|informer-heap [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "http":
		err = runHTTP(ctx, os.Args[2:], os.Stdout)
	case "placement":
		err = runPlacement(ctx, os.Args[2:], os.Stdout)
	case "scaling":
		err = runScaling(ctx, os.Args[2:], os.Stdout)
	case "cluster":
		err = runCluster(ctx, os.Args[2:], os.Stdout)
	case "profile":
		err = runProfile(ctx, os.Args[2:], os.Stdout)
	case "native":
		err = runNative(ctx, os.Args[2:], os.Stdout)
	case "informer-heap":
		err = runInformerHeap(ctx, os.Args[2:], os.Stdout)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "runner:", err)
		os.Exit(1)
	}
}

type common struct {
	bin, out, certs *string
}

func commonFlags(fs *flag.FlagSet) common {
	return common{
		bin:   fs.String("bin", "bin", "directory of runtimeguard, bench-baseline, bench-minimal and opa"),
		out:   fs.String("out", "bin/bench", "working directory (fixtures, logs)"),
		certs: fs.String("certs", "bin/bench/certs", "directory of ca.crt, tls.crt, tls.key (runtimeguard dev-certs)"),
	}
}

func (c common) env() (*env, error) {
	root, err := controlplane.RepoRoot()
	if err != nil {
		return nil, err
	}
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(root, p)
	}
	if err := os.MkdirAll(abs(*c.out), 0o755); err != nil {
		return nil, err
	}
	return newEnv(root, abs(*c.bin), abs(*c.out), abs(*c.certs))
}

// runVerified runs one load, prints its result, and fails when the load did or when any answer
// failed verification.
func runVerified(ctx context.Context, cfg load.Config) (*load.Result, error) {
	r, err := load.Run(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Label, err)
	}
	fmt.Fprintln(os.Stderr, r)
	if r.Errors > 0 {
		return nil, fmt.Errorf("%s: %d answers failed verification; first: %s", cfg.Label, r.Errors, r.FirstError)
	}
	return r, nil
}
