package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	resourcev1 "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/runtimeguard/runtimeguard/e2e/controlplane"
	"github.com/runtimeguard/runtimeguard/e2e/harness"
)

// tlsDial opens a TLS connection to the running webhook with cfg (the dev CA is trusted).
func tlsDial(cfg *tls.Config) (*tls.Conn, error) {
	cfg.RootCAs = s.certs.CertPool()
	cfg.ServerName = "127.0.0.1"
	return tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.webhook.Port), cfg)
}

// The webhook serves TLS 1.2 with forward-secret AEAD suites and TLS 1.3, nothing older or weaker.
func TestTLSRefusesOldVersionsAndWeakCiphersAndServesModernOnes(t *testing.T) {
	ensureStandardCluster(t)
	refused := []struct {
		name string
		cfg  *tls.Config
		// the alert the server sends
		want string
	}{
		{"TLS 1.1 at most", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, "protocol version not supported"},
		{"TLS 1.2 offering only TLS_RSA_WITH_AES_128_CBC_SHA (no forward secrecy, CBC)",
			&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA}}, "handshake failure"},
		// Go's default server suites include this one, which the certificate's ECDSA key could
		// serve: only TLSOptions refuses it.
		{"TLS 1.2 offering only TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA (CBC)",
			&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, "handshake failure"},
	}
	for _, tc := range refused {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			conn, err := tlsDial(tc.cfg)
			if err == nil {
				st := conn.ConnectionState()
				conn.Close()
				t.Fatalf("handshake succeeded with %s %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("handshake error %q, want the server's %q alert", err, tc.want)
			}
		})
	}
	served := []struct {
		name    string
		cfg     *tls.Config
		version uint16
	}{
		{"TLS 1.2 with ECDHE and AES-GCM", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		}}, tls.VersionTLS12},
		{"TLS 1.3", &tls.Config{MinVersion: tls.VersionTLS13}, tls.VersionTLS13},
	}
	for _, tc := range served {
		t.Run("serves "+tc.name, func(t *testing.T) {
			conn, err := tlsDial(tc.cfg)
			if err != nil {
				t.Fatalf("handshake failed: %v", err)
			}
			defer conn.Close()
			st := conn.ConnectionState()
			if st.Version != tc.version {
				t.Errorf("negotiated %s, want %s", tls.VersionName(st.Version), tls.VersionName(tc.version))
			}
			if name := tls.CipherSuiteName(st.CipherSuite); !strings.Contains(name, "GCM") && !strings.Contains(name, "CHACHA20") {
				t.Errorf("negotiated %s, want an AEAD suite", name)
			}
		})
	}
}

// A plain HTTP request on the webhook port gets Go's 400 for HTTP on an HTTPS port, never an
// AdmissionReview.
func TestTLSPlainHTTPIsNotServedAsAnAdmission(t *testing.T) {
	ensureStandardCluster(t)
	body := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x"}}`
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d%s", s.webhook.Port, "/mutate-v1-pod"), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), "Client sent an HTTP request to an HTTPS server") {
		t.Errorf("HTTP %d %q, want 400 Client sent an HTTP request to an HTTPS server", resp.StatusCode, raw)
	}
	if strings.Contains(string(raw), "AdmissionReview") {
		t.Errorf("answered an AdmissionReview over plain HTTP: %s", raw)
	}
}

// dribble is a request body that sends one byte per interval, up to n bytes.
type dribble struct {
	n        int
	interval time.Duration
	sent     int
}

func (d *dribble) Read(p []byte) (int, error) {
	if d.sent >= d.n {
		return 0, io.EOF
	}
	if d.sent > 0 {
		time.Sleep(d.interval)
	}
	p[0] = ' '
	d.sent++
	return 1, nil
}

// A client that sends its headers at once and then its body a byte a second (slowloris) is cut
// off by the webhook's body deadline (10 s), over HTTP/1.1 and HTTP/2 alike, instead of holding
// a connection and a goroutine for as long as it likes.
func TestTLSSlowBodyIsCutOffByTheBodyDeadline(t *testing.T) {
	ensureStandardCluster(t)
	for _, proto := range []string{"http/1.1", "h2"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
				TLSClientConfig:   &tls.Config{RootCAs: s.certs.CertPool(), ServerName: "127.0.0.1", NextProtos: []string{proto}},
				ForceAttemptHTTP2: proto == "h2",
			}}
			defer c.CloseIdleConnections()
			body := &dribble{n: 60, interval: time.Second}
			req, err := http.NewRequest(http.MethodPost, s.webhook.URL("/validate-v1-pod"), body)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = int64(body.n)
			req.Header.Set("Content-Type", "application/json")
			start := time.Now()
			resp, err := c.Do(req)
			elapsed := time.Since(start)
			if err != nil {
				t.Fatalf("POST: %v, want the webhook's answer", err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var review admissionv1.AdmissionReview
			if err := json.Unmarshal(raw, &review); err != nil || review.Response == nil || review.Response.Result == nil ||
				review.Response.Allowed || review.Response.Result.Code != http.StatusBadRequest {
				t.Fatalf("HTTP %d %s, want an AdmissionReview answering 400", resp.StatusCode, raw)
			}
			msg := review.Response.Result.Message
			if !strings.Contains(msg, "timeout") {
				t.Errorf("message %q, want it to name the timeout", msg)
			}
			if elapsed < 9*time.Second || elapsed > 13*time.Second {
				t.Errorf("cut off after %s (%d of %d bytes sent), want about 10 s", elapsed.Round(time.Millisecond), body.sent, body.n)
			}
			measure("security: a body sent at 1 byte/s over %s was cut off after %s (%d of %d bytes sent): 400 %q",
				proto, elapsed.Round(time.Millisecond), body.sent, body.n, msg)
		})
	}
}

// saClient is a client authenticated as the chart's ServiceAccount.
func saClient(t *testing.T) (client.Client, string) {
	t.Helper()
	user, err := s.rendered.ServiceAccountUser()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := s.cp.UserKubeconfig(user, "system:serviceaccounts", "system:serviceaccounts:"+harness.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: s.client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c, user
}

// The chart's ServiceAccount (cert-manager mode, the default) may read exactly what the policy
// input needs, Nodes, Namespaces and RuntimeClasses, and get and update its own two webhook
// configurations (--failure-policy), and nothing else: no Secret anywhere, no Pod, no other write.
func TestRBACServiceAccountReadsWhatThePolicyNeedsAndNothingElse(t *testing.T) {
	ensureStandardCluster(t)
	ctx := context.Background()
	sa, user := saClient(t)
	// Objects to aim the forbidden writes at, created as the admin.
	target := mustCreatePod(t, harness.Pod(nsPlain, uniqueName("rbac")))
	node := &corev1.Node{}
	if err := s.client.Get(ctx, client.ObjectKey{Name: harness.StandardNodes()[3].Name}, node); err != nil {
		t.Fatal(err)
	}
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := s.client.Get(ctx, client.ObjectKeyFromObject(s.rendered.Mutating), mwc); err != nil {
		t.Fatal(err)
	}

	// Another release's configuration, without webhooks (nothing calls it).
	other := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: uniqueName("rbac-other")}}
	if err := s.client.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.client.Delete(context.Background(), other) })

	allowed := []struct {
		name string
		do   func() error
	}{
		{"list nodes", func() error { return sa.List(ctx, &corev1.NodeList{}) }},
		{"list namespaces", func() error { return sa.List(ctx, &corev1.NamespaceList{}) }},
		{"list runtimeclasses", func() error { return sa.List(ctx, &nodev1.RuntimeClassList{}) }},
		{"get namespace " + nsUntrusted, func() error { return sa.Get(ctx, client.ObjectKey{Name: nsUntrusted}, &corev1.Namespace{}) }},
		{"get node " + node.Name, func() error { return sa.Get(ctx, client.ObjectKeyFromObject(node), &corev1.Node{}) }},
		{"get runtimeclass gvisor", func() error { return sa.Get(ctx, client.ObjectKey{Name: "gvisor"}, &nodev1.RuntimeClass{}) }},
		// DRA claims resolve the gpu trait (resource.k8s.io/v1).
		{"list resourceclaimtemplates", func() error { return sa.List(ctx, &resourcev1.ResourceClaimTemplateList{}) }},
		{"list resourceclaims", func() error { return sa.List(ctx, &resourcev1.ResourceClaimList{}) }},
		// --failure-policy: the replicas make the webhooks fail closed once they serve. The
		// update writes the object back unchanged (the suite's webhook must keep working).
		{"get its own MutatingWebhookConfiguration", func() error {
			return sa.Get(ctx, client.ObjectKeyFromObject(mwc), &admissionregistrationv1.MutatingWebhookConfiguration{})
		}},
		{"update its own MutatingWebhookConfiguration", func() error { return sa.Update(ctx, mwc.DeepCopy()) }},
	}
	for _, a := range allowed {
		t.Run("can "+a.name, func(t *testing.T) {
			if err := a.do(); err != nil {
				t.Errorf("%s cannot %s: %v", user, a.name, err)
			}
		})
	}

	forbidden := []struct {
		name string
		do   func() error
	}{
		{"get a secret in kube-system", func() error {
			return sa.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "bootstrap-token-abcdef"}, &corev1.Secret{})
		}},
		{"list secrets in kube-system", func() error { return sa.List(ctx, &corev1.SecretList{}, client.InNamespace("kube-system")) }},
		{"get a secret in its own namespace", func() error {
			return sa.Get(ctx, client.ObjectKey{Namespace: harness.Namespace, Name: harness.Release + "-tls"}, &corev1.Secret{})
		}},
		{"list secrets in its own namespace", func() error { return sa.List(ctx, &corev1.SecretList{}, client.InNamespace(harness.Namespace)) }},
		{"list secrets in all namespaces", func() error { return sa.List(ctx, &corev1.SecretList{}) }},
		{"list pods", func() error { return sa.List(ctx, &corev1.PodList{}) }},
		{"create a pod", func() error { return sa.Create(ctx, harness.Pod(nsPlain, uniqueName("rbac-sa"))) }},
		{"patch a pod", func() error {
			p := target.DeepCopy()
			return sa.Patch(ctx, p, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"labels":{"pwned":"true"}}}`)))
		}},
		{"delete a pod", func() error { return sa.Delete(ctx, target.DeepCopy()) }},
		{"update a node", func() error {
			n := node.DeepCopy()
			n.Spec.Unschedulable = true
			return sa.Update(ctx, n)
		}},
		{"list configmaps", func() error { return sa.List(ctx, &corev1.ConfigMapList{}) }},
		{"create a resourceclaim", func() error {
			return sa.Create(ctx, &resourcev1.ResourceClaim{ObjectMeta: metav1.ObjectMeta{Namespace: nsPlain, Name: uniqueName("rbac-claim")}})
		}},
		{"list configmaps in its own namespace", func() error {
			return sa.List(ctx, &corev1.ConfigMapList{}, client.InNamespace(harness.Namespace))
		}},
		{"create a runtimeclass", func() error {
			return sa.Create(ctx, &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "rbac-sa"}, Handler: "runc"})
		}},
		{"update another MutatingWebhookConfiguration", func() error {
			m := other.DeepCopy()
			m.Labels = map[string]string{"pwned": "true"}
			return sa.Update(ctx, m)
		}},
		{"patch its own MutatingWebhookConfiguration", func() error {
			return sa.Patch(ctx, mwc.DeepCopy(), client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"labels":{"pwned":"true"}}}`)))
		}},
		{"delete its own MutatingWebhookConfiguration", func() error { return sa.Delete(ctx, mwc.DeepCopy()) }},
		{"list MutatingWebhookConfigurations", func() error { return sa.List(ctx, &admissionregistrationv1.MutatingWebhookConfigurationList{}) }},
		{"create a MutatingWebhookConfiguration", func() error {
			return sa.Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: uniqueName("rbac-sa")}})
		}},
	}
	for _, f := range forbidden {
		t.Run("cannot "+f.name, func(t *testing.T) {
			err := f.do()
			if !apierrors.IsForbidden(err) {
				t.Errorf("%s: %v, want Forbidden", f.name, err)
			}
		})
	}
}

func ptrTo[T any](v T) *T { return &v }

// recoveryCommands returns the kubectl commands of the chart README's "Recovery when the
// webhook is down" section: what the test runs is what users are told to run.
func recoveryCommands(t *testing.T) (deleteConfigs, labelNamespace []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.root, "charts", "runtimeguard", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "## Recovery when the webhook is down")
	if !ok {
		t.Fatal(`charts/runtimeguard/README.md has no "## Recovery when the webhook is down" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	sc := bufio.NewScanner(strings.NewReader(section))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "kubectl delete ") {
			deleteConfigs = strings.Fields(line)[1:]
		}
		if _, rest, ok := strings.Cut(line, "`kubectl label namespace "); ok {
			cmd, _, _ := strings.Cut(rest, "`")
			labelNamespace = append([]string{"label", "namespace"}, strings.Fields(cmd)...)
		}
	}
	if deleteConfigs == nil || labelNamespace == nil {
		t.Fatalf("the README's recovery section no longer holds the commands this test runs:\n%s", section)
	}
	return deleteConfigs, labelNamespace
}

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(s.paths.Kubectl, append([]string{"--kubeconfig", s.cp.Kubeconfig}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// createEventually retries a Pod create until it is admitted: the API server picks up webhook
// configuration changes asynchronously.
func createEventually(t *testing.T, ns string) *corev1.Pod {
	t.Helper()
	var p *corev1.Pod
	var lastErr error
	err := controlplane.Wait(context.Background(), 15*time.Second, func(context.Context) (bool, error) {
		p, lastErr = createPod(t, harness.Pod(ns, uniqueName("recovered")))
		return lastErr == nil, nil
	})
	if err != nil {
		t.Fatalf("pod in %s still rejected: %v", ns, lastErr)
	}
	return p
}

// With every replica down and failurePolicy Fail, the control plane's and the webhook's own
// namespaces keep working while enforced namespaces are locked; the chart README's two recovery
// commands, run verbatim, unlock one namespace and then all; re-registering and restarting
// brings enforcement back.
func TestLockoutExemptNamespacesStillWorkAndTheDocumentedRecoveryRestoresPodCreation(t *testing.T) {
	ensureStandardCluster(t)
	ctx := context.Background()
	deleteArgs, labelArgs := recoveryCommands(t)
	if want := []string{"delete", "mutatingwebhookconfiguration,validatingwebhookconfiguration", s.rendered.Mutating.Name}; strings.Join(deleteArgs, " ") != strings.Join(want, " ") ||
		s.rendered.Validating.Name != s.rendered.Mutating.Name {
		t.Fatalf("the README says kubectl %s; the chart's configurations are %s and %s", strings.Join(deleteArgs, " "), s.rendered.Mutating.Name, s.rendered.Validating.Name)
	}
	// A namespace of its own per run: the test labels it runtimeguard.io/ignore=true.
	locked := uniqueName("lockout-e2e")
	if err := harness.EnsureNamespace(ctx, s.client, locked, map[string]string{"runtimeguard.io/tenancy": "untrusted"}); err != nil {
		t.Fatal(err)
	}

	s.webhook.Stop()
	// Restart, re-register, and wait until the API server calls the suite's webhook again.
	t.Cleanup(func() { restoreSuiteWebhook(t) })
	for _, ns := range []string{"kube-system", harness.Namespace} {
		if _, err := createPod(t, harness.Pod(ns, "")); err != nil {
			t.Errorf("pod in %s rejected while the webhook is down: %v", ns, err)
		}
	}
	for _, ns := range []string{nsUntrusted, locked} {
		_, err := createPod(t, harness.Pod(ns, ""))
		wantDenied(t, err, `failed calling webhook "mutate.runtimeguard.io"`)
	}

	// Recovery for one namespace: label it as the README says (NAME is the namespace).
	if len(labelArgs) != 4 || labelArgs[2] != "NAME" || labelArgs[3] != "runtimeguard.io/ignore=true" {
		t.Fatalf("the README says kubectl %s; this test labels NAME runtimeguard.io/ignore=true", strings.Join(labelArgs, " "))
	}
	args := append([]string(nil), labelArgs...)
	args[2] = locked
	kubectl(t, args...)
	if p := createEventually(t, locked); className(p) != "" {
		t.Errorf("pod in the ignored namespace got runtime class %q", className(p))
	}
	if _, err := createPod(t, harness.Pod(nsUntrusted, "")); err == nil {
		t.Errorf("labelling %s unlocked %s too", locked, nsUntrusted)
	}

	// Recovery for every namespace: delete the configurations, verbatim.
	out := kubectl(t, deleteArgs...)
	for _, kind := range []string{"mutatingwebhookconfiguration", "validatingwebhookconfiguration"} {
		if !strings.Contains(out, fmt.Sprintf("%s.admissionregistration.k8s.io %q deleted", kind, s.rendered.Mutating.Name)) {
			t.Errorf("kubectl output %q does not report the %s deleted", out, kind)
		}
	}
	if p := createEventually(t, nsUntrusted); className(p) != "" {
		t.Errorf("pod created without the webhook got runtime class %q", className(p))
	}

	// Fix the cause and re-register (helm upgrade in a cluster).
	ensureWebhook(t)
	if err := s.rendered.Apply(ctx, s.client); err != nil {
		t.Fatal(err)
	}
	var got *corev1.Pod
	err := controlplane.Wait(ctx, 15*time.Second, func(context.Context) (bool, error) {
		p, err := createPod(t, harness.Pod(nsUntrusted, uniqueName("reenforced")))
		if err != nil {
			return false, err
		}
		got = p
		return className(p) == "gvisor", nil
	})
	if err != nil {
		t.Fatalf("after re-registering and restarting, an untrusted pod did not get gvisor (last got %q): %v", className(got), err)
	}
}
