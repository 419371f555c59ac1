// Command minimal is the benchmarks' minimal hand-written webhook, the number to beat (issue
// 12): plain net/http and crypto/tls (webhook.TLSOptions, so TLS is set up like runtimeguard's),
// one encoding/json.Unmarshal per request into a struct holding only what the decision reads,
// the same Go decision as the baseline (internal/godecide on the same cluster view, loaded from
// the same fixture files) and the same answers. No controller-runtime, no Prometheus, no
// decision cache. Flags mirror bench-baseline's.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/runtimeguard/runtimeguard/e2e/bench/internal/godecide"
	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

type options struct {
	port                   int
	bindAddress            string
	certDir                string
	clusterFiles           []string
	healthProbeBindAddress string
	namespace              string
}

func main() {
	o := options{port: 9443, certDir: "/tmp/k8s-webhook-server/serving-certs", healthProbeBindAddress: ":8081"}
	fs := pflag.NewFlagSet("minimal", pflag.ExitOnError)
	fs.IntVar(&o.port, "port", o.port, "TLS port of the webhook")
	fs.StringVar(&o.bindAddress, "bind-address", o.bindAddress, "address the webhook listens on")
	fs.StringVar(&o.certDir, "cert-dir", o.certDir, "directory holding tls.crt and tls.key")
	fs.StringSliceVar(&o.clusterFiles, "cluster", nil, "fixture files (Namespaces, Nodes, RuntimeClasses), required")
	fs.StringVar(&o.healthProbeBindAddress, "health-probe-bind-address", o.healthProbeBindAddress, "address of /healthz and /readyz (plain HTTP; \"0\": off)")
	fs.StringVar(&o.namespace, "namespace", "", "exempt namespace")
	_ = fs.Parse(os.Args[1:])
	if len(o.clusterFiles) == 0 {
		fmt.Fprintln(os.Stderr, "minimal: --cluster is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "minimal:", err)
		os.Exit(1)
	}
}

// newMux serves both webhook paths with the Go decision.
func newMux(p *godecide.Policy, view *cluster.View, namespace string) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle(webhook.MutatePath, &handler{policy: p, view: view, namespace: namespace})
	mux.Handle(webhook.ValidatePath, &handler{policy: p, view: view, namespace: namespace, validate: true})
	return mux
}

func run(ctx context.Context, o options) error {
	p, err := godecide.Load()
	if err != nil {
		return err
	}
	view, err := cluster.LoadFiles(cluster.Options{}, o.clusterFiles...)
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(o.certDir, "tls.crt"), filepath.Join(o.certDir, "tls.key"))
	if err != nil {
		return fmt.Errorf("loading the serving certificate from %s: %w", o.certDir, err)
	}
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}}
	webhook.TLSOptions(tlsConfig)
	srv := &http.Server{
		Handler:           newMux(p, view, o.namespace),
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	l, err := net.Listen("tcp", net.JoinHostPort(o.bindAddress, strconv.Itoa(o.port)))
	if err != nil {
		return err
	}
	errs := make(chan error, 2)
	go func() { errs <- srv.ServeTLS(l, "", "") }()
	var health *http.Server
	if o.healthProbeBindAddress != "0" {
		ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
		mux := http.NewServeMux()
		mux.Handle("/healthz", ok)
		mux.Handle("/readyz", ok) // the webhook listener is bound and the view loaded
		health = &http.Server{Addr: o.healthProbeBindAddress, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { errs <- health.ListenAndServe() }()
	}
	select {
	case err := <-errs:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if health != nil {
		_ = health.Shutdown(shutdown)
	}
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
