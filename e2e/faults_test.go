package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/runtimeguard/runtimeguard/certs"
	"github.com/runtimeguard/runtimeguard/e2e/bench/review"
	"github.com/runtimeguard/runtimeguard/e2e/controlplane"
	"github.com/runtimeguard/runtimeguard/e2e/harness"
	"github.com/runtimeguard/runtimeguard/webhook"
)

// Scenario 21.
//
// The API server goes away for longer than --max-staleness and comes back. A separate replica
// (--max-staleness=5s), asked directly over TLS, keeps deciding from its informer caches the
// whole time; its /readyz fails once the view is older than the bound (and the staleness
// metric says by how much), recovers when the API server is back, and its informers follow
// changes made after the restart.
func TestAPIServerRestartDecisionsContinueFromCache(t *testing.T) {
	ensureStandardCluster(t)
	ctx := context.Background()
	const maxStaleness = 5 * time.Second
	w := startExtraWebhooks(t, []string{"apiserver-restart"}, "", "--max-staleness="+maxStaleness.String())[0]
	hc := admissionHTTPClient()
	defer hc.CloseIdleConnections()
	decide := func() (string, error) {
		return mutatedClass(hc, w, realisticPodReview(nsUntrusted))
	}
	if class, err := decide(); err != nil || class != "gvisor" {
		t.Fatalf("before the fault: class %q, err %v; want gvisor", class, err)
	}

	// Admissions posted straight to the replica, all through the fault: each must be answered,
	// within the webhook's timeoutSeconds, with the gvisor patch.
	poster := startReviewPoster(func() error {
		class, err := decide()
		if err == nil && class != "gvisor" {
			err = fmt.Errorf("class %q, want gvisor", class)
		}
		return err
	})
	defer poster.stop()
	if err := poster.waitOK(10, 30*time.Second); err != nil {
		t.Fatalf("before the fault: %v", err)
	}

	// envtest's Stop sends SIGTERM and waits for the process (up to 30 s, then SIGKILL): run it
	// in the background and watch the replica from the SIGTERM on.
	stopAPIServer, restartAPIServer := prepareAPIServerRestart(t)
	stopAt := time.Now()
	type stopped struct {
		graceful bool
		err      error
		took     time.Duration
	}
	stopDone := make(chan stopped, 1)
	go func() {
		graceful, err := stopAPIServer()
		stopDone <- stopped{graceful, err, time.Since(stopAt)}
	}()
	if err := controlplane.Wait(ctx, 10*time.Second, func(ctx context.Context) (bool, error) {
		return s.client.List(ctx, &corev1.NamespaceList{}) != nil, nil
	}); err != nil {
		t.Fatalf("the API server still answers after SIGTERM: %v", err)
	}
	unavailableAfter := time.Since(stopAt)
	okAtOutage := poster.ok.Load()

	if err := waitReadyz(w, false, 30*time.Second); err != nil {
		t.Fatalf("/readyz of the replica did not fail with the API server gone: %v", err)
	}
	notReadyAfter := time.Since(stopAt)
	// The probe runs every 2 s, so the last contact may be up to 2 s before the stop: readiness
	// may fail from maxStaleness-2s on, never much earlier.
	if notReadyAfter < maxStaleness-2500*time.Millisecond {
		t.Errorf("/readyz failed %s after the API server stopped, before --max-staleness=%s", notReadyAfter, maxStaleness)
	}
	why := readyzBody(w)
	if !strings.Contains(why, "cluster-view-fresh") {
		t.Errorf("/readyz fails, but not for the stale cluster view:\n%s", why)
	}
	// The metric is computed by the same probe as /readyz: it says more than the bound too.
	var staleness float64
	if err := controlplane.Wait(ctx, 10*time.Second, func(context.Context) (bool, error) {
		var err error
		staleness, err = metricValue(w, "runtimeguard_cluster_view_staleness_seconds")
		return err == nil && staleness >= maxStaleness.Seconds(), err
	}); err != nil {
		t.Errorf("runtimeguard_cluster_view_staleness_seconds = %.1f with /readyz failing, want >= %s: %v", staleness, maxStaleness, err)
	}
	if s.webhook.Exited() {
		t.Errorf("the suite's webhook exited while the API server was down; see %s", s.webhook.LogPath)
	}

	var st stopped
	select {
	case st = <-stopDone:
	case <-time.After(90 * time.Second):
		t.Fatal("envtest's APIServer.Stop did not return within 90 s")
	}
	if st.err != nil {
		t.Fatalf("stopping the API server: %v", st.err)
	}
	stopHow := "exited on SIGTERM"
	if !st.graceful {
		stopHow = "was killed by envtest: it did not exit on SIGTERM within the 30 s stop timeout"
	}
	startAt := time.Now()
	downFor := startAt.Sub(stopAt)
	okDuringOutage := poster.ok.Load() - okAtOutage
	if err := restartAPIServer(); err != nil {
		t.Fatalf("restarting the API server: %v", err)
	}
	startTook := time.Since(startAt)
	var nodes corev1.NodeList
	if err := controlplane.Wait(ctx, 30*time.Second, func(ctx context.Context) (bool, error) {
		return s.client.List(ctx, &nodes) == nil, nil
	}); err != nil {
		t.Fatalf("the admin client does not work after the restart: %v", err)
	}
	adminAfter := time.Since(startAt) - startTook
	if err := waitReadyz(w, true, 30*time.Second); err != nil {
		t.Fatalf("/readyz of the replica did not recover after the restart: %v\n%s", err, readyzBody(w))
	}
	readyAfter := time.Since(startAt) - startTook
	ok, lost, firstLost := poster.stop()
	if stale, err := metricValue(w, "runtimeguard_cluster_view_staleness_seconds"); err != nil || stale > 3 {
		t.Errorf("staleness after recovery: %.1f s (%v), want under the 2 s probe interval", stale, err)
	}

	// Informers: a change made after the restart reaches the replica (and the suite's webhook,
	// asked through the API server).
	sandbox := harness.StandardNodes()[0]
	t.Cleanup(func() { restoreNodes(t, sandbox.Name) })
	sandbox.NotReady = true
	changedAt := time.Now()
	if err := harness.ApplyNode(ctx, s.client, sandbox); err != nil {
		t.Fatal(err)
	}
	var class string
	var err error
	if err := controlplane.Wait(ctx, 60*time.Second, func(context.Context) (bool, error) {
		class, err = decide()
		return err == nil && class == "kata", err
	}); err != nil {
		t.Fatalf("the replica still answers %q %s after %s went NotReady: its informers did not recover: %v",
			class, time.Since(changedAt).Round(time.Millisecond), sandbox.Name, err)
	}
	replicaSaw := time.Since(changedAt)
	if err := waitAPIServerClass(nsUntrusted, "kata", 60*time.Second); err != nil {
		t.Fatalf("the suite's webhook did not see the change after the restart: %v", err)
	}
	suiteSaw := time.Since(changedAt)
	if err := harness.ApplyNode(ctx, s.client, harness.StandardNodes()[0]); err != nil {
		t.Fatal(err)
	}
	if err := controlplane.Wait(ctx, 30*time.Second, func(context.Context) (bool, error) {
		class, err = decide()
		return err == nil && class == "gvisor", err
	}); err != nil {
		t.Fatalf("the replica did not go back to gvisor after %s was restored (%q): %v", sandbox.Name, class, err)
	}
	if err := waitAPIServerClass(nsUntrusted, "gvisor", 30*time.Second); err != nil {
		t.Fatalf("the suite's webhook did not go back to gvisor: %v", err)
	}
	if err := waitReadyz(s.webhook, true, 10*time.Second); err != nil {
		t.Errorf("the suite's webhook is not ready after the restart: %v", err)
	}

	if lost > 0 {
		t.Errorf("%d of %d admissions lost while the API server was away; first: %v", lost, ok+lost, firstLost)
	}
	if okDuringOutage < minAdmissions {
		t.Errorf("only %d admissions answered while the API server was down (%d in all), want at least %d: \"none lost\" would prove nothing",
			okDuringOutage, ok, minAdmissions)
	}
	measure("scenario 21: API server unavailable %s after SIGTERM; it %s (%s); down %s in all, restarted (same port and certificates) in %s; admin client working %s after Start returned; replica with --max-staleness=%s: /readyz failed %s after SIGTERM (staleness metric %.1f s), ready again %s after Start returned; a Node change made after the restart decided by the replica %s and by the suite's webhook %s later; %d admissions posted to the replica through the fault, %d lost",
		unavailableAfter.Round(time.Millisecond), stopHow, st.took.Round(time.Millisecond), downFor.Round(time.Millisecond), startTook.Round(time.Millisecond), adminAfter.Round(time.Millisecond),
		maxStaleness, notReadyAfter.Round(time.Millisecond), staleness, readyAfter.Round(time.Millisecond),
		replicaSaw.Round(time.Millisecond), suiteSaw.Round(time.Millisecond), ok+lost, lost)
	measure("scenario 21: %d admissions answered by the replica between the API server's unavailability and its restart", okDuringOutage)
}

// Scenario 22.
//
// Two replicas behind a Service stand-in (harness.Balancer), registered through the chart's
// webhook configurations; Pods keep being created through the API server from 4 goroutines
// while the replicas are replaced one after the other the way a Deployment rollout does it:
// SIGTERM (the old replica drains: /readyz fails, the balancer stops giving it new
// connections, it keeps serving for --shutdown-delay, then stops), a new replica on a new
// port, ready, added to the balancer. No admission may fail.
//
// The API server talks HTTP/2 to a webhook whose URL host is "localhost" or a loopback
// address, and HTTP/1.1 to every other host, Service references included (k8s.io/apiserver
// pkg/util/webhook; HTTP/2 would not spread load over replicas). The first case reproduces a
// cluster, HTTP/1.1 keep-alive connections through the Service to a replica that goes away,
// with the URL host 0.0.0.0: not a loopback address to that check, yet on Linux a connection
// to it reaches the balancer's 127.0.0.1 listener (the replicas' certificate includes it). The
// second uses the loopback address like the rest of the suite.
func TestRollingRestartOfTwoReplicasLosesNoAdmission(t *testing.T) {
	ensureStandardCluster(t)
	dir := filepath.Join(s.logDir, "rolling-certs")
	dc, err := certs.WriteDevCerts(dir, []string{"127.0.0.1", "localhost", "0.0.0.0"}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, tag, host string }{
		{"http1.1 as through a Service", "h1", "0.0.0.0"},
		{"h2 to a loopback URL", "h2", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) { rollingRestart(t, tc.tag, tc.host, dir, dc.CAPEM) })
	}
}

func rollingRestart(t *testing.T, tag, host, certDir string, caPEM []byte) {
	ensureStandardCluster(t)
	ctx := context.Background()
	lb, err := harness.NewBalancer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lb.Close() })
	names := []string{"a", "b"}
	replicas := startExtraWebhooks(t, []string{"rolling-" + tag + "-a", "rolling-" + tag + "-b"}, certDir)
	for i, w := range replicas {
		lb.AddBackend(names[i], fmt.Sprintf("127.0.0.1:%d", w.Port), fmt.Sprintf("http://127.0.0.1:%d/readyz", w.HealthPort))
	}
	// The chart's configurations, rendered afresh (PointAt keeps each webhook's path only from
	// the chart's Service reference, which s.rendered no longer has), replace the suite's.
	r, err := harness.RenderChart(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	r.PointAt(fmt.Sprintf("https://%s:%d", host, lb.Port()), caPEM)
	t.Cleanup(func() { restoreSuiteWebhook(t) })
	if err := r.Apply(ctx, s.client); err != nil {
		t.Fatal(err)
	}
	// Wait until the API server calls the replicas.
	before := sum(replicaAdmissions(replicas))
	var lastErr error
	if err := controlplane.Wait(ctx, 20*time.Second, func(ctx context.Context) (bool, error) {
		p := harness.Pod(nsUntrusted, uniqueName("roll-probe"))
		lastErr = s.client.Create(ctx, p, client.DryRunAll)
		return lastErr == nil && className(p) == "gvisor" && sum(replicaAdmissions(replicas)) > before, nil
	}); err != nil {
		t.Fatalf("no admission through the balancer: %v (%v)", err, lastErr)
	}

	load := startAdmissionLoad(4)
	defer load.stop()
	if err := load.waitOK(minAdmissions, 30*time.Second); err != nil {
		t.Fatalf("before the rolling restart: %v", err)
	}
	var phases []string
	for i, name := range names {
		old := replicas[i]
		okBefore, failedBefore := load.ok.Load(), load.failed.Load()
		callsBefore := replicaAdmissions([]*harness.Webhook{old})[0]
		conns, _ := lb.Connections()
		sigterm := time.Now()
		exited := make(chan struct{})
		go func() { old.Stop(); close(exited) }()
		if err := controlplane.Wait(ctx, 10*time.Second, func(context.Context) (bool, error) {
			return !slices.Contains(lb.Ready(), name), nil
		}); err != nil {
			t.Fatalf("the balancer still sends new connections to draining replica %s: %v", name, err)
		}
		outAfter := time.Since(sigterm)
		next := startExtraWebhooks(t, []string{"rolling-" + tag + "-" + name + "2"}, certDir)[0]
		lb.AddBackend(name+"2", fmt.Sprintf("127.0.0.1:%d", next.Port), fmt.Sprintf("http://127.0.0.1:%d/readyz", next.HealthPort))
		if !slices.Contains(lb.Ready(), name+"2") {
			t.Fatalf("replacement %s2 is ready but the balancer does not use it: %s", name, lb)
		}
		replacedAfter := time.Since(sigterm)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			t.Fatalf("replica %s did not exit within 60 s of SIGTERM", name)
		}
		exitAfter := time.Since(sigterm)
		lb.RemoveBackend(name)
		replicas[i] = next
		ok, failed := load.ok.Load()-okBefore, load.failed.Load()-failedBefore
		if ok < minAdmissions {
			t.Errorf("replica %s: only %d Pod creates succeeded from its SIGTERM to its exit, want at least %d", name, ok, minAdmissions)
		}
		phases = append(phases, fmt.Sprintf("replica %s (%d admission calls, %d balancer connections before SIGTERM): out of the balancer %s after SIGTERM, replacement ready and added %s, old one exited %s; %d Pod creates in the phase, %d failed",
			name, callsBefore, conns[name], outAfter.Round(time.Millisecond), replacedAfter.Round(time.Millisecond), exitAfter.Round(time.Millisecond), ok, failed))
	}
	// The replacements alone serve the load.
	afterErr := load.waitOK(load.ok.Load()+minAdmissions, 30*time.Second)
	ok, failed, first := load.stop()
	if afterErr != nil {
		t.Errorf("after the rolling restart: %v", afterErr)
	}
	for _, w := range replicas {
		if w.Exited() {
			t.Errorf("replacement replica exited; see %s", w.LogPath)
		}
	}
	if after := replicaAdmissions(replicas); sum(after) == 0 {
		t.Errorf("the replacements served no admission (%v)", after)
	}
	_, rejected := lb.Connections()
	if failed > 0 {
		t.Errorf("%d of %d Pod creates failed during the rolling restart; first: %v", failed, ok+failed, first)
	}
	if want := int64(minAdmissions * (2 + len(names))); ok < want {
		t.Errorf("only %d Pod creates succeeded during the test, want at least %d", ok, want)
	}
	measure("scenario 22 (%s): rolling restart of 2 replicas under 4 concurrent Pod creators: %d Pod creates, %d failed; %s; balancer at the end: %s, %d connections refused",
		t.Name()[strings.LastIndex(t.Name(), "/")+1:], ok+failed, failed, strings.Join(phases, "; "), lb, rejected)
}

// Scenario 23.
//
// Two replicas given the same cluster answer the same reviews with the same bytes (apart from
// the request uid), whatever the order they see them in and whether their decision cache
// answers or the policy is evaluated: no hidden per-process state.
func TestDecisionsAreTheSameOnEveryReplica(t *testing.T) {
	ensureStandardCluster(t)
	ws := startExtraWebhooks(t, []string{"same-a", "same-b"}, "")
	hc := admissionHTTPClient()
	defer hc.CloseIdleConnections()
	cases := decisionCases()
	type answer struct {
		status int
		body   []byte
	}
	// answers[case][path] per replica and pass: a cold pass (a in order, b in reverse order),
	// then a warm pass.
	type key struct{ c, path int }
	got := map[key][]answer{}
	paths := []string{webhook.MutatePath, webhook.ValidatePath}
	ask := func(w *harness.Webhook, order []int) {
		for _, ci := range order {
			for pi, path := range paths {
				uid := fmt.Sprintf("5a3e0000-0000-4000-8000-%012d", podSeq.Add(1))
				status, body, err := postAdmissionReview(hc, w.URL(path), cases[ci].body(uid))
				if err != nil {
					t.Fatalf("%s %s to %s: %v", cases[ci].name, path, w.LogPath, err)
				}
				got[key{ci, pi}] = append(got[key{ci, pi}], answer{status, bytes.ReplaceAll(body, []byte(uid), []byte("UID"))})
			}
		}
	}
	forward := make([]int, len(cases))
	for i := range forward {
		forward[i] = i
	}
	backward := slices.Clone(forward)
	slices.Reverse(backward)
	ask(ws[0], forward)
	ask(ws[1], backward)
	ask(ws[0], backward)
	ask(ws[1], forward)

	differ := 0
	for ci, c := range cases {
		for pi, path := range paths {
			as := got[key{ci, pi}]
			for j := 1; j < len(as); j++ {
				if as[j].status != as[0].status || !bytes.Equal(as[j].body, as[0].body) {
					differ++
					t.Errorf("%s %s: answer %d differs from answer 0 (replica %s, %s pass):\n  %d %s\n  %d %s",
						c.name, path, j, []string{"a", "b"}[j%2], []string{"cold", "warm"}[j/2], as[0].status, as[0].body, as[j].status, as[j].body)
				}
			}
			if err := c.check(path, as[0].status, as[0].body); err != nil {
				t.Errorf("%s %s: %v\n  %s", c.name, path, err, as[0].body)
			}
		}
	}
	measure("scenario 23: %d reviews x 2 webhooks x 2 replicas x 2 passes (cold in opposite orders, then warm): %d answers differ (uid aside)",
		len(cases), differ)
}

// --- helpers ---

func sum(xs []int64) int64 {
	var n int64
	for _, x := range xs {
		n += x
	}
	return n
}

// startExtraWebhooks starts one `runtimeguard serve` per name, in parallel, with the suite's
// kubeconfig (the chart's ServiceAccount) and policies plus args, serving the certificate in
// certDir ("": the suite's); each is stopped when the test ends.
func startExtraWebhooks(t *testing.T, names []string, certDir string, args ...string) []*harness.Webhook {
	t.Helper()
	if certDir == "" {
		certDir = s.certDir
	}
	ws := make([]*harness.Webhook, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		o := s.webhookCfg
		o.Port = 0
		o.LogPath = filepath.Join(s.logDir, name+".log")
		o.CertDir = certDir
		// E2E_REPLICA_BINARY runs these replicas from another build of runtimeguard, for
		// before/after comparisons of a change (default: bin/runtimeguard, like the suite's).
		o.Binary = os.Getenv("E2E_REPLICA_BINARY")
		o.Args = append(slices.Clone(s.webhookCfg.Args), args...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws[i], errs[i] = harness.StartWebhook(context.Background(), o)
		}()
	}
	wg.Wait()
	for _, w := range ws {
		if w != nil {
			t.Cleanup(w.Stop)
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("starting %v: %v", names, err)
	}
	// Ready means synced, from a list made after the scenario's ensureStandardCluster; wait
	// anyway, so that every replica a test compares or sends load to has shown the standard
	// cluster in its own view.
	for _, w := range ws {
		if err := harness.WaitForStandardView(context.Background(), w, viewTimeout); err != nil {
			t.Fatal(err)
		}
	}
	return ws
}

// prepareAPIServerRestart returns stop, which stops the suite's kube-apiserver with envtest's
// APIServer.Stop, and restart, which starts it again, on the same port with the same serving
// certificate, client CA and service-account keys, so that every existing client (the admin
// client, the webhooks' kubeconfigs, kube-controller-manager) reconnects unchanged. stop's graceful
// reports whether kube-apiserver exited on SIGTERM within envtest's stop timeout (30 s) rather
// than being killed by envtest afterwards; stop may run on another goroutine.
//
// envtest can restart an APIServer object (Start re-creates its process state; the port and
// the client-certificate CA are kept), but Stop deletes the certificate directory it generated,
// so Start would make a new serving CA that no existing kubeconfig trusts. The directory is
// therefore copied before the stop and handed to Start, which then reuses its certificates
// (envtest only generates them when apiserver.crt is missing). If the test ends without
// restarting, a cleanup restarts it so that the rest of the suite has its API server.
func prepareAPIServerRestart(t *testing.T) (stop func() (graceful bool, err error), restart func() error) {
	t.Helper()
	api := s.cp.Env.ControlPlane.APIServer
	keep, err := os.MkdirTemp(s.cp.Dir, "apiserver-certs-")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(api.CertDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(api.CertDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(keep, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(keep, "apiserver.crt")); err != nil {
		t.Fatalf("the API server's cert dir %s has no apiserver.crt: %v", api.CertDir, err)
	}
	port := api.SecureServing.Port
	addr := net.JoinHostPort(api.SecureServing.Address, port)
	var once sync.Once
	var startErr error
	stopped := make(chan struct{})
	restart = func() error {
		once.Do(func() {
			// The old process must be gone and its port free.
			select {
			case <-stopped:
			case <-time.After(60 * time.Second):
			}
			startErr = controlplane.Wait(context.Background(), 30*time.Second, func(context.Context) (bool, error) {
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err == nil {
					c.Close()
				}
				return err != nil, nil
			})
			if startErr != nil {
				startErr = fmt.Errorf("port %s still accepts connections: %w", addr, startErr)
				return
			}
			api.CertDir = keep
			startErr = api.Start()
			if startErr == nil && api.SecureServing.Port != port {
				startErr = fmt.Errorf("the API server came back on port %s, not %s", api.SecureServing.Port, port)
			}
		})
		return startErr
	}
	t.Cleanup(func() {
		if err := restart(); err != nil {
			t.Errorf("restarting the API server: %v", err)
		}
	})
	// kube-apiserver's graceful shutdown waits for open watch streams, which its clients keep
	// open, so envtest usually kills it when its stop timeout expires (controller-runtime#1571).
	// That is reported, not failed: the API server is gone either way.
	stop = func() (bool, error) {
		defer close(stopped)
		err := api.Stop()
		if err != nil && strings.Contains(err.Error(), "timeout waiting for process kube-apiserver to stop") {
			return false, nil
		}
		return err == nil, err
	}
	return stop, restart
}

// waitAPIServerClass waits until a Pod created (dry run) through the API server in ns gets
// class.
func waitAPIServerClass(ns, class string, timeout time.Duration) error {
	var got string
	var lastErr error
	err := controlplane.Wait(context.Background(), timeout, func(ctx context.Context) (bool, error) {
		p := harness.Pod(ns, uniqueName("probe"))
		lastErr = s.client.Create(ctx, p, client.DryRunAll)
		got = className(p)
		return lastErr == nil && got == class, nil
	})
	if err != nil {
		return fmt.Errorf("pods get %q (last error %v), want %q: %w", got, lastErr, class, err)
	}
	return nil
}

func readyzBody(w *harness.Webhook) string {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz?verbose", w.HealthPort))
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitReadyz waits until w's /readyz answers 200 (ready) or anything else (!ready).
func waitReadyz(w *harness.Webhook, ready bool, timeout time.Duration) error {
	return controlplane.Wait(context.Background(), timeout, func(context.Context) (bool, error) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", w.HealthPort))
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return (resp.StatusCode == http.StatusOK) == ready, nil
	})
}

// metricValue returns the value of an unlabelled metric from w's /metrics.
func metricValue(w *harness.Webhook, name string) (float64, error) {
	m, err := w.Metrics()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(m, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// reviewPoster posts reviews in a loop until stopped.
type reviewPoster struct {
	cancel   context.CancelFunc
	done     chan struct{}
	ok, lost atomic.Int64
	first    atomic.Value
}

func startReviewPoster(post func() error) *reviewPoster {
	ctx, cancel := context.WithCancel(context.Background())
	p := &reviewPoster{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for ctx.Err() == nil {
			if err := post(); err != nil {
				p.lost.Add(1)
				p.first.CompareAndSwap(nil, fmt.Sprintf("%s: %v", time.Now().Format("15:04:05.000"), err))
			} else {
				p.ok.Add(1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return p
}

// waitOK waits until n reviews in all have been answered as wanted.
func (p *reviewPoster) waitOK(n int64, timeout time.Duration) error {
	return waitSucceeded(&p.ok, &p.lost, n, timeout, p.first.Load)
}

func (p *reviewPoster) stop() (ok, lost int64, first any) {
	p.cancel()
	<-p.done
	return p.ok.Load(), p.lost.Load(), p.first.Load()
}

// webhookTimeout is the chart's timeoutSeconds: how long the API server waits for an answer.
func webhookTimeout() time.Duration {
	if ts := s.rendered.Mutating.Webhooks[0].TimeoutSeconds; ts != nil {
		return time.Duration(*ts) * time.Second
	}
	return 10 * time.Second
}

// admissionHTTPClient posts reviews like the API server's webhook client does through a
// Service: HTTP/1.1 keep-alive over TLS verified with the suite's CA, bounded by the webhook's
// timeoutSeconds.
func admissionHTTPClient() *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.certs.CAPEM)
	return &http.Client{Timeout: webhookTimeout(), Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 4,
	}}
}

func postAdmissionReview(hc *http.Client, url string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// decodeAnswer checks the answer is a review for uid and returns its response.
func decodeAnswer(status int, body []byte, uid string) (*admissionv1.AdmissionResponse, error) {
	if status != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %.300s", status, body)
	}
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &ar); err != nil {
		return nil, fmt.Errorf("answer is not an AdmissionReview: %w (%.200s)", err, body)
	}
	if ar.Response == nil {
		return nil, fmt.Errorf("answer without response: %.300s", body)
	}
	if string(ar.Response.UID) != uid {
		return nil, fmt.Errorf("answer uid %q, want %q", ar.Response.UID, uid)
	}
	return ar.Response, nil
}

// patchClass returns the class a mutate answer's patch sets ("" without patch).
func patchClass(r *admissionv1.AdmissionResponse) (string, error) {
	if len(r.Patch) == 0 {
		return "", nil
	}
	var ops []struct{ Op, Path, Value string }
	if err := json.Unmarshal(r.Patch, &ops); err != nil {
		return "", fmt.Errorf("patch %s: %w", r.Patch, err)
	}
	if len(ops) != 1 || ops[0].Op != "add" || ops[0].Path != "/spec/runtimeClassName" {
		return "", fmt.Errorf("unexpected patch %s", r.Patch)
	}
	return ops[0].Value, nil
}

// mutatedClass posts review to w's mutating webhook and returns the class it injects.
func mutatedClass(hc *http.Client, w *harness.Webhook, review func(uid string) []byte) (string, error) {
	uid := fmt.Sprintf("fa017000-0000-4000-8000-%012d", podSeq.Add(1))
	status, body, err := postAdmissionReview(hc, w.URL(webhook.MutatePath), review(uid))
	if err != nil {
		return "", err
	}
	r, err := decodeAnswer(status, body, uid)
	if err != nil {
		return "", err
	}
	if !r.Allowed {
		return "", fmt.Errorf("not allowed: %v", r.Result)
	}
	return patchClass(r)
}

// podReviewBody is the AdmissionReview the API server sends for a Pod CREATE by the
// ReplicaSet controller; edit may change the request.
func podReviewBody(uid string, pod *corev1.Pod, edit func(*admissionv1.AdmissionRequest)) []byte {
	object, err := json.Marshal(pod)
	if err != nil {
		panic(err)
	}
	req := &admissionv1.AdmissionRequest{
		UID:             "UID",
		Kind:            metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:        metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		RequestKind:     &metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		RequestResource: &metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Name:            pod.Name,
		Namespace:       pod.Namespace,
		Operation:       admissionv1.Create,
		UserInfo: authenticationv1.UserInfo{
			Username: "system:serviceaccount:kube-system:replicaset-controller",
			UID:      "5e7a1c2d-3b4f-4a6e-9c8d-1f2e3d4c5b6a",
			Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"},
		},
		Object:  runtime.RawExtension{Raw: object},
		DryRun:  ptr.To(false),
		Options: runtime.RawExtension{Raw: []byte(`{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1"}`)},
	}
	if edit != nil {
		edit(req)
	}
	req.UID = "UID"
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  req,
	})
	if err != nil {
		panic(err)
	}
	return bytes.Replace(b, []byte(`"uid":"UID"`), []byte(`"uid":"`+uid+`"`), 1)
}

// realisticPod is the benchmark's Pod (what a Deployment's ReplicaSet creates, after the API
// server's defaulting, about 7 KB) in namespace ns.
func realisticPod(ns string) *corev1.Pod {
	pod := review.Pod()
	pod.Namespace = ns
	return pod
}

// realisticPodReview returns the review of realisticPod(ns) for a uid.
func realisticPodReview(ns string) func(uid string) []byte {
	pod := realisticPod(ns)
	return func(uid string) []byte { return podReviewBody(uid, pod, nil) }
}

// decisionCase is one review of scenario 18 with what its answers must say.
type decisionCase struct {
	name string
	body func(uid string) []byte
	// inject is the class the mutating webhook must inject ("" none); allowed and message are
	// what the validating webhook must answer (message: a substring; "" for none).
	inject  string
	allowed bool
	message string
	// status, when set, is the HTTP-level error code both webhooks must answer with.
	status int32
}

func (c decisionCase) check(path string, status int, body []byte) error {
	r, err := decodeAnswer(status, body, "UID")
	if err != nil {
		return err
	}
	if c.status != 0 {
		if r.Allowed || r.Result == nil || r.Result.Code != c.status {
			return fmt.Errorf("want an error answer with code %d", c.status)
		}
		return nil
	}
	if path == webhook.MutatePath {
		class, err := patchClass(r)
		switch {
		case err != nil:
			return err
		case !r.Allowed:
			return errors.New("mutating webhook denied")
		case class != c.inject:
			return fmt.Errorf("injects %q, want %q", class, c.inject)
		}
		return nil
	}
	text := ""
	if r.Result != nil {
		text = r.Result.Message
	}
	text += strings.Join(r.Warnings, "\n")
	if r.Allowed != c.allowed {
		return fmt.Errorf("allowed %v, want %v", r.Allowed, c.allowed)
	}
	if c.message != "" && !strings.Contains(text, c.message) {
		return fmt.Errorf("answer lacks %q", c.message)
	}
	return nil
}

// decisionCases are varied reviews: tenancies, GPUs, named classes, conflicts, exemptions,
// operations the webhook does not review, broken requests.
func decisionCases() []decisionCase {
	pod := func(ns string, edit func(*corev1.Pod)) *corev1.Pod {
		p := harness.Pod(ns, "")
		p.GenerateName = "web-5f7c9d-"
		p.Labels = map[string]string{"app": "web", "pod-template-hash": "5f7c9d"}
		if edit != nil {
			edit(p)
		}
		return p
	}
	named := func(class string) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Spec.RuntimeClassName = ptr.To(class) }
	}
	gpu := func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}
	}
	review := func(p *corev1.Pod, edit func(*admissionv1.AdmissionRequest)) func(string) []byte {
		return func(uid string) []byte { return podReviewBody(uid, p, edit) }
	}
	c := func(name string, p *corev1.Pod, inject string, allowed bool, message string) decisionCase {
		return decisionCase{name: name, body: review(p, nil), inject: inject, allowed: allowed, message: message}
	}
	// injected: the mutating webhook injects class; the validating webhook, shown the Pod as
	// posted (without the class), denies it and says which class to set.
	injected := func(name string, p *corev1.Pod, class string) decisionCase {
		return c(name, p, class, false, fmt.Sprintf("spec.runtimeClassName is not set; set it to %q", class))
	}
	return []decisionCase{
		injected("untrusted", pod(nsUntrusted, nil), "gvisor"),
		{name: "untrusted realistic", body: realisticPodReview(nsUntrusted), inject: "gvisor", message: `set it to "gvisor"`},
		c("untrusted as mutated (naming gvisor)", pod(nsUntrusted, named("gvisor")), "", true, ""),
		injected("untrusted gpu", pod(nsUntrusted, gpu), "gvisor-nvidia"),
		c("untrusted naming kata", pod(nsUntrusted, named("kata")), "", true, ""),
		c("untrusted naming nvidia", pod(nsUntrusted, named("nvidia")), "", false, "needs isolation >= 1"),
		injected("untrusted workload label in plain namespace", pod(nsPlain, func(p *corev1.Pod) { p.Labels["runtimeguard.io/workload"] = "untrusted" }), "gvisor"),
		injected("financial", pod(nsFinancial, nil), "kata"),
		c("financial naming gvisor", pod(nsFinancial, named("gvisor")), "", false, `which needs isolation >= 2 (runtime class "kata" or stronger)`),
		c("financial naming kata", pod(nsFinancial, named("kata")), "", true, ""),
		injected("financial realistic", realisticPod(nsFinancial), "kata"),
		c("plain", pod(nsPlain, nil), "", true, ""),
		injected("plain gpu", pod(nsPlain, gpu), "nvidia"),
		c("plain naming gvisor", pod(nsPlain, named("gvisor")), "", true, ""),
		c("plain naming a missing class", pod(nsPlain, named("wasm-missing")), "", false, `RuntimeClass "wasm-missing" not found; existing runtime classes: `),
		c("plain naming gvisor with a conflicting nodeSelector", pod(nsPlain, func(p *corev1.Pod) {
			p.Spec.RuntimeClassName = ptr.To("gvisor")
			p.Spec.NodeSelector = map[string]string{harness.GVisorLabel: "false"}
		}), "", false, "conflict: runtimeClass.scheduling.nodeSelector"),
		c("warn mode", pod(nsWarn, nil), "", true, ""),
		c("warn mode naming gvisor", pod(nsWarn, named("gvisor")), "", true, "runtimeguard warn mode, would deny"),
		c("kube-system", pod("kube-system", func(p *corev1.Pod) { p.Labels["runtimeguard.io/workload"] = "untrusted" }), "", true, `namespace "kube-system" is exempt`),
		c("release namespace", pod(harness.Namespace, nil), "", true, "is exempt"),
		c("ignored namespace", pod(nsIgnored, nil), "", true, "runtimeguard.io/ignore=true"),
		c("mirror pod", pod(nsUntrusted, func(p *corev1.Pod) { p.Annotations = map[string]string{"kubernetes.io/config.mirror": "abc"} }), "", true, "mirror pods"),
		{name: "update", body: review(pod(nsUntrusted, nil), func(r *admissionv1.AdmissionRequest) {
			r.Operation = admissionv1.Update
			r.OldObject = r.Object
		}), allowed: true, message: "only CREATE"},
		{name: "dry run", body: review(pod(nsUntrusted, nil), func(r *admissionv1.AdmissionRequest) { r.DryRun = ptr.To(true) }), inject: "gvisor", message: `set it to "gvisor"`},
		{name: "subresource", body: review(pod(nsUntrusted, nil), func(r *admissionv1.AdmissionRequest) { r.SubResource = "status" }), allowed: true, message: "subresources"},
		// Not a Pod nor a workload (workloads are reviewed by their template: scenario 34).
		{name: "not a pod", body: review(pod(nsUntrusted, nil), func(r *admissionv1.AdmissionRequest) {
			r.Kind = metav1.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
		}), allowed: true, message: "only core/v1 Pods"},
		{name: "broken object", body: review(pod(nsUntrusted, nil), func(r *admissionv1.AdmissionRequest) {
			r.Object.Raw = []byte(`{"spec":{"containers":"not a list"}}`)
		}), status: http.StatusBadRequest},
	}
}
