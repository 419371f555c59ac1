package certs

// Integration tests of the self-managed mode against a real kube-apiserver
// and etcd (envtest, binaries from <repo>/bin). Two managers play two
// replicas of the webhook. Each replica's cert dir is served by a small
// admission webhook server (certwatcher, like controller-runtime's), and the
// ValidatingWebhookConfiguration points the API server at both. Probes run
// all along:
//
//   - through the API server: creating a labelled ConfigMap in a probe
//     namespace must be denied by the replica's server. The entries have
//     failurePolicy Ignore, so if the API server could not verify the
//     replica's certificate against the caBundle, the create would be
//     allowed, and the probe counts a failure;
//   - directly: a TLS handshake with each replica's server, verifying against
//     the caBundle as currently stored in the API server.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/runtimeguard/runtimeguard/e2e/tools"
)

var (
	envOnce    sync.Once
	testEnv    *envtest.Environment
	envCfg     *rest.Config
	envErr     error
	envStartup time.Duration
)

func TestMain(m *testing.M) {
	// controller-runtime's global logger (used by certwatcher): stderr,
	// shown by `go test` only for failures or with -v.
	logf.SetLogger(funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{}))
	code := m.Run()
	if testEnv != nil {
		_ = testEnv.Stop()
	}
	os.Exit(code)
}

// repoRoot walks up from the package directory to the directory holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above " + dir)
		}
		dir = parent
	}
}

// startEnv starts (once per test binary) etcd and kube-apiserver from
// <repo>/bin. Missing binaries fail the test: the suite is meant to run.
func startEnv(t *testing.T) *rest.Config {
	t.Helper()
	bin := tools.ForTest(t, "etcd", "kube-apiserver")
	envOnce.Do(func() {
		_ = os.Setenv("KUBEBUILDER_ASSETS", bin)
		testEnv = &envtest.Environment{BinaryAssetsDirectory: bin, ControlPlaneStartTimeout: 2 * time.Minute}
		start := time.Now()
		envCfg, envErr = testEnv.Start()
		envStartup = time.Since(start)
	})
	if envErr != nil {
		t.Fatalf("starting kube-apiserver and etcd from %s: %v", bin, envErr)
	}
	t.Logf("envtest control plane started in %s", envStartup.Round(time.Millisecond))
	return envCfg
}

// rbacFromReadme extracts the Roles and ClusterRoles from the ```yaml blocks
// of README.md, so that the test runs with exactly the documented RBAC.
func rbacFromReadme(t *testing.T) (roles map[string]rbacv1.Role, clusterRoles map[string]rbacv1.ClusterRole) {
	t.Helper()
	md, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	roles, clusterRoles = map[string]rbacv1.Role{}, map[string]rbacv1.ClusterRole{}
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(md, -1) {
		for _, doc := range strings.Split(string(m[1]), "\n---\n") {
			var meta metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("README yaml: %v\n%s", err, doc)
			}
			switch meta.Kind {
			case "Role":
				var r rbacv1.Role
				if err := yaml.UnmarshalStrict([]byte(doc), &r); err != nil {
					t.Fatalf("README Role: %v", err)
				}
				roles[r.Name] = r
			case "ClusterRole":
				var r rbacv1.ClusterRole
				if err := yaml.UnmarshalStrict([]byte(doc), &r); err != nil {
					t.Fatalf("README ClusterRole: %v", err)
				}
				clusterRoles[r.Name] = r
			}
		}
	}
	for _, n := range []string{"runtimeguard-certs", "runtimeguard-certs-create"} {
		if _, ok := roles[n]; !ok {
			t.Fatalf("README.md has no Role %q", n)
		}
	}
	if _, ok := clusterRoles["runtimeguard-certs"]; !ok {
		t.Fatal("README.md has no ClusterRole runtimeguard-certs")
	}
	return roles, clusterRoles
}

// --- fixture -----------------------------------------------------------------

type replica struct {
	name  string
	dir   string
	ln    net.Listener
	ready <-chan struct{}
	// readyAfter is how long after its manager started the cert dir was
	// ready; written before recorded is closed.
	readyAfter time.Duration
	recorded   chan struct{}
}

type fixture struct {
	t        *testing.T
	ctx      context.Context
	admin    client.Client
	cs       *kubernetes.Clientset
	ns       string
	probeNS  string
	opts     Options
	replicas []*replica
	logsOff  atomic.Bool
	wg       sync.WaitGroup
	mgrErrs  chan error
}

func newFixture(t *testing.T, ns string, preCreateSecret bool, opts Options) *fixture {
	cfg := startEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	f := &fixture{t: t, ctx: ctx, ns: ns, probeNS: ns + "-probe", mgrErrs: make(chan error, 4)}
	t.Cleanup(func() {
		f.logsOff.Store(true) // t.Logf after the test returns would panic
		cancel()
		f.wg.Wait() // managers, servers and watches stopped before the test ends
	})
	var err error
	if f.admin, err = client.New(cfg, client.Options{Scheme: clientgoscheme.Scheme}); err != nil {
		t.Fatal(err)
	}
	if f.cs, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{f.ns, f.probeNS} {
		f.create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}})
	}
	if preCreateSecret {
		// What the chart does (README): an empty Opaque Secret.
		f.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: DefaultSecretName, Namespace: ns}, Type: corev1.SecretTypeOpaque})
	}

	// A user with exactly the README's RBAC; the create Role only when the
	// Secret is not pre-created.
	roles, clusterRoles := rbacFromReadme(t)
	user, err := testEnv.AddUser(envtest.User{Name: "certs-" + ns}, nil)
	if err != nil {
		t.Fatal(err)
	}
	subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "certs-" + ns}}
	roleNames := []string{"runtimeguard-certs"}
	if !preCreateSecret {
		roleNames = append(roleNames, "runtimeguard-certs-create")
	}
	for _, rn := range roleNames {
		r := roles[rn]
		r.Namespace = ns
		f.create(&r)
		f.create(&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: rn, Namespace: ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: rn},
			Subjects:   subject,
		})
	}
	cr := clusterRoles["runtimeguard-certs"]
	cr.Name = "runtimeguard-certs-" + ns
	f.create(&cr)
	f.create(&rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: cr.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: cr.Name},
		Subjects:   subject,
	})

	// Listeners first: their ports go into the webhook configuration.
	for _, name := range []string{"a", "b"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ln.Close() })
		f.replicas = append(f.replicas, &replica{name: name, dir: filepath.Join(t.TempDir(), "certs-"+name), ln: ln})
	}
	f.createWebhookConfigs()

	opts.Enabled = true
	opts.Namespace = ns
	opts.MutatingWebhookConfiguration = DefaultWebhookConfigurationName
	opts.ValidatingWebhookConfiguration = DefaultWebhookConfigurationName
	opts.ExtraSANs = []string{"127.0.0.1"} // the API server dials the probe servers by IP
	f.opts = opts

	userCfg := user.Config()
	for _, r := range f.replicas {
		f.startReplica(cfg, userCfg, r)
	}
	return f
}

func (f *fixture) create(obj client.Object) {
	f.t.Helper()
	if err := f.admin.Create(f.ctx, obj); err != nil {
		f.t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

// createWebhookConfigs (re)creates the two configurations. Mutating: one
// entry that matches nothing (namespace label nobody sets). Validating: one
// entry per replica, matching only ConfigMaps labelled probe=<replica> in the
// probe namespace.
func (f *fixture) createWebhookConfigs() {
	f.t.Helper()
	name := DefaultWebhookConfigurationName
	for _, obj := range []client.Object{
		&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}},
		&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}},
	} {
		if err := f.admin.Delete(f.ctx, obj); err != nil && !apierrors.IsNotFound(err) {
			f.t.Fatal(err)
		}
	}
	ignore := admissionregistrationv1.Ignore
	none := admissionregistrationv1.SideEffectClassNone
	cmRule := []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
	}}
	f.create(&admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "never.runtimeguard.io",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://127.0.0.1:1/mutate")},
			Rules:                   cmRule,
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"runtimeguard-test": "never"}},
			FailurePolicy:           &ignore,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](5),
		}},
	})
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, r := range f.replicas {
		vwc.Webhooks = append(vwc.Webhooks, admissionregistrationv1.ValidatingWebhook{
			Name:                    r.name + ".probe.runtimeguard.io",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://" + r.ln.Addr().String() + "/validate")},
			Rules:                   cmRule,
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": f.probeNS}},
			ObjectSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{"probe": r.name}},
			FailurePolicy:           &ignore,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](5),
		})
	}
	f.create(vwc)
}

// startReplica runs a manager as the restricted user (leader election with
// the admin config, so only one of the two is leader: the other must still
// get certificates), plus the replica's probe webhook server.
func (f *fixture) startReplica(adminCfg, userCfg *rest.Config, r *replica) {
	f.t.Helper()
	log := funcr.New(func(prefix, args string) {
		if !f.logsOff.Load() {
			f.t.Logf("[replica %s] %s %s", r.name, prefix, args)
		}
	}, funcr.Options{LogTimestamp: true, TimestampFormat: "15:04:05.000"})
	// Each manager gets its own scheme: manager.New registers types into the
	// scheme it is given, and the default (client-go's global scheme) is
	// being read concurrently by the other replica.
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		f.t.Fatal(err)
	}
	mgr, err := manager.New(userCfg, manager.Options{
		Scheme:                        scheme,
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        "0",
		LeaderElection:                true,
		LeaderElectionID:              "runtimeguard-certs-test",
		LeaderElectionNamespace:       f.ns,
		LeaderElectionConfig:          adminCfg,
		LeaderElectionReleaseOnCancel: true,
		Logger:                        log,
	})
	if err != nil {
		f.t.Fatal(err)
	}
	ready, err := Setup(mgr, f.opts, r.dir)
	if err != nil {
		f.t.Fatal(err)
	}
	r.ready = ready
	r.recorded = make(chan struct{})
	start := time.Now()
	f.wg.Add(2)
	go func() {
		defer f.wg.Done()
		if err := mgr.Start(f.ctx); err != nil {
			f.mgrErrs <- fmt.Errorf("replica %s: %w", r.name, err)
		}
	}()
	go func() {
		defer f.wg.Done()
		select {
		case <-ready:
		case <-f.ctx.Done():
			return
		}
		r.readyAfter = time.Since(start)
		close(r.recorded)
		f.serveProbes(r, log)
	}()
}

// serveProbes is the replica's admission server: TLS from its cert dir via
// certwatcher, denying every request with a message naming the replica.
func (f *fixture) serveProbes(r *replica, log logr.Logger) {
	cw, err := certwatcher.New(filepath.Join(r.dir, TLSCertFile), filepath.Join(r.dir, TLSKeyFile))
	if err != nil {
		f.mgrErrs <- err
		return
	}
	go func() { _ = cw.Start(f.ctx) }()
	srv := &http.Server{
		TLSConfig: &tls.Config{GetCertificate: cw.GetCertificate, MinVersion: tls.VersionTLS12},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			var review admissionv1.AdmissionReview
			body, _ := io.ReadAll(req.Body)
			if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
				http.Error(w, "bad review", http.StatusBadRequest)
				return
			}
			review.Response = &admissionv1.AdmissionResponse{
				UID:     review.Request.UID,
				Allowed: false,
				Result:  &metav1.Status{Code: http.StatusForbidden, Message: "denied by replica-" + r.name},
			}
			review.Request = nil
			_ = json.NewEncoder(w).Encode(&review)
		}),
	}
	go func() {
		<-f.ctx.Done()
		_ = srv.Close()
	}()
	log.V(1).Info("probe server listening", "addr", r.ln.Addr().String())
	_ = srv.ServeTLS(r.ln, "", "")
}

func (f *fixture) waitReady(timeout time.Duration) {
	f.t.Helper()
	deadline := time.After(timeout)
	for _, r := range f.replicas {
		select {
		case <-r.recorded:
		case err := <-f.mgrErrs:
			f.t.Fatalf("manager failed: %v", err)
		case <-deadline:
			f.t.Fatalf("replica %s: cert dir not ready after %s", r.name, timeout)
		}
	}
}

func (f *fixture) secret() *corev1.Secret {
	f.t.Helper()
	s := &corev1.Secret{}
	if err := f.admin.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: DefaultSecretName}, s); err != nil {
		f.t.Fatal(err)
	}
	return s
}

// caBundles returns the caBundle of every webhook entry of both configurations.
func (f *fixture) caBundles() map[string][]byte {
	f.t.Helper()
	out := map[string][]byte{}
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := f.admin.Get(f.ctx, types.NamespacedName{Name: DefaultWebhookConfigurationName}, m); err != nil {
		f.t.Fatal(err)
	}
	if err := f.admin.Get(f.ctx, types.NamespacedName{Name: DefaultWebhookConfigurationName}, v); err != nil {
		f.t.Fatal(err)
	}
	for _, w := range m.Webhooks {
		out["mutating/"+w.Name] = w.ClientConfig.CABundle
	}
	for _, w := range v.Webhooks {
		out["validating/"+w.Name] = w.ClientConfig.CABundle
	}
	return out
}

func (f *fixture) host() string { return f.opts.withDefaults().ServiceName + "." + f.ns + ".svc" }

// waitFor polls cond every 50ms until it holds or timeout; returns the time taken.
func (f *fixture) waitFor(what string, timeout time.Duration, cond func() bool) time.Duration {
	f.t.Helper()
	start := time.Now()
	for !cond() {
		select {
		case err := <-f.mgrErrs:
			f.t.Fatalf("manager failed while waiting for %s: %v", what, err)
		default:
		}
		if time.Since(start) > timeout {
			f.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// dirCert reads a replica's served certificate file (nil if absent).
func (r *replica) dirCert() *x509.Certificate {
	b, err := os.ReadFile(filepath.Join(r.dir, TLSCertFile))
	if err != nil {
		return nil
	}
	c := parseCerts(b)
	if len(c) == 0 {
		return nil
	}
	return c[0]
}

func fingerprint(pemBytes []byte) string {
	c := parseCerts(pemBytes)
	if len(c) == 0 {
		return ""
	}
	s := sha256.Sum256(c[0].Raw)
	return hex.EncodeToString(s[:6])
}

// --- Secret history (to detect replicas fighting) ----------------------------

type secretHistory struct {
	mu      sync.Mutex
	writes  int
	cas     []string // distinct active CA fingerprints, in order of appearance
	events  []secretEvent
	watchOK atomic.Bool
}

type secretEvent struct {
	at                 time.Time
	ca, next, leafSer  string
	bundleFingerprints []string
}

func (f *fixture) watchSecret() *secretHistory {
	h := &secretHistory{}
	w, err := f.cs.CoreV1().Secrets(f.ns).Watch(f.ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", DefaultSecretName).String(),
	})
	if err != nil {
		f.t.Fatal(err)
	}
	h.watchOK.Store(true)
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer w.Stop()
		for {
			select {
			case <-f.ctx.Done():
				return
			case ev, ok := <-w.ResultChan():
				if !ok {
					h.watchOK.Store(false)
					return
				}
				s, isSecret := ev.Object.(*corev1.Secret)
				if !isSecret || (ev.Type != watch.Added && ev.Type != watch.Modified) {
					continue
				}
				e := secretEvent{at: time.Now(), ca: fingerprint(s.Data[SecretKeyCACert]), next: fingerprint(s.Data[SecretKeyNextCACert])}
				if l := parseCerts(s.Data[SecretKeyTLSCert]); len(l) > 0 {
					e.leafSer = l[0].SerialNumber.Text(16)
				}
				for _, c := range parseCerts(s.Data[SecretKeyCABundle]) {
					sum := sha256.Sum256(c.Raw)
					e.bundleFingerprints = append(e.bundleFingerprints, hex.EncodeToString(sum[:6]))
				}
				h.mu.Lock()
				if ev.Type == watch.Modified {
					h.writes++
				}
				h.events = append(h.events, e)
				if e.ca != "" && (len(h.cas) == 0 || h.cas[len(h.cas)-1] != e.ca) {
					h.cas = append(h.cas, e.ca)
				}
				h.mu.Unlock()
			}
		}
	}()
	return h
}

func (h *secretHistory) snapshot() (writes int, cas []string, events []secretEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.writes, append([]string(nil), h.cas...), append([]secretEvent(nil), h.events...)
}

// --- probes -------------------------------------------------------------------

type probeStats struct {
	mu       sync.Mutex
	apiOK    map[string]int
	tlsOK    map[string]int
	failures []string
	failed   int
	serials  map[string]map[string]bool // replica -> served serials seen
}

func (p *probeStats) fail(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failed++
	if len(p.failures) < 20 { // keep the first ones; the count says the rest
		p.failures = append(p.failures, time.Now().Format("15:04:05.000")+" "+fmt.Sprintf(format, args...))
	}
}

// startProbes probes every replica through the API server and by direct TLS
// handshake until the returned stop function is called.
func (f *fixture) startProbes() (stop func() *probeStats) {
	p := &probeStats{apiOK: map[string]int{}, tlsOK: map[string]int{}, serials: map[string]map[string]bool{}}
	ctx, cancel := context.WithCancel(f.ctx)
	var wg sync.WaitGroup
	for _, r := range f.replicas {
		p.serials[r.name] = map[string]bool{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				f.probeOnce(ctx, p, r)
				select {
				case <-ctx.Done():
				case <-time.After(150 * time.Millisecond):
				}
			}
		}()
	}
	return func() *probeStats {
		cancel()
		wg.Wait()
		return p
	}
}

func (f *fixture) probeOnce(ctx context.Context, p *probeStats, r *replica) {
	// Through the API server.
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-", Namespace: f.probeNS, Labels: map[string]string{"probe": r.name}}}
	err := f.admin.Create(ctx, cm)
	switch {
	case ctx.Err() != nil:
		return
	case err == nil:
		p.fail("replica %s: ConfigMap admitted, i.e. the API server could not call the webhook (TLS verification against caBundle?)", r.name)
		_ = f.admin.Delete(context.Background(), cm)
	case strings.Contains(err.Error(), "denied by replica-"+r.name):
		p.mu.Lock()
		p.apiOK[r.name]++
		p.mu.Unlock()
	default:
		p.fail("replica %s: unexpected API error: %v", r.name, err)
	}

	// Directly, against the caBundle currently stored for this replica's entry.
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := f.admin.Get(ctx, types.NamespacedName{Name: DefaultWebhookConfigurationName}, v); err != nil {
		if ctx.Err() == nil {
			p.fail("reading VWC: %v", err)
		}
		return
	}
	var bundle []byte
	for _, w := range v.Webhooks {
		if w.Name == r.name+".probe.runtimeguard.io" {
			bundle = w.ClientConfig.CABundle
		}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle) {
		p.fail("replica %s: caBundle empty", r.name)
		return
	}
	leaf, err := handshake(r.ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: f.host(), MinVersion: tls.VersionTLS12})
	if err != nil {
		if ctx.Err() == nil {
			p.fail("replica %s: TLS handshake verifying against the caBundle: %v", r.name, err)
		}
		return
	}
	p.mu.Lock()
	p.tlsOK[r.name]++
	p.serials[r.name][leaf.SerialNumber.Text(16)] = true
	p.mu.Unlock()
}

func (f *fixture) checkProbes(p *probeStats) {
	f.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range f.replicas {
		f.t.Logf("probes replica %s: %d denied through the API server, %d verified handshakes, %d distinct serials served",
			r.name, p.apiOK[r.name], p.tlsOK[r.name], len(p.serials[r.name]))
		if p.apiOK[r.name] == 0 || p.tlsOK[r.name] == 0 {
			f.t.Errorf("replica %s: no successful probe", r.name)
		}
	}
	if p.failed > 0 {
		f.t.Errorf("%d probe failures, first ones:\n%s", p.failed, strings.Join(p.failures, "\n"))
	}
}

// servedBy reports whether the replica's server presents want.
func (f *fixture) served(r *replica, want *x509.Certificate) bool {
	leaf, err := handshake(r.ln.Addr().String(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // identity checked below
	return err == nil && leaf.Equal(want)
}

// checkConverged asserts the steady state: one Secret, both cert dirs equal
// to it, every webhook entry trusting its bundle, both servers verifying.
func (f *fixture) checkConverged(what string) (leaf *x509.Certificate) {
	f.t.Helper()
	s := f.secret()
	leafKP, err := parseKeyPair(s.Data[SecretKeyTLSCert], s.Data[SecretKeyTLSKey])
	if err != nil {
		f.t.Fatalf("%s: Secret serving certificate: %v", what, err)
	}
	ca, err := parseKeyPair(s.Data[SecretKeyCACert], s.Data[SecretKeyCAKey])
	if err != nil || !ca.cert.IsCA {
		f.t.Fatalf("%s: Secret CA unusable: %v", what, err)
	}
	if err := verifyServing(leafKP.cert, []*x509.Certificate{ca.cert}, f.opts.withDefaults().hosts(), time.Now()); err != nil {
		f.t.Fatalf("%s: serving certificate not valid for all hosts under the CA: %v", what, err)
	}
	bundle := s.Data[SecretKeyCABundle]
	if !containsCert(parseCerts(bundle), ca.cert) {
		f.t.Fatalf("%s: bundle lacks the CA", what)
	}
	f.checkConvergedFiles(what)
	bundles := f.caBundles()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(bundles["validating/a.probe.runtimeguard.io"])
	for _, r := range f.replicas {
		for _, sn := range []string{f.host(), "127.0.0.1"} {
			got, err := handshake(r.ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: sn, MinVersion: tls.VersionTLS12})
			if err != nil {
				f.t.Errorf("%s: handshake with replica %s as %s against the caBundle: %v", what, r.name, sn, err)
			} else if !got.Equal(leafKP.cert) {
				f.t.Errorf("%s: replica %s serves serial %x, Secret has %x", what, r.name, got.SerialNumber, leafKP.cert.SerialNumber)
			}
		}
	}
	return leafKP.cert
}

// checkConvergedFiles asserts that both cert dirs hold exactly the Secret's
// certificate, key and bundle, and that every webhook entry trusts the bundle.
func (f *fixture) checkConvergedFiles(what string) {
	f.t.Helper()
	s := f.secret()
	bundle := s.Data[SecretKeyCABundle]
	if len(bundle) == 0 {
		f.t.Fatalf("%s: Secret has no CA bundle", what)
	}
	for _, r := range f.replicas {
		for file, want := range map[string][]byte{TLSCertFile: s.Data[SecretKeyTLSCert], TLSKeyFile: s.Data[SecretKeyTLSKey], CACertFile: bundle} {
			got, err := os.ReadFile(filepath.Join(r.dir, file))
			if err != nil || !bytes.Equal(got, want) {
				f.t.Errorf("%s: replica %s %s differs from the Secret (err %v)", what, r.name, file, err)
			}
		}
		checkMode(f.t, r.dir, TLSKeyFile, 0o600)
	}
	bundles := f.caBundles()
	if len(bundles) != 1+len(f.replicas) {
		f.t.Fatalf("%s: %d webhook entries, want %d", what, len(bundles), 1+len(f.replicas))
	}
	for entry, b := range bundles {
		if !bytes.Equal(b, bundle) {
			f.t.Errorf("%s: caBundle of %s (%d CAs) differs from the Secret's bundle (%d CAs)", what, entry, len(parseCerts(b)), len(parseCerts(bundle)))
		}
	}
}

// waitServedEverywhere waits until both cert dirs hold want and both servers present it.
func (f *fixture) waitServedEverywhere(want *x509.Certificate, timeout time.Duration) (dirs, served time.Duration) {
	f.t.Helper()
	dirs = f.waitFor("both cert dirs to hold the new certificate", timeout, func() bool {
		for _, r := range f.replicas {
			if c := r.dirCert(); c == nil || !c.Equal(want) {
				return false
			}
		}
		return true
	})
	served = dirs + f.waitFor("both servers to present the new certificate", timeout, func() bool {
		for _, r := range f.replicas {
			if !f.served(r, want) {
				return false
			}
		}
		return true
	})
	return dirs, served
}

// --- tests --------------------------------------------------------------------

// TestSelfManagedTwoReplicasRenewal: two replicas bootstrap one CA (the
// Secret does not exist: both race to create it), converge on one
// certificate, and renew the serving certificate (45s validity, renewal with
// a third left) while requests flow, without a single failed probe.
func TestSelfManagedTwoReplicasRenewal(t *testing.T) {
	f := newFixture(t, "rg-renewal", false, Options{CertValidity: 45 * time.Second})
	start := time.Now()
	t.Logf("managers started at %s", start.Format("15:04:05.000"))
	h := f.watchSecret()
	f.waitReady(60 * time.Second)
	t.Logf("cert dirs ready: replica a %s, replica b %s after manager start",
		f.replicas[0].readyAfter.Round(time.Millisecond), f.replicas[1].readyAfter.Round(time.Millisecond))

	converge := f.waitFor("initial convergence (cert dirs and caBundles)", 30*time.Second, func() bool {
		s := &corev1.Secret{}
		if err := f.admin.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: DefaultSecretName}, s); err != nil {
			return false
		}
		for _, r := range f.replicas {
			if c := r.dirCert(); c == nil || !bytes.Equal(c.Raw, parseCerts(s.Data[SecretKeyTLSCert])[0].Raw) {
				return false
			}
		}
		for _, b := range f.caBundles() {
			if !bytes.Equal(b, s.Data[SecretKeyCABundle]) {
				return false
			}
		}
		return true
	})
	t.Logf("both cert dirs and all caBundles agree with the Secret %s after start (%s after both were ready)",
		time.Since(start).Round(time.Millisecond), converge.Round(time.Millisecond))
	first := f.checkConverged("after bootstrap")
	s := f.secret()
	if s.Labels["app.kubernetes.io/managed-by"] != "runtimeguard" {
		t.Errorf("Secret not created by the rotator (labels %v)", s.Labels)
	}
	caPEM := s.Data[SecretKeyCACert]

	stop := f.startProbes()
	due := renewAt(first)
	t.Logf("serving certificate %x: NotBefore %s NotAfter %s, renewal due at %s (in %s)", first.SerialNumber,
		first.NotBefore.Format("15:04:05.000"), first.NotAfter.Format("15:04:05.000"), due.Format("15:04:05.000"), time.Until(due).Round(time.Millisecond))

	var renewed *x509.Certificate
	f.waitFor("serving certificate renewal in the Secret", time.Until(due)+30*time.Second, func() bool {
		s := &corev1.Secret{}
		if err := f.admin.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: DefaultSecretName}, s); err != nil {
			return false
		}
		c := parseCerts(s.Data[SecretKeyTLSCert])
		if len(c) > 0 && c[0].SerialNumber.Cmp(first.SerialNumber) != 0 {
			renewed = c[0]
			return true
		}
		return false
	})
	renewedAt := time.Now()
	t.Logf("renewed: serial %x -> %x, %s after the renewal point (%s before expiry)",
		first.SerialNumber, renewed.SerialNumber, renewedAt.Sub(due).Round(time.Millisecond), first.NotAfter.Sub(renewedAt).Round(time.Millisecond))
	if renewedAt.Before(due) {
		t.Errorf("renewed before the renewal point %s", due)
	}
	dirs, served := f.waitServedEverywhere(renewed, 20*time.Second)
	t.Logf("new certificate in both cert dirs %s and presented by both servers %s after the Secret changed",
		dirs.Round(time.Millisecond), served.Round(time.Millisecond))

	time.Sleep(2 * time.Second) // keep probing the new certificate a little
	p := stop()
	f.checkConverged("after renewal")
	if !bytes.Equal(f.secret().Data[SecretKeyCACert], caPEM) {
		t.Error("serving certificate renewal changed the CA")
	}
	f.checkProbes(p)
	for _, r := range f.replicas {
		if !p.serials[r.name][renewed.SerialNumber.Text(16)] || !p.serials[r.name][first.SerialNumber.Text(16)] {
			t.Errorf("replica %s: probes did not see both the old and the renewed certificate: %v", r.name, p.serials[r.name])
		}
	}

	writes, cas, _ := h.snapshot()
	t.Logf("Secret written %d times; distinct CAs seen: %v", writes, cas)
	if len(cas) != 1 {
		t.Errorf("replicas fought over the CA: %d distinct CAs in the Secret, want 1", len(cas))
	}
	if !h.watchOK.Load() {
		t.Error("Secret watch ended early; history incomplete")
	}
}

// TestSelfManagedCARollover: CA valid 90s (rollover with 30s left), serving
// certificates 30s, rollover delay 5s. The next CA must be in every caBundle
// before any replica serves a certificate signed by it, the old CA must stay
// trusted until it expires, and no probe may fail. The Secret is pre-created
// and the user has no create permission (the chart's recommended setup).
func TestSelfManagedCARollover(t *testing.T) {
	f := newFixture(t, "rg-rollover", true, Options{
		CAValidity:      90 * time.Second,
		CertValidity:    30 * time.Second,
		CARolloverDelay: 5 * time.Second,
	})
	h := f.watchSecret()
	f.waitReady(60 * time.Second)
	f.waitFor("initial convergence", 30*time.Second, func() bool {
		s := &corev1.Secret{}
		if err := f.admin.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: DefaultSecretName}, s); err != nil || len(s.Data[SecretKeyTLSCert]) == 0 {
			return false
		}
		for _, r := range f.replicas {
			if c := r.dirCert(); c == nil || !bytes.Equal(c.Raw, parseCerts(s.Data[SecretKeyTLSCert])[0].Raw) {
				return false
			}
		}
		for _, b := range f.caBundles() {
			if !bytes.Equal(b, s.Data[SecretKeyCABundle]) {
				return false
			}
		}
		return true
	})
	f.checkConverged("after bootstrap")
	oldCA := parseCerts(f.secret().Data[SecretKeyCACert])[0]
	t.Logf("CA %q valid until %s; rollover due at %s", oldCA.Subject.CommonName, oldCA.NotAfter.Format("15:04:05.000"), renewAt(oldCA).Format("15:04:05.000"))

	stop := f.startProbes()

	// Phase 1: next CA published.
	var next *x509.Certificate
	f.waitFor("next CA in the Secret", time.Until(renewAt(oldCA))+20*time.Second, func() bool {
		n := parseCerts(f.secret().Data[SecretKeyNextCACert])
		if len(n) > 0 {
			next = n[0]
		}
		return next != nil
	})
	published := time.Now()
	t.Logf("rollover started %s after the due time; next CA %q", published.Sub(renewAt(oldCA)).Round(time.Millisecond), next.Subject.CommonName)
	if leaf := parseCerts(f.secret().Data[SecretKeyTLSCert])[0]; leaf.CheckSignatureFrom(oldCA) != nil {
		t.Error("serving certificate not signed by the old CA right after the next CA was published")
	}
	inBundles := f.waitFor("next CA in every caBundle", 10*time.Second, func() bool {
		for _, b := range f.caBundles() {
			if !containsCert(parseCerts(b), next) {
				return false
			}
		}
		return true
	})
	t.Logf("next CA in every caBundle %s after it was added to the Secret", inBundles.Round(time.Millisecond))

	// Phase 2: promotion.
	f.waitFor("promotion of the next CA", f.opts.CARolloverDelay+20*time.Second, func() bool {
		return containsCert(parseCerts(f.secret().Data[SecretKeyCACert]), next)
	})
	promoted := time.Now()
	t.Logf("next CA promoted %s after it was published (delay %s)", promoted.Sub(published).Round(time.Millisecond), f.opts.CARolloverDelay)
	if promoted.Sub(published) < f.opts.CARolloverDelay-time.Second {
		t.Errorf("promoted after %s, before the rollover delay %s", promoted.Sub(published), f.opts.CARolloverDelay)
	}
	s := f.secret()
	newLeaf := parseCerts(s.Data[SecretKeyTLSCert])[0]
	if newLeaf.CheckSignatureFrom(next) != nil {
		t.Fatal("serving certificate after promotion not signed by the new CA")
	}
	if b := parseCerts(s.Data[SecretKeyCABundle]); !containsCert(b, oldCA) || !containsCert(b, next) {
		t.Fatal("bundle after promotion must hold the old and the new CA")
	}
	for entry, b := range f.caBundles() {
		if c := parseCerts(b); !containsCert(c, oldCA) || !containsCert(c, next) {
			t.Errorf("caBundle of %s right after promotion lacks the old or the new CA", entry)
		}
	}
	dirs, served := f.waitServedEverywhere(newLeaf, 20*time.Second)
	t.Logf("certificate from the new CA in both cert dirs %s, presented by both servers %s after promotion was observed",
		dirs.Round(time.Millisecond), served.Round(time.Millisecond))

	// Phase 3: the old CA leaves the bundles once expired.
	f.waitFor("expired old CA pruned from every caBundle", time.Until(oldCA.NotAfter)+20*time.Second, func() bool {
		for _, b := range f.caBundles() {
			if containsCert(parseCerts(b), oldCA) {
				return false
			}
		}
		return true
	})
	t.Logf("old CA pruned from the caBundles %s after it expired", time.Since(oldCA.NotAfter).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	p := stop()
	f.checkConverged("after rollover")
	f.checkProbes(p)

	writes, cas, events := h.snapshot()
	t.Logf("Secret written %d times; active CAs in order: %v", writes, cas)
	if len(cas) != 2 {
		t.Errorf("want exactly 2 active CAs over the test (bootstrap, rolled), got %d: %v", len(cas), cas)
	}
	nexts := map[string]bool{}
	for _, e := range events {
		if e.next != "" {
			nexts[e.next] = true
		}
	}
	if len(nexts) != 1 {
		t.Errorf("want exactly one next CA generated, got %d (replicas fought over the rollover?)", len(nexts))
	}
	if !h.watchOK.Load() {
		t.Error("Secret watch ended early; history incomplete")
	}
}

// TestSetupDisabled: nothing is registered without --self-signed-certs.
func TestSetupDisabled(t *testing.T) {
	ready, err := Setup(nil, Options{}, "")
	if err != nil || ready != nil {
		t.Fatalf("Setup(disabled) = %v, %v; want nil, nil", ready, err)
	}
	if _, err := Setup(nil, Options{Enabled: true}, t.TempDir()); err == nil {
		t.Fatal("Setup with invalid options must fail")
	}
}

// staleReader answers Gets from a snapshot taken earlier, as a replica whose
// reads raced with another replica's write would see it.
type staleReader struct {
	client.Reader
	secret *corev1.Secret
	vwc    *admissionregistrationv1.ValidatingWebhookConfiguration
	mwc    *admissionregistrationv1.MutatingWebhookConfiguration
}

func (s staleReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	switch o := obj.(type) {
	case *corev1.Secret:
		s.secret.DeepCopyInto(o)
	case *admissionregistrationv1.ValidatingWebhookConfiguration:
		s.vwc.DeepCopyInto(o)
	case *admissionregistrationv1.MutatingWebhookConfiguration:
		s.mwc.DeepCopyInto(o)
	default:
		return s.Reader.Get(ctx, key, obj, opts...)
	}
	return nil
}

// TestSelfManagedStaleReplicaCannotOverwrite makes the replica race
// deterministic: replica b decides from the state both replicas saw before
// replica a wrote. Its Secret update and its caBundle patch must both be
// rejected (resourceVersion preconditions), leaving a's CA in place, and on
// its next pass b must adopt a's certificate instead of generating its own.
func TestSelfManagedStaleReplicaCannotOverwrite(t *testing.T) {
	cfg := startEnv(t)
	ctx := context.Background()
	admin, err := client.New(cfg, client.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ns := "rg-stale"
	f := &fixture{t: t, ctx: ctx, admin: admin, ns: ns, probeNS: ns + "-probe"}
	for _, n := range []string{ns, f.probeNS} {
		f.create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}})
	}
	f.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: DefaultSecretName, Namespace: ns}, Type: corev1.SecretTypeOpaque})
	for _, name := range []string{"a", "b"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		f.replicas = append(f.replicas, &replica{name: name, dir: filepath.Join(t.TempDir(), name), ln: ln})
	}
	f.createWebhookConfigs()

	// Snapshot of the world before anyone wrote.
	stale := staleReader{Reader: admin, secret: &corev1.Secret{}, vwc: &admissionregistrationv1.ValidatingWebhookConfiguration{}, mwc: &admissionregistrationv1.MutatingWebhookConfiguration{}}
	if err := admin.Get(ctx, types.NamespacedName{Namespace: ns, Name: DefaultSecretName}, stale.secret); err != nil {
		t.Fatal(err)
	}
	if err := admin.Get(ctx, types.NamespacedName{Name: DefaultWebhookConfigurationName}, stale.vwc); err != nil {
		t.Fatal(err)
	}
	if err := admin.Get(ctx, types.NamespacedName{Name: DefaultWebhookConfigurationName}, stale.mwc); err != nil {
		t.Fatal(err)
	}

	o := Options{Enabled: true, Namespace: ns, MutatingWebhookConfiguration: DefaultWebhookConfigurationName,
		ValidatingWebhookConfiguration: DefaultWebhookConfigurationName}.withDefaults()
	f.opts = o
	ra := newRotator(o, f.replicas[0].dir, admin, admin, logr.Discard())
	rb := newRotator(o, f.replicas[1].dir, stale, admin, logr.Discard())
	for _, d := range []string{f.replicas[0].dir, f.replicas[1].dir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}

	if _, err := ra.reconcile(ctx); err != nil {
		t.Fatalf("replica a: %v", err)
	}
	caA := f.secret().Data[SecretKeyCACert]
	bundlesA := f.caBundles()

	// b plans from the empty Secret: generates its own CA, and must lose.
	if _, err := rb.reconcile(ctx); !errors.Is(err, errRetrySoon) {
		t.Fatalf("stale replica b: reconcile = %v, want a conflict (errRetrySoon)", err)
	}
	if !bytes.Equal(f.secret().Data[SecretKeyCACert], caA) {
		t.Fatal("stale replica b overwrote the CA written by replica a")
	}

	// b with a fresh Secret but stale webhook configurations: its patch
	// (same content as a's, but pinned to the old resourceVersion) must be
	// rejected too, and nothing must change.
	rb.reader = staleReader{Reader: admin, secret: f.secret(), vwc: stale.vwc, mwc: stale.mwc}
	if _, err := rb.reconcile(ctx); !errors.Is(err, errRetrySoon) {
		t.Fatalf("replica b with stale webhook configurations: reconcile = %v, want a conflict", err)
	}
	for k, v := range f.caBundles() {
		if !bytes.Equal(v, bundlesA[k]) {
			t.Errorf("caBundle of %s changed by a stale patch", k)
		}
	}

	// b's next pass, with fresh reads, adopts a's certificate.
	rb.reader = admin
	if _, err := rb.reconcile(ctx); err != nil {
		t.Fatalf("replica b, fresh: %v", err)
	}
	select {
	case <-rb.ready:
	default:
		t.Fatal("replica b not ready after a successful pass")
	}
	if !bytes.Equal(f.secret().Data[SecretKeyCACert], caA) {
		t.Fatal("CA changed")
	}
	f.checkConvergedFiles("after the stale replica's retry")
}
