package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/runtimeguard/runtimeguard/e2e/controlplane"
	"github.com/runtimeguard/runtimeguard/e2e/harness"
)

const injectCAFrom = "cert-manager.io/inject-ca-from"

// Scenario 15.
//
// The chart's default certificate mode with the real cert-manager controllers and cainjector
// (bin/cert-manager-lite): the chart's Issuers and Certificates issue the serving certificate,
// a kubelet stand-in projects its Secret into the webhook's cert dir like a Secret volume, the
// chart's webhook configurations (pointed at the local process, with their inject-ca-from
// annotation and no caBundle) get the caBundle from the real cainjector, admissions succeed,
// and a forced renewal (as `cmctl renew` does it) reaches the running process with no failed
// admission and no restart.
func TestCertManagerIssuesTheServingCertificateAndRenewsWithoutFailedAdmissions(t *testing.T) {
	ensureStandardCluster(t)
	ctx := context.Background()
	r, err := harness.RenderChart(s.ctx, "--set", "extraServingSANs={127.0.0.1}")
	if err != nil {
		t.Fatal(err)
	}
	issuance, err := r.Objects("Issuer", "ClusterIssuer", "Certificate")
	if err != nil {
		t.Fatal(err)
	}
	serving, err := servingCertificate(r)
	if err != nil {
		t.Fatal(err)
	}
	secretName, _, _ := unstructured.NestedString(serving.Object, "spec", "secretName")
	secretKey := types.NamespacedName{Namespace: serving.GetNamespace(), Name: secretName}
	annotation := r.Mutating.Annotations[injectCAFrom]
	if want := serving.GetNamespace() + "/" + serving.GetName(); annotation != want || r.Validating.Annotations[injectCAFrom] != want {
		t.Fatalf("the chart's webhook configurations have %s %q / %q, want %q", injectCAFrom,
			annotation, r.Validating.Annotations[injectCAFrom], want)
	}
	args, err := r.ServeArgs(harness.ServeArgsOptions{})
	if err != nil {
		t.Fatal(err)
	}

	var (
		cm              *certManagerLite
		volume          *harness.SecretSync
		webhook         *harness.Webhook
		configsReplaced bool
		applied         bool
	)
	// One cleanup, in an order that keeps the suite safe: the webhook and the kubelet
	// stand-in, then cert-manager (so the cainjector cannot touch the configurations any
	// more), then the suite's configurations, then what cert-manager and the chart created.
	t.Cleanup(func() {
		if webhook != nil {
			webhook.Stop()
		}
		if volume != nil {
			volume.Stop()
		}
		if cm != nil {
			cm.stop(t)
		}
		if configsReplaced {
			restoreSuiteWebhook(t)
		}
		if applied {
			deleteOwnedByCertificates(t, issuance)
			deleteObjects(t, issuance)
			for _, u := range issuance {
				if name, _, _ := unstructured.NestedString(u.Object, "spec", "secretName"); name != "" {
					sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: u.GetNamespace(), Name: name}}
					if err := s.client.Delete(context.Background(), sec); client.IgnoreNotFound(err) != nil {
						t.Errorf("deleting Secret %s: %v", name, err)
					}
				}
			}
		}
	})

	// cert-manager, as the cluster would run it. Fresh files per run (-count=N).
	run := uniqueName("certmanager")
	if err := harness.EnsureNamespace(ctx, s.client, "cert-manager", nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if cm, err = startCertManagerLite(ctx, run); err != nil {
		t.Fatal(err)
	}
	cmReady := time.Since(start)

	// The chart's Issuers and Certificates.
	applied = true
	if err := r.ApplyKinds(ctx, s.client, "Issuer", "ClusterIssuer", "Certificate"); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	var secret corev1.Secret
	err = controlplane.Wait(ctx, 60*time.Second, func(ctx context.Context) (bool, error) {
		ready, err := certificateReady(ctx, serving)
		if !ready || err != nil {
			return false, err
		}
		if err := s.client.Get(ctx, secretKey, &secret); err != nil {
			return false, err
		}
		return len(secret.Data["tls.crt"]) > 0 && len(secret.Data["ca.crt"]) > 0, nil
	})
	if err != nil {
		t.Fatalf("the serving certificate was not issued (see %s): %v", cm.logPath, err)
	}
	issued := time.Since(start)
	ca := secret.Data["ca.crt"]
	leaf, err := parseCert(secret.Data["tls.crt"])
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.IPAddresses) != 1 || leaf.IPAddresses[0].String() != "127.0.0.1" {
		t.Errorf("issued certificate IP SANs %v, want [127.0.0.1] from extraServingSANs", leaf.IPAddresses)
	}

	// The kubelet stand-in projects the Secret; the webhook runs with the chart's flags.
	if volume, err = harness.StartSecretSync(ctx, s.client, secretKey, filepath.Join(s.logDir, run+"-certs"), 30*time.Second, "tls.crt", "tls.key"); err != nil {
		t.Fatal(err)
	}
	user, err := r.ServiceAccountUser()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := s.cp.UserKubeconfig(user, "system:serviceaccounts", "system:serviceaccounts:"+harness.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	if webhook, err = harness.StartWebhook(ctx, harness.WebhookOptions{
		Kubeconfig: kubeconfig,
		CertDir:    volume.Dir,
		LogPath:    filepath.Join(s.logDir, run+"-webhook.log"),
		Args:       args,
	}); err != nil {
		t.Fatal(err)
	}
	if err := harness.WaitForStandardView(ctx, webhook, viewTimeout); err != nil {
		t.Fatal(err)
	}

	// The chart's webhook configurations pointed at the process, keeping the inject-ca-from
	// annotation (PointAt drops it) and with no caBundle: only the cainjector can make them work.
	r.PointAt(webhook.URL(""), nil)
	r.Mutating.Annotations[injectCAFrom] = annotation
	r.Validating.Annotations[injectCAFrom] = annotation
	configsReplaced = true
	start = time.Now()
	if err := r.Apply(ctx, s.client); err != nil {
		t.Fatal(err)
	}
	err = controlplane.Wait(ctx, 30*time.Second, func(context.Context) (bool, error) {
		return allEqual(caBundles(t, r.Mutating.Name), ca) && allEqual(validatingCABundles(t, r.Validating.Name), ca), nil
	})
	if err != nil {
		t.Fatalf("the cainjector did not inject the CA into both configurations: %v", err)
	}
	injected := time.Since(start)
	waitUntrustedPodsGetGVisor(ctx, t, "cm", "no successful admission with the cert-manager certificate")
	firstAdmission := time.Since(start)
	before, err := webhook.ServingSerial(ca)
	if err != nil || before != leaf.SerialNumber.String() {
		t.Fatalf("the webhook serves %s (%v), want the issued serial %s", before, err, leaf.SerialNumber)
	}
	measure("scenario 15: cert-manager-lite ready in %s; serving certificate issued %s after applying the chart's Issuers and Certificates; caBundle injected by cainjector %s after applying the webhook configurations; first admission after %s",
		cmReady.Round(time.Millisecond), issued.Round(time.Millisecond), injected.Round(time.Millisecond), firstAdmission.Round(time.Millisecond))

	// Forced renewal under load.
	writes, _ := volume.Writes()
	load := startAdmissionLoad(4)
	defer load.stop()
	if err := load.waitOK(minAdmissions, 30*time.Second); err != nil {
		t.Fatalf("before the forced renewal: %v", err)
	}
	forced := time.Now()
	if err := forceRenewal(ctx, serving); err != nil {
		load.stop()
		t.Fatal(err)
	}
	// The Secret is watched by a fast poll of its own, so that the three instants are
	// comparable (the serial probe below costs a TLS handshake per round).
	var inSecret atomic.Int64
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for watchCtx.Err() == nil {
			var sec corev1.Secret
			if err := s.client.Get(watchCtx, secretKey, &sec); err == nil {
				if c, err := parseCert(sec.Data["tls.crt"]); err == nil && c.SerialNumber.String() != before {
					inSecret.Store(int64(time.Since(forced)))
					return
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	var after string
	err = controlplane.Wait(ctx, 60*time.Second, func(ctx context.Context) (bool, error) {
		serial, err := webhook.ServingSerial(ca)
		after = serial
		return err == nil && after != before, err
	})
	select { // the Secret holds what is served, so the poll sees it at once if it has not yet
	case <-watched:
	case <-time.After(5 * time.Second):
	}
	stopWatch()
	var onDisk time.Duration
	if n, at := volume.Writes(); n > writes {
		onDisk = at.Sub(forced)
	}
	served := time.Since(forced)
	if err != nil {
		t.Fatalf("the webhook still serves serial %s after the forced renewal (Secret renewed after %s; see %s): %v", before, time.Duration(inSecret.Load()), cm.logPath, err)
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
	if webhook.Exited() {
		t.Errorf("the webhook exited during the renewal; see %s", webhook.LogPath)
	}
	if err := s.client.Get(ctx, secretKey, &secret); err != nil {
		t.Fatal(err)
	}
	if c, err := parseCert(secret.Data["tls.crt"]); err != nil || c.SerialNumber.String() != after {
		t.Errorf("the webhook serves %s, the Secret holds %v (%v)", after, c.SerialNumber, err)
	}
	if !bytes.Equal(secret.Data["ca.crt"], ca) || !allEqual(caBundles(t, r.Mutating.Name), ca) {
		t.Errorf("the CA changed during a serving-certificate renewal")
	}
	measure("scenario 15: forced renewal: new certificate in the Secret after %s, in the cert dir after %s, served (certwatcher, no restart) after %s; %d admissions during the renewal, %d failed",
		time.Duration(inSecret.Load()).Round(time.Millisecond), onDisk.Round(time.Millisecond), served.Round(time.Millisecond), ok+failed, failed)
}

// servingCertificate is the chart's Certificate named by the webhooks' inject-ca-from, i.e.
// the one whose Secret the Deployment mounts.
func servingCertificate(r *harness.Rendered) (*unstructured.Unstructured, error) {
	d, err := r.Deployment()
	if err != nil {
		return nil, err
	}
	var mounted string
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == "certs" && v.Secret != nil {
			mounted = v.Secret.SecretName
		}
	}
	certsList, err := r.Objects("Certificate")
	if err != nil {
		return nil, err
	}
	for _, c := range certsList {
		if name, _, _ := unstructured.NestedString(c.Object, "spec", "secretName"); name == mounted && mounted != "" {
			return c, nil
		}
	}
	return nil, fmt.Errorf("no rendered Certificate writes the Secret %q that the Deployment mounts at /certs", mounted)
}

// certManagerClient is a client that knows cert-manager's Go API types.
func certManagerClient() (client.Client, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := cmapi.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return client.New(s.cp.Config, client.Options{Scheme: scheme})
}

// certificateReady reports the Ready condition of a Certificate (for its current generation).
func certificateReady(ctx context.Context, crt *unstructured.Unstructured) (bool, error) {
	c, err := certManagerClient()
	if err != nil {
		return false, err
	}
	cert := &cmapi.Certificate{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(crt), cert); err != nil {
		return false, err
	}
	for _, cond := range cert.Status.Conditions {
		if cond.Type == cmapi.CertificateConditionReady {
			return cond.Status == cmmeta.ConditionTrue && cond.ObservedGeneration == cert.Generation, nil
		}
	}
	return false, nil
}

// forceRenewal does what `cmctl renew` does: it sets the Issuing condition on the
// Certificate's status (status subresource), which the cert-manager controllers act on.
func forceRenewal(ctx context.Context, crt *unstructured.Unstructured) error {
	c, err := certManagerClient()
	if err != nil {
		return err
	}
	cert := &cmapi.Certificate{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(crt), cert); err != nil {
		return err
	}
	now := metav1.Now()
	cert.Status.Conditions = append(cert.Status.Conditions, cmapi.CertificateCondition{
		Type:               cmapi.CertificateConditionIssuing,
		Status:             cmmeta.ConditionTrue,
		Reason:             "ManuallyTriggered",
		Message:            "Certificate re-issuance manually triggered",
		LastTransitionTime: &now,
		ObservedGeneration: cert.Generation,
	})
	if err := c.Status().Update(ctx, cert); err != nil {
		return fmt.Errorf("setting the Issuing condition on %s: %w", cert.Name, err)
	}
	return nil
}

// certManagerLite is a running bin/cert-manager-lite.
type certManagerLite struct {
	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
	log     *os.File
}

// startCertManagerLite runs the real cert-manager controllers and cainjector with the admin
// kubeconfig and waits for /healthz (every controller and injector synced).
func startCertManagerLite(ctx context.Context, run string) (*certManagerLite, error) {
	port, err := harness.FreePort()
	if err != nil {
		return nil, err
	}
	c := &certManagerLite{done: make(chan struct{}), logPath: filepath.Join(s.logDir, run+"-cert-manager-lite.log")}
	if c.log, err = os.Create(c.logPath); err != nil {
		return nil, err
	}
	c.cmd = exec.Command(s.paths.CertManagerLite,
		"--kubeconfig="+s.cp.Kubeconfig,
		"--cluster-resource-namespace=cert-manager",
		fmt.Sprintf("--health-addr=127.0.0.1:%d", port),
	)
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	if err := c.cmd.Start(); err != nil {
		c.log.Close()
		return nil, err
	}
	go func() { _ = c.cmd.Wait(); close(c.done) }()
	err = controlplane.Wait(ctx, 90*time.Second, func(context.Context) (bool, error) {
		select {
		case <-c.done:
			return false, fmt.Errorf("cert-manager-lite exited; see %s", c.logPath)
		default:
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Errorf("/healthz answered %d", resp.StatusCode)
	})
	if err != nil {
		c.kill()
		return nil, fmt.Errorf("cert-manager-lite not ready: %w", err)
	}
	return c, nil
}

func (c *certManagerLite) stop(t *testing.T) {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		if code := c.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("cert-manager-lite exited with %d; see %s", code, c.logPath)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("cert-manager-lite did not stop within 20s of SIGTERM")
		c.kill()
	}
	c.log.Close()
}

func (c *certManagerLite) kill() {
	_ = c.cmd.Process.Kill()
	<-c.done
	c.log.Close()
}

// deleteOwnedByCertificates deletes what cert-manager created for the given Certificates and
// left for the garbage collector (CertificateRequests, temporary private-key Secrets), so the
// namespace is as before without waiting for it.
func deleteOwnedByCertificates(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	ctx := context.Background()
	owners := map[types.UID]bool{}
	for _, o := range objs {
		if o.GetKind() != "Certificate" {
			continue
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(o.GroupVersionKind())
		if err := s.client.Get(ctx, client.ObjectKeyFromObject(o), u); err == nil {
			owners[u.GetUID()] = true
		}
	}
	for _, kind := range []string{"CertificateRequestList", "SecretList"} {
		list := &unstructured.UnstructuredList{}
		if kind == "SecretList" {
			list.SetAPIVersion("v1")
		} else {
			list.SetAPIVersion("cert-manager.io/v1")
		}
		list.SetKind(kind)
		if err := s.client.List(ctx, list, client.InNamespace(harness.Namespace)); err != nil {
			t.Errorf("listing %s: %v", kind, err)
			continue
		}
		for i := range list.Items {
			item := &list.Items[i]
			for _, ref := range item.GetOwnerReferences() {
				if owners[ref.UID] {
					if err := s.client.Delete(ctx, item); client.IgnoreNotFound(err) != nil {
						t.Errorf("deleting %s %s: %v", item.GetKind(), item.GetName(), err)
					}
					break
				}
			}
		}
	}
}
