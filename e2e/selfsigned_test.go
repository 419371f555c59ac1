package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/runtimeguard/runtimeguard/certs"
	"github.com/runtimeguard/runtimeguard/e2e/controlplane"
	"github.com/runtimeguard/runtimeguard/e2e/harness"
)

// Scenario 14.
//
// The chart without cert-manager (certManager.enabled=false): two replicas of the binary,
// started with the flags the chart's Deployment passes, as the chart's ServiceAccount with the
// chart's RBAC (including the certs Role/ClusterRole scoped by name) and the chart's empty
// pre-created Secret, behind a load balancer standing in for the Service. They bootstrap one CA
// and one serving certificate between them, inject the caBundle into the chart's webhook
// configurations (rendered without one), serve admissions through the API server, renew the
// certificate, and hand over when one replica stops, with no failed admission.
func TestSelfSignedModeTwoReplicasBootstrapInjectAndRenew(t *testing.T) {
	ensureStandardCluster(t)
	ctx := context.Background()
	// The chart's schema accepts only whole hours for selfSignedCerts.certValidity
	// (^[1-9][0-9]*h$), so the short validity that makes a renewal happen during the test is
	// appended to the chart's flags; the later flag wins. 30 s is the binary's minimum
	// (certs.MinValidity); renewal is due with a third of the lifetime left, about 19 s after
	// issuance (NotBefore is backdated by a tenth), which leaves 11 s of slack.
	const certValidity = certs.MinValidity

	// The API server speaks HTTP/2 to a webhook URL on a loopback address but HTTP/1.1 to a
	// Service (and to any other URL), so that concurrent calls spread over the replicas
	// (k8s.io/apiserver pkg/util/webhook, issue 75791). To get the Service behaviour the
	// configurations point at https://0.0.0.0:<balancer port>: not loopback to that check, yet
	// on Linux a connection to 0.0.0.0 reaches the balancer's 127.0.0.1 listener. Hence 0.0.0.0
	// in the serving certificate's SANs, next to 127.0.0.1 for the direct probes.
	r, err := harness.RenderChart(s.ctx, "--set", "certManager.enabled=false", "--set", "extraServingSANs={127.0.0.1,0.0.0.0}")
	if err != nil {
		t.Fatal(err)
	}
	args, err := r.ServeArgs(harness.ServeArgsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--self-signed-certs", "--cert-extra-sans=127.0.0.1,0.0.0.0", "--cert-validity="} {
		if !containsPrefix(args, want) {
			t.Fatalf("the chart's serve args %q lack %s", args, want)
		}
	}
	args = append(args, "--cert-validity="+certValidity.String())
	secrets, err := r.Objects("Secret")
	if err != nil || len(secrets) != 1 {
		t.Fatalf("want the chart's one pre-created Secret, got %d (%v)", len(secrets), err)
	}
	secretKey := client.ObjectKeyFromObject(secrets[0])
	t.Logf("serve args from the chart: %q", args)

	var (
		replicas        []*harness.Webhook
		configsReplaced bool
		created         []*unstructured.Unstructured
	)
	lb, err := harness.NewBalancer()
	if err != nil {
		t.Fatal(err)
	}
	// One cleanup, in the order that keeps the suite safe: processes first (so nothing patches
	// the configurations any more), then the suite's configurations, then the chart's objects.
	t.Cleanup(func() {
		stopAll(replicas)
		if configsReplaced {
			restoreSuiteWebhook(t)
		}
		deleteObjects(t, created)
		_ = lb.Close()
	})

	// The chart's RBAC for this mode and its empty Secret.
	rbacKinds := []string{"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "Secret"}
	if created, err = newObjects(r, rbacKinds...); err != nil {
		t.Fatal(err)
	}
	if err := s.client.Get(ctx, secretKey, &corev1.Secret{}); err == nil {
		t.Fatalf("Secret %s exists before the test", secretKey)
	}
	if err := r.ApplyKinds(ctx, s.client, rbacKinds...); err != nil {
		t.Fatal(err)
	}

	// The chart's webhook configurations, pointed at the balancer, with no caBundle.
	url := fmt.Sprintf("https://0.0.0.0:%d", lb.Port())
	r.PointAt(url, nil)
	configsReplaced = true
	if err := r.Apply(ctx, s.client); err != nil {
		t.Fatal(err)
	}
	if m, v := caBundles(t, r.Mutating.Name), validatingCABundles(t, r.Validating.Name); !allEqual(m, nil) || !allEqual(v, nil) {
		t.Fatalf("caBundles after applying the chart's configurations: %q %q, want an empty one per webhook", m, v)
	}

	user, err := r.ServiceAccountUser()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := s.cp.UserKubeconfig(user, "system:serviceaccounts", "system:serviceaccounts:"+harness.Namespace)
	if err != nil {
		t.Fatal(err)
	}

	// Two replicas started at the same moment race for the empty Secret. Fresh cert dirs and
	// logs per run (-count=N reruns in the same suite).
	run := uniqueName("selfsigned")
	start := time.Now()
	replicas = make([]*harness.Webhook, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replicas[i], errs[i] = harness.StartWebhook(ctx, harness.WebhookOptions{
				Kubeconfig: kubeconfig,
				CertDir:    filepath.Join(s.logDir, fmt.Sprintf("%s-replica-%d-certs", run, i)),
				LogPath:    filepath.Join(s.logDir, fmt.Sprintf("%s-replica-%d.log", run, i)),
				Args:       args,
			})
		}()
	}
	wg.Wait()
	replicas = nonNil(replicas)
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("starting the replicas: %v", err)
	}
	bothReady := time.Since(start)
	for i, w := range replicas {
		lb.AddBackend(fmt.Sprintf("replica-%d", i), fmt.Sprintf("127.0.0.1:%d", w.Port), fmt.Sprintf("http://127.0.0.1:%d/readyz", w.HealthPort))
	}
	// The admissions below go to either replica: each must have the standard cluster in view.
	for _, w := range replicas {
		if err := harness.WaitForStandardView(ctx, w, viewTimeout); err != nil {
			t.Fatal(err)
		}
	}
	if got := lb.Ready(); len(got) != 2 {
		t.Fatalf("balancer backends ready: %v, want both replicas", got)
	}

	// Both configurations get the Secret's CA bundle.
	var secret corev1.Secret
	var bundle []byte
	err = controlplane.Wait(ctx, 30*time.Second, func(ctx context.Context) (bool, error) {
		if err := s.client.Get(ctx, secretKey, &secret); err != nil {
			return false, err
		}
		bundle = secret.Data[certs.SecretKeyCABundle]
		return len(bundle) > 0 && allEqual(caBundles(t, r.Mutating.Name), bundle) && allEqual(validatingCABundles(t, r.Validating.Name), bundle), nil
	})
	if err != nil {
		t.Fatalf("caBundle not injected into both configurations: %v", err)
	}
	injected := time.Since(start)

	// Both replicas serve the Secret's certificate, verified for 127.0.0.1 with that bundle.
	leaf, err := parseCert(secret.Data[certs.SecretKeyTLSCert])
	if err != nil {
		t.Fatal(err)
	}
	first := leaf.SerialNumber.String()
	if got := servedSerials(t, replicas, bundle); got[0] != first || got[1] != first {
		t.Fatalf("replicas serve serials %v, want both %s (the Secret's)", got, first)
	}

	// Admissions through the API server, the balancer and the replicas.
	waitUntrustedPodsGetGVisor(ctx, t, "ss", "no successful admission through the self-signed replicas")
	firstAdmission := time.Since(start)
	measure("scenario 14: self-signed mode, 2 replicas from the chart's flags: both ready %s after start, caBundle in both configurations after %s, first admission through the API server after %s",
		bothReady.Round(time.Millisecond), injected.Round(time.Millisecond), firstAdmission.Round(time.Millisecond))

	// Renewal under load, with the calls spread over both replicas.
	due := leaf.NotAfter.Add(-leaf.NotAfter.Sub(leaf.NotBefore) / 3)
	perBefore := replicaAdmissions(replicas)
	load := startAdmissionLoad(4)
	defer load.stop()
	var serials []string
	err = controlplane.Wait(ctx, time.Until(due)+30*time.Second, func(context.Context) (bool, error) {
		serials = servedSerials(t, replicas, bundle)
		return serials[0] != first && serials[0] == serials[1], nil
	})
	renewedAt := time.Now()
	if err != nil {
		t.Fatalf("the replicas did not both serve a renewed certificate (serials %v, first %s, due %s): %v",
			serials, first, due.Format(time.RFC3339), err)
	}
	// Admissions go on with the renewed certificate.
	afterErr := load.waitOK(load.ok.Load()+minAdmissions, 30*time.Second)
	ok, failed, firstFail := load.stop()
	if afterErr != nil {
		t.Errorf("after the renewal: %v", afterErr)
	}
	if failed > 0 {
		t.Errorf("%d of %d admissions failed during the renewal; first: %v", failed, ok+failed, firstFail)
	}
	if ok < 2*minAdmissions {
		t.Errorf("only %d admissions succeeded through the renewal, want at least %d", ok, 2*minAdmissions)
	}
	if err := s.client.Get(ctx, secretKey, &secret); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(secret.Data[certs.SecretKeyCABundle], bundle) {
		t.Errorf("the CA bundle changed during a serving-certificate renewal")
	}
	if renewed, err := parseCert(secret.Data[certs.SecretKeyTLSCert]); err != nil || renewed.SerialNumber.String() != serials[0] {
		t.Errorf("the Secret's certificate (%v) is not the one served (%s)", err, serials[0])
	}
	per := replicaAdmissions(replicas)
	during := make([]int64, len(per))
	for i, w := range replicas {
		during[i] = per[i] - perBefore[i]
		if during[i] <= 0 {
			t.Errorf("replica-%d served no admission call during the renewal (%v calls per replica): the balancer did not spread the API server's connections", i, during)
		}
		if w.Exited() {
			t.Errorf("a replica exited during the test; see %s", w.LogPath)
		}
	}
	conns, _ := lb.Connections()
	measure("scenario 14: renewal due %s after start (2/3 of the first certificate's %s lifetime), both replicas served the new serial %s after start (%s after due); %d Pod creates during the renewal, %d failed; admission calls per replica %v over balancer connections %v",
		due.Sub(start).Round(time.Millisecond), certValidity, renewedAt.Sub(start).Round(time.Millisecond),
		renewedAt.Sub(due).Round(time.Millisecond), ok+failed, failed, during, conns)
	if n := secretWrites(t, replicas); n != 2 {
		t.Errorf("the replicas wrote the Secret %d times, want 2 (one bootstrap, one renewal): a second writer would mean two CAs or two certificates competing", n)
	}

	// Stop the busier replica like a Pod being replaced: its /readyz fails at once (the
	// balancer gives it no new connection) while it keeps serving for --shutdown-delay, then
	// it closes its keep-alive connections and every call goes, through the balancer, to the
	// other replica, which serves the same certificate.
	busy := 0
	if per[1] > per[0] {
		busy = 1
	}
	other := 1 - busy
	load = startAdmissionLoad(4)
	defer load.stop()
	if err := load.waitOK(minAdmissions, 30*time.Second); err != nil {
		t.Fatalf("before stopping replica-%d: %v", busy, err)
	}
	stopped := time.Now()
	replicas[busy].Stop()
	drained := time.Since(stopped)
	// The other replica alone serves the load.
	afterErr = load.waitOK(load.ok.Load()+minAdmissions, 30*time.Second)
	ok, failed, firstFail = load.stop()
	if afterErr != nil {
		t.Errorf("after replica-%d stopped: %v", busy, afterErr)
	}
	if failed > 0 {
		t.Errorf("%d of %d admissions failed while replica-%d stopped; first: %v", failed, ok+failed, busy, firstFail)
	}
	if ok < 2*minAdmissions {
		t.Errorf("only %d admissions succeeded while replica-%d stopped, want at least %d", ok, busy, 2*minAdmissions)
	}
	after := replicaAdmissions(replicas[other : other+1])[0]
	if after <= per[other] {
		t.Errorf("replica-%d served no admission after replica-%d stopped (%d before, %d after)", other, busy, per[other], after)
	}
	measure("scenario 14: replica-%d stopped under load (drained and exited in %s): %d Pod creates, %d failed; replica-%d took over (%d admission calls)",
		busy, drained.Round(time.Millisecond), ok+failed, failed, other, after-per[other])
}

// secretWrites counts the Secret updates the replicas logged.
func secretWrites(t *testing.T, ws []*harness.Webhook) int {
	t.Helper()
	n := 0
	for _, w := range ws {
		b, err := os.ReadFile(w.LogPath)
		if err != nil {
			t.Errorf("reading %s: %v", w.LogPath, err)
			continue
		}
		n += strings.Count(string(b), "updated certificates in Secret")
	}
	return n
}

// --- helpers shared with the cert-manager scenario ---

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

func nonNil(ws []*harness.Webhook) []*harness.Webhook {
	var out []*harness.Webhook
	for _, w := range ws {
		if w != nil {
			out = append(out, w)
		}
	}
	return out
}

// stopAll stops webhook processes in parallel (each drains for its --shutdown-delay).
func stopAll(ws []*harness.Webhook) {
	var wg sync.WaitGroup
	for _, w := range ws {
		if w == nil {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); w.Stop() }()
	}
	wg.Wait()
}

// newObjects returns the rendered objects of the given kinds that the suite's own rendering
// does not have (by kind, namespace and name): what a scenario must delete afterwards.
func newObjects(r *harness.Rendered, kinds ...string) ([]*unstructured.Unstructured, error) {
	mine, err := r.Objects(kinds...)
	if err != nil {
		return nil, err
	}
	suite, err := s.rendered.Objects(kinds...)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, u := range suite {
		have[u.GetKind()+"/"+u.GetNamespace()+"/"+u.GetName()] = true
	}
	var out []*unstructured.Unstructured
	for _, u := range mine {
		if !have[u.GetKind()+"/"+u.GetNamespace()+"/"+u.GetName()] {
			out = append(out, u)
		}
	}
	return out, nil
}

func deleteObjects(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, u := range objs {
		if err := s.client.Delete(context.Background(), u.DeepCopy()); client.IgnoreNotFound(err) != nil {
			t.Errorf("deleting %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
}

// restoreSuiteWebhook re-registers the suite's webhook and waits until the API server calls it
// again for both webhooks, so the next scenario does not race the API server's view of the
// configurations: a dry-run Pod is mutated, and the suite's process counted a mutating and a
// validating call for it (which an older configuration pointing at another replica that still
// runs would not do).
func restoreSuiteWebhook(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	ensureWebhook(t)
	if err := s.rendered.Apply(ctx, s.client); err != nil {
		t.Errorf("re-registering the suite's webhook: %v", err)
		return
	}
	var lastErr error
	err := controlplane.Wait(ctx, 30*time.Second, func(ctx context.Context) (bool, error) {
		before, err := suiteCalls()
		if err != nil {
			return false, err
		}
		p := harness.Pod(nsUntrusted, uniqueName("restore"))
		lastErr = s.client.Create(ctx, p, client.DryRunAll)
		after, err := suiteCalls()
		if err != nil {
			return false, err
		}
		if lastErr == nil && (after[0] <= before[0] || after[1] <= before[1]) {
			lastErr = fmt.Errorf("admitted, but not through the suite's webhook for both webhooks (mutate, validate calls %v -> %v)", before, after)
		}
		return lastErr == nil && className(p) == "gvisor", nil
	})
	if err != nil {
		t.Errorf("the suite's webhook does not admit again after re-registering: %v (%v)", err, lastErr)
	}
}

// suiteCalls returns the mutating and validating calls the suite's webhook has answered.
func suiteCalls() ([2]float64, error) {
	var out [2]float64
	for i, name := range []string{"mutate", "validate"} {
		n, err := s.webhook.MetricSum("runtimeguard_admissions_total", map[string]string{"webhook": name})
		if err != nil {
			return out, err
		}
		out[i] = n
	}
	return out, nil
}

func caBundles(t *testing.T, name string) [][]byte {
	t.Helper()
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := s.client.Get(context.Background(), client.ObjectKey{Name: name}, m); err != nil {
		t.Errorf("reading MutatingWebhookConfiguration %s: %v", name, err)
		return nil
	}
	var out [][]byte
	for _, w := range m.Webhooks {
		out = append(out, w.ClientConfig.CABundle)
	}
	return out
}

func validatingCABundles(t *testing.T, name string) [][]byte {
	t.Helper()
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := s.client.Get(context.Background(), client.ObjectKey{Name: name}, v); err != nil {
		t.Errorf("reading ValidatingWebhookConfiguration %s: %v", name, err)
		return nil
	}
	var out [][]byte
	for _, w := range v.Webhooks {
		out = append(out, w.ClientConfig.CABundle)
	}
	return out
}

func allEqual(bundles [][]byte, want []byte) bool {
	for _, b := range bundles {
		if !bytes.Equal(b, want) {
			return false
		}
	}
	return len(bundles) > 0
}

func parseCert(pemBytes []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// servedSerials returns the serial each replica serves now, verified for 127.0.0.1 against
// bundle ("error: ..." when the handshake or verification fails).
func servedSerials(t *testing.T, ws []*harness.Webhook, bundle []byte) []string {
	t.Helper()
	out := make([]string, len(ws))
	for i, w := range ws {
		serial, err := w.ServingSerial(bundle)
		if err != nil {
			serial = "error: " + err.Error()
		}
		out[i] = serial
	}
	return out
}

// replicaAdmissions sums runtimeguard_admissions_total of each replica.
func replicaAdmissions(ws []*harness.Webhook) []int64 {
	out := make([]int64, len(ws))
	for i, w := range ws {
		m, err := w.Metrics()
		if err != nil {
			out[i] = -1
			continue
		}
		for _, line := range strings.Split(m, "\n") {
			if !strings.HasPrefix(line, "runtimeguard_admissions_total") {
				continue
			}
			f := strings.Fields(line)
			if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
				out[i] += int64(v)
			}
		}
	}
	return out
}

// admissionLoad keeps creating dry-run Pods in the untrusted namespace through the API server;
// an error or a Pod without the gvisor class counts as a failed admission.
type admissionLoad struct {
	cancel       context.CancelFunc
	wg           sync.WaitGroup
	ok, failed   atomic.Int64
	firstFailure atomic.Value
}

func startAdmissionLoad(workers int) *admissionLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &admissionLoad{cancel: cancel}
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				p := harness.Pod(nsUntrusted, uniqueName("load"))
				err := s.client.Create(context.Background(), p, client.DryRunAll)
				if err == nil && className(p) != "gvisor" {
					err = fmt.Errorf("pod admitted with runtimeClassName %q, want gvisor", className(p))
				}
				if err != nil {
					l.failed.Add(1)
					l.firstFailure.CompareAndSwap(nil, err.Error())
				} else {
					l.ok.Add(1)
				}
			}
		}()
	}
	return l
}

// minAdmissions is how many admissions must succeed in each phase of a test that claims none
// failed during a fault or a change (before it, through it, after it), so that "0 failed" can
// never mean that nothing was tried, or that nothing got through.
const minAdmissions = 50

// waitOK waits until n admissions in all have succeeded.
func (l *admissionLoad) waitOK(n int64, timeout time.Duration) error {
	return waitSucceeded(&l.ok, &l.failed, n, timeout, func() any { return l.firstFailure.Load() })
}

// waitSucceeded waits until ok reaches n; the error says how far it got.
func waitSucceeded(ok, failed *atomic.Int64, n int64, timeout time.Duration, first func() any) error {
	err := controlplane.Wait(context.Background(), timeout, func(context.Context) (bool, error) {
		return ok.Load() >= n, nil
	})
	if err != nil {
		return fmt.Errorf("%d admissions succeeded, want %d; %d failed (first: %v): %w", ok.Load(), n, failed.Load(), first(), err)
	}
	return nil
}

func (l *admissionLoad) stop() (ok, failed int64, first any) {
	l.cancel()
	l.wg.Wait()
	return l.ok.Load(), l.failed.Load(), l.firstFailure.Load()
}

// waitUntrustedPodsGetGVisor waits (15 s at most) until an untrusted Pod is admitted with gvisor
// through whatever webhook is registered now, then creates three more that must get it too.
func waitUntrustedPodsGetGVisor(ctx context.Context, t *testing.T, prefix, what string) {
	t.Helper()
	var lastErr error
	err := controlplane.Wait(ctx, 15*time.Second, func(ctx context.Context) (bool, error) {
		p := harness.Pod(nsUntrusted, uniqueName(prefix+"-probe"))
		lastErr = s.client.Create(ctx, p, client.DryRunAll)
		return lastErr == nil && className(p) == "gvisor", nil
	})
	if err != nil {
		t.Fatalf("%s: %v", what, lastErr)
	}
	for i := 0; i < 3; i++ {
		if p := mustCreatePod(t, harness.Pod(nsUntrusted, uniqueName(prefix))); className(p) != "gvisor" {
			t.Errorf("pod %s got %q, want gvisor", p.Name, className(p))
		}
	}
}
