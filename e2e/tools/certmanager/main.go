// Command cert-manager-lite runs the real cert-manager controllers (SelfSigned and CA issuers,
// the Certificate lifecycle, CertificateRequest approval and signing) and the cainjector (for
// Mutating/ValidatingWebhookConfigurations) in one process against a kube-apiserver, for the
// end-to-end tests, where the upstream images cannot run. It has no admission webhook of its own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	kscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmscheme "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned/scheme"
	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"
	"github.com/cert-manager/cert-manager/pkg/controller/cainjector"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	"github.com/cert-manager/cert-manager/pkg/util"

	// Controllers register themselves in controllerpkg.Known() when imported.
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	// Issuer implementations used by the issuers/clusterissuers controllers.
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

// log is for this program's own few lines; the libraries log through quiet loggers.
var log = klog.Background().WithName("cert-manager-lite")

type options struct {
	kubeconfig               string
	clusterResourceNamespace string
	leaderElect              bool
	leaderElectionNamespace  string
	healthAddr               string
	workers                  int
	crdWait                  time.Duration
	backoffMin, backoffMax   time.Duration
}

func main() {
	klog.InitFlags(nil) // -v, -vmodule, ...; klog writes to stderr
	var o options
	flag.StringVar(&o.clusterResourceNamespace, "cluster-resource-namespace", "cert-manager",
		"namespace holding the Secrets of ClusterIssuers (e.g. a CA ClusterIssuer's key pair)")
	flag.BoolVar(&o.leaderElect, "leader-elect", false, "use a Lease so that only one instance works at a time")
	flag.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "",
		"namespace of the leader-election Lease (default: --cluster-resource-namespace)")
	flag.StringVar(&o.healthAddr, "health-addr", "",
		`address of a /healthz endpoint that answers "ok" once all controllers have started and synced; "" or "0" turns it off, "127.0.0.1:0" picks a free port (logged)`)
	flag.IntVar(&o.workers, "workers", 5, "workers per cert-manager controller")
	flag.DurationVar(&o.crdWait, "crd-wait", 2*time.Minute, "how long to wait at start for the cert-manager.io/v1 CRDs to be served")
	flag.DurationVar(&o.backoffMin, "certificate-request-minimum-backoff-duration", time.Hour,
		"first delay before a Certificate whose request failed is retried (upstream default)")
	flag.DurationVar(&o.backoffMax, "certificate-request-maximum-backoff-duration", 32*time.Hour,
		"longest delay before a Certificate whose request failed is retried (upstream default)")
	// controller-runtime registers -kubeconfig on flag.CommandLine itself; defining it again panics.
	if flag.Lookup("kubeconfig") == nil {
		flag.String("kubeconfig", "", "path to a kubeconfig")
	}
	flag.Parse()
	o.kubeconfig = flag.Lookup("kubeconfig").Value.String()
	if o.leaderElectionNamespace == "" {
		o.leaderElectionNamespace = o.clusterResourceNamespace
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	stopping := func() bool { return ctx.Err() != nil }
	ctrl.SetLogger(quiet(klog.Background(), stopping).WithName("cainjector"))
	logf.Log = quiet(klog.Background(), stopping).WithName("cert-manager")
	if err := run(ctx, o); err != nil && !stopping() {
		log.Error(err, "exiting")
		klog.Flush()
		os.Exit(1)
	}
	log.Info("stopped")
	klog.Flush()
}

// kubeconfigPath resolves the kubeconfig the same way for both halves: the flag, then $KUBECONFIG
// (first entry), then ~/.kube/config if it exists; "" means in-cluster.
func kubeconfigPath(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	for _, p := range filepath.SplitList(os.Getenv("KUBECONFIG")) {
		if p != "" {
			return p
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".kube", "config")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

func run(ctx context.Context, o options) error {
	kubeconfig := kubeconfigPath(o.kubeconfig)
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig) // in-cluster when kubeconfig is ""
	if err != nil {
		return fmt.Errorf("loading kubeconfig %q: %w", kubeconfig, err)
	}
	if err := waitForCRDs(ctx, cfg, o.crdWait); err != nil {
		return err
	}

	// The cainjector runs in a controller-runtime manager, which also does leader election for the
	// cert-manager controllers (added below as a runnable that needs it). Its REST config must carry
	// a user agent: the injector uses it as the field manager of its apply patches.
	scheme := runtime.NewScheme()
	utilruntime.Must(kscheme.AddToScheme(scheme))
	utilruntime.Must(cmscheme.AddToScheme(scheme))
	mgr, err := ctrl.NewManager(util.RestConfigWithUserAgent(cfg, "cainjector"), ctrl.Options{
		Scheme: scheme,
		Cache:  cache.Options{ReaderFailOnMissingInformer: true},
		// Like upstream: Secrets are read directly, and only their metadata is watched.
		Client:                        client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        "0",
		LeaderElection:                o.leaderElect,
		LeaderElectionNamespace:       o.leaderElectionNamespace,
		LeaderElectionID:              "cert-manager-lite",
		LeaderElectionResourceLock:    resourcelock.LeasesResourceLock,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	err = cainjector.RegisterAllInjectors(ctx, mgr, cainjector.SetupOptions{
		EnableCertificatesDataSource: true,
		EnabledReconcilersFor: map[string]bool{
			cainjector.MutatingWebhookConfigurationName:   true,
			cainjector.ValidatingWebhookConfigurationName: true,
		},
	})
	if err != nil {
		return fmt.Errorf("registering cainjector: %w", err)
	}

	// Both runnables below need leader election (like the injectors), so they start once elected.
	var controllersSynced, injectorSynced atomic.Bool
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		return runControllers(ctx, o, kubeconfig, &controllersSynced)
	})); err != nil {
		return err
	}
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		return waitInjectorSynced(ctx, mgr.GetCache(), &injectorSynced)
	})); err != nil {
		return err
	}
	ready := func() bool { return controllersSynced.Load() && injectorSynced.Load() }
	if o.healthAddr != "" && o.healthAddr != "0" {
		if err := mgr.Add(healthServer(o.healthAddr, ready)); err != nil {
			return err
		}
	}
	go func() { // one concise "ready" line, which tests can wait for
		if wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
			return ready(), nil
		}) == nil {
			log.Info("ready: cert-manager controllers and cainjector started")
		}
	}()
	return mgr.Start(ctx)
}

// runControllers builds the cert-manager controller context and runs every registered controller
// until ctx ends, the way upstream's controller binary does.
func runControllers(ctx context.Context, o options, kubeconfig string, synced *atomic.Bool) error {
	ctx = logf.NewContext(ctx, logf.Log)
	factory, err := controllerpkg.NewContextFactory(ctx, controllerpkg.ContextOptions{
		Kubeconfig:         kubeconfig,
		KubernetesAPIQPS:   20,
		KubernetesAPIBurst: 50,
		IssuerOptions: controllerpkg.IssuerOptions{
			ClusterResourceNamespace:        o.clusterResourceNamespace,
			ClusterIssuerAmbientCredentials: true,
		},
		CertificateOptions: controllerpkg.CertificateOptions{
			CertificateRequestMinimumBackoffDuration: o.backoffMin,
			CertificateRequestMaximumBackoffDuration: o.backoffMax,
		},
		SchedulerOptions: controllerpkg.SchedulerOptions{MaxConcurrentChallenges: 60},
	})
	if err != nil {
		return fmt.Errorf("building controller context: %w", err)
	}
	base, err := factory.Build()
	if err != nil {
		return err
	}

	known := controllerpkg.Known()
	names := make([]string, 0, len(known))
	for n := range known {
		names = append(names, n)
	}
	slices.Sort(names)
	g, gctx := errgroup.WithContext(ctx)
	for _, n := range names {
		c, err := known[n](factory)
		if err != nil {
			return fmt.Errorf("creating controller %s: %w", n, err)
		}
		g.Go(func() error {
			if err := c.Run(o.workers, gctx); err != nil {
				return fmt.Errorf("controller %s: %w", n, err)
			}
			return nil
		})
	}
	log.Info("starting controllers", "controllers", names)
	base.SharedInformerFactory.Start(gctx.Done())
	base.KubeSharedInformerFactory.Start(gctx.Done())
	base.HTTP01ResourceMetadataInformersFactory.Start(gctx.Done())
	g.Go(func() error {
		for _, s := range []map[string]bool{
			typeNames(base.SharedInformerFactory.WaitForCacheSync(gctx.Done())),
			base.KubeSharedInformerFactory.WaitForCacheSync(gctx.Done()),
		} {
			for name, ok := range s {
				if !ok && gctx.Err() == nil {
					return fmt.Errorf("informer cache for %s did not sync", name)
				}
			}
		}
		synced.Store(gctx.Err() == nil)
		return nil
	})
	err = g.Wait()
	base.HTTP01ResourceMetadataInformersFactory.Shutdown()
	base.KubeSharedInformerFactory.Shutdown()
	base.SharedInformerFactory.Shutdown()
	return err
}

// waitInjectorSynced sets synced once the informers that the injectors watch have synced.
func waitInjectorSynced(ctx context.Context, c cache.Cache, synced *atomic.Bool) error {
	secretMeta := &metav1.PartialObjectMetadata{}
	secretMeta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	objs := []client.Object{
		&admissionregistrationv1.MutatingWebhookConfiguration{},
		&admissionregistrationv1.ValidatingWebhookConfiguration{},
		&cmapi.Certificate{},
		secretMeta,
	}
	for _, obj := range objs {
		inf, err := c.GetInformer(ctx, obj, cache.BlockUntilSynced(false))
		if err != nil {
			return fmt.Errorf("cainjector informer for %T: %w", obj, err)
		}
		if err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
			return inf.HasSynced(), nil
		}); err != nil {
			return nil // stopping
		}
	}
	synced.Store(true)
	return nil
}

func typeNames[K interface {
	comparable
	fmt.Stringer
}](m map[K]bool) map[string]bool {
	out := make(map[string]bool, len(m))
	for k, v := range m {
		out[k.String()] = v
	}
	return out
}

// waitForCRDs waits until the API server serves cert-manager.io/v1, since informers for a kind
// the server does not know fail.
func waitForCRDs(ctx context.Context, cfg *rest.Config, timeout time.Duration) error {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	var last error
	err = wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(context.Context) (bool, error) {
		list, err := dc.ServerResourcesForGroupVersion("cert-manager.io/v1")
		if err != nil {
			last = err
			return false, nil
		}
		have := map[string]bool{}
		for _, r := range list.APIResources {
			have[r.Name] = true
		}
		last = fmt.Errorf("served resources: %v", list.APIResources)
		return have["certificates"] && have["certificaterequests"] && have["issuers"] && have["clusterissuers"], nil
	})
	if err != nil {
		return fmt.Errorf("cert-manager.io/v1 CRDs not served after %s (install deploy/crds first): %v", timeout, last)
	}
	return nil
}

// healthServer serves /healthz: "ok" once ready() holds, 503 before. Not subject to leader election.
func healthServer(addr string, ready func() bool) manager.Runnable {
	return noLeaderElection(func(ctx context.Context) error {
		ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("health server: %w", err)
		}
		log.Info("serving /healthz", "address", ln.Addr().String())
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
			if !ready() {
				http.Error(w, "starting", http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte("ok"))
		})
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			<-ctx.Done()
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(shutdownCtx) //nolint:contextcheck // ctx is already done
		}()
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
}

type noLeaderElection func(context.Context) error

func (f noLeaderElection) Start(ctx context.Context) error { return f(ctx) }
func (noLeaderElection) NeedLeaderElection() bool          { return false }
