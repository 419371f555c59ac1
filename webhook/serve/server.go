package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/runtimeguard/runtimeguard/certs"
	"github.com/runtimeguard/runtimeguard/version"
	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/audit"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/policycheck"
)

// Run serves the webhook until ctx is cancelled, then drains in-flight admissions.
func Run(ctx context.Context, o Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	log := ctrl.Log.WithName("serve")
	build := version.Get()
	log.Info("runtimeguard starting", "version", build.Version, "commit", build.Commit, "go", build.GoVersion, "opa", build.OPAVersion)
	live := len(o.ClusterFiles) == 0
	cfg, err := restConfig(o.Kubeconfig, live)
	if err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	var cacheOpts cache.Options
	if live {
		// Only with an API server: per-object cache options need its REST mapping.
		cacheOpts = cluster.CacheOptions()
	}
	var certsReady <-chan struct{}
	serving := newServingCert(metrics.Registry, log.WithName("serving-certificate"))
	mgr, err := manager.New(cfg, manager.Options{
		Scheme:                  scheme,
		Cache:                   cacheOpts,
		Metrics:                 metricsserver.Options{BindAddress: o.MetricsBindAddress},
		HealthProbeBindAddress:  o.HealthProbeBindAddress,
		GracefulShutdownTimeout: ptr.To(o.ShutdownTimeout),
		// With self-managed certificates the server must wait for the first certificate.
		WebhookServer: certs.GateWebhookServer(ctrlwebhook.NewServer(ctrlwebhook.Options{
			Host:    o.BindAddress,
			Port:    o.Port,
			CertDir: o.CertDir,
			TLSOpts: []func(*tls.Config){webhook.TLSOptions, serving.tlsOption(ctx, o.CertDir)},
		}), &certsReady),
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}

	if o.Certs.Enabled {
		certOpts := o.Certs
		certOpts.Namespace = o.Namespace
		if certsReady, err = certs.Setup(mgr, certOpts, o.CertDir); err != nil {
			return fmt.Errorf("self-signed certificates: %w", err)
		}
	}

	var view *cluster.View
	if live {
		viewOpts := o.ViewOptions()
		viewOpts.NamespaceGetter = cluster.NamespaceGetter(mgr.GetAPIReader())
		view = cluster.NewView(viewOpts)
		if err := cluster.Watch(ctx, mgr.GetCache(), view); err != nil {
			return err
		}
		if err := cluster.WatchClaims(ctx, mgr.GetCache(), mgr.GetAPIReader(), view); err != nil {
			return err
		}
	} else if view, err = o.LoadView(nil); err != nil {
		return fmt.Errorf("loading --cluster files: %w", err)
	}

	// A broken policy at start does not end the process (that would crash-loop): the replica
	// stays NotReady (/readyz fails on the "policy" check), logs why with file:line, and the
	// watcher retries on every change of the files.
	gate := &policyGate{opts: &o, view: view, metrics: webhook.NewMetrics(metrics.Registry)}
	policyMetrics := newReloadMetrics(metrics.Registry)
	set, err := o.LoadPolicies()
	if err == nil {
		err = gate.apply(ctx, set)
	}
	if err != nil {
		gate.fail(err)
		policyMetrics.observeReload(err)
		if len(o.PolicyPaths()) == 0 {
			return fmt.Errorf("compiling the embedded policy: %w", err) // nothing to wait for
		}
		log.Error(err, "policy does not load; serving no admission and staying NotReady until the policy files are fixed", "paths", o.PolicyPaths())
	} else {
		engine := gate.Engine()
		generation, hash := engine.Generation()
		log.Info("policy compiled", "files", set.Files, "generation", generation, "hash", hash)
		policyMetrics.observePolicy(engine)
	}
	metrics.Registry.MustRegister(NewInventoryCollector(view, gate.gpuPolicy), newBuildInfo(build))
	stopping := &atomic.Bool{} // set when the drain starts
	server := mgr.GetWebhookServer()
	server.Register(webhook.MutatePath, closeWhileDraining(stopping, gate.mutate()))
	server.Register(webhook.ValidatePath, closeWhileDraining(stopping, gate.validate()))
	// Policy ConfigMaps are checked before the API server stores them (the chart's
	// policy.runtimeguard.io webhook); it needs no policy of its own, so it serves while NotReady.
	server.Register(policycheck.Path, &ctrlwebhook.Admission{Handler: &policycheck.Checker{BaseDirs: o.PolicyDirs}})

	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("cluster-view", func(*http.Request) error {
		if !view.Synced() {
			return errors.New("cluster view not synced")
		}
		return nil
	}); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("webhook", server.StartedChecker()); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("policy", gate.check); err != nil {
		return err
	}
	if live {
		dc, err := discovery.NewDiscoveryClientForConfig(cfg)
		if err != nil {
			return err
		}
		probe := newAPIProbe(dc, o.MaxStaleness, log.WithName("apiserver"), metrics.Registry)
		if err := mgr.Add(probe); err != nil {
			return err
		}
		if err := mgr.AddReadyzCheck("cluster-view-fresh", probe.check); err != nil {
			return err
		}
	}
	if err := mgr.AddReadyzCheck("shutdown", func(*http.Request) error {
		if stopping.Load() {
			return errors.New("shutting down")
		}
		return nil
	}); err != nil {
		return err
	}
	if err := addFailurePolicyKeeper(mgr, o, serving, log.WithName("failure-policy")); err != nil {
		return err
	}
	if paths := o.PolicyPaths(); len(paths) > 0 {
		if err := mgr.Add(&policyWatcher{paths: paths, load: o.LoadPolicies, gate: gate, log: log.WithName("policy"), metrics: policyMetrics}); err != nil {
			return err
		}
	}
	if err := addAuditRunner(mgr, cfg, o, live, gate, view, log.WithName("audit")); err != nil {
		return err
	}
	if err := addParamsKeeper(mgr, cfg, o, live, view, log.WithName("native-params")); err != nil {
		return err
	}
	log.Info("starting", "port", o.Port, "enforcement", o.Enforcement, "live", live)
	return mgr.Start(drain(ctx, o.ShutdownDelay, stopping, log))
}

// drain returns a context that ends ShutdownDelay after ctx does. In between /readyz fails
// and the webhook keeps answering: endpoints and load balancers move new connections to other
// replicas, and closeWhileDraining makes clients drop the connections they have, before this
// one stops accepting, so a rolling update drops no admission. The
// manager then shuts the server down gracefully (in-flight requests complete).
func drain(ctx context.Context, delay time.Duration, stopping *atomic.Bool, log logr.Logger) context.Context {
	drained, cancel := context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		<-ctx.Done()
		stopping.Store(true)
		log.Info("shutdown requested; draining before stopping the webhook server", "delay", delay)
		time.Sleep(delay)
		cancel()
	}()
	return drained
}

// closeWhileDraining makes every answer given while the server drains close its connection:
// HTTP/1.1 answers carry "Connection: close", and HTTP/2 connections get a GOAWAY (net/http
// turns that header into one). A failing /readyz only keeps new connections away (endpoints
// and Service proxies route connections, not requests): the API server's webhook client keeps
// its HTTP/1.1 keep-alive connections and would go on sending requests on them until the
// server closes them at the end of the drain, and a request sent on a connection the server
// is closing fails with EOF, which the API server does not retry for a POST, so the admission
// fails. Closed by the client after an answer instead, the connection is re-established
// through the Service, to a ready replica.
func closeWhileDraining(draining *atomic.Bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// addAuditRunner adds the background audit when it is on and there is an API server to audit.
func addAuditRunner(mgr manager.Manager, cfg *rest.Config, o Options, live bool, gate *policyGate, view *cluster.View, log logr.Logger) error {
	switch {
	case o.Audit.Interval == 0:
		log.Info("background audit off (--audit-interval=0)")
		return nil
	case !live:
		log.Info("background audit off: --cluster fixtures hold no Pods or workloads to audit")
		return nil
	case o.Namespace == "":
		log.Info("background audit off: it needs --webhook-namespace (or $POD_NAMESPACE) for its Lease")
		return nil
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var reports *audit.ReportWriter
	if o.Audit.PolicyReports {
		dyn, err := dynamic.NewForConfig(cfg)
		if err != nil {
			return err
		}
		reports = &audit.ReportWriter{Client: dyn}
	}
	return mgr.Add(newAuditRunner(o.Audit, o.Namespace, client, reports, gate, view, metrics.Registry, log))
}

// addParamsKeeper keeps the native policies' parameters when asked and there is an API server.
func addParamsKeeper(mgr manager.Manager, cfg *rest.Config, o Options, live bool, view *cluster.View, log logr.Logger) error {
	switch {
	case !o.NativeParams.Enabled:
		return nil
	case !live || o.Namespace == "":
		return errors.New("--native-params needs an API server (--kubeconfig or in-cluster) and --webhook-namespace (or $POD_NAMESPACE) to write to")
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	return mgr.Add(newParamsKeeper(o.NativeParams, o.Namespace, client, view, log))
}

// restConfig returns the API server config. Fixture mode has no API server; the manager
// still wants a config, and nothing ever dials it because no informer is requested.
func restConfig(k cluster.Kubeconfig, live bool) (*rest.Config, error) {
	if !live {
		return &rest.Config{Host: "https://127.0.0.1:1"}, nil
	}
	cfg, err := k.RESTConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return cfg, nil
}
