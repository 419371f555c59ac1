// Command baseline is the benchmarks' hand-coded Go webhook: runtimeguard's default policy
// written in Go, served exactly like `runtimeguard serve --cluster` (see
// e2e/bench/internal/baseline). Flags mirror serve's.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/runtimeguard/runtimeguard/e2e/bench/internal/baseline"
)

func main() {
	o := baseline.Options{Port: 9443, CertDir: "/tmp/k8s-webhook-server/serving-certs", MetricsBindAddress: "0", HealthProbeBindAddress: ":8081"}
	fs := pflag.NewFlagSet("baseline", pflag.ExitOnError)
	fs.IntVar(&o.Port, "port", o.Port, "TLS port of the webhook")
	fs.StringVar(&o.BindAddress, "bind-address", o.BindAddress, "address the webhook listens on")
	fs.StringVar(&o.CertDir, "cert-dir", o.CertDir, "directory holding tls.crt and tls.key")
	fs.StringSliceVar(&o.ClusterFiles, "cluster", nil, "fixture files (Namespaces, Nodes, RuntimeClasses), required")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, "address of /metrics (\"0\": off)")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress, "address of /healthz and /readyz")
	fs.StringVar(&o.Namespace, "namespace", "", "exempt namespace")
	_ = fs.Parse(os.Args[1:])
	if len(o.ClusterFiles) == 0 {
		fmt.Fprintln(os.Stderr, "baseline: --cluster is required")
		os.Exit(2)
	}
	ctrl.SetLogger(zap.New())
	if err := baseline.Serve(ctrl.SetupSignalHandler(), o); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}
