package certs

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// RBAC needed by the self-managed mode (names are the defaults; use the
// configured ones). certs/README.md has the same rules as YAML, and the
// integration test runs the managers as a user that has exactly those rules.
//
// In the webhook's namespace (Role):
//
//	secrets, resourceNames [runtimeguard-tls]: get, list, watch, update
//	secrets (no resourceNames possible): create, ONLY if the chart does not
//	  pre-create the Secret
//
// Cluster-wide (ClusterRole):
//
//	mutatingwebhookconfigurations, resourceNames [runtimeguard]: get, list, watch, patch
//	validatingwebhookconfigurations, resourceNames [runtimeguard]: get, list, watch, patch
//
// list and watch are normally not restricted by resourceNames; they are here
// because every list/watch this package sends carries the field selector
// metadata.name=<name>, which the API server turns into a request on that
// name. Nothing else (no other Secret, no leases, no events) is accessed.

// Setup registers self-managed certificate management with mgr: every
// replica (no leader election is involved) watches the Secret and the two
// webhook configurations by name, creates or renews what is due in the Secret
// with an update conditional on resourceVersion, writes the Secret's
// tls.crt/tls.key (and the CA bundle as ca.crt) into certDir, and keeps the
// caBundle of every webhook entry equal to the Secret's CA bundle.
//
// The returned channel is closed once certDir holds a certificate that is
// valid for the service and chains to the Secret's CA bundle; the webhook
// server must not start before (see GateWebhookServer). With o.Enabled false
// Setup registers nothing and returns nil, nil.
func Setup(mgr manager.Manager, o Options, certDir string) (<-chan struct{}, error) {
	if !o.Enabled {
		return nil, nil
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	if certDir == "" {
		return nil, errors.New("certDir is required")
	}
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating cert dir: %w", err)
	}

	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := admissionregistrationv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	// A cluster of our own rather than mgr's cache: mgr's cache would watch
	// all Secrets (in every namespace it covers), which needs far broader
	// RBAC and memory. This one watches exactly three objects by name.
	byName := func(name string) fields.Selector { return fields.OneTermEqualSelector("metadata.name", name) }
	byObject := map[client.Object]cache.ByObject{
		&corev1.Secret{}: {
			Namespaces: map[string]cache.Config{o.Namespace: {}},
			Field:      byName(o.SecretName),
		},
	}
	if o.MutatingWebhookConfiguration != "" {
		byObject[&admissionregistrationv1.MutatingWebhookConfiguration{}] = cache.ByObject{Field: byName(o.MutatingWebhookConfiguration)}
	}
	if o.ValidatingWebhookConfiguration != "" {
		byObject[&admissionregistrationv1.ValidatingWebhookConfiguration{}] = cache.ByObject{Field: byName(o.ValidatingWebhookConfiguration)}
	}
	cl, err := cluster.New(mgr.GetConfig(), func(co *cluster.Options) {
		co.Scheme = scheme
		co.HTTPClient = mgr.GetHTTPClient()
		co.Cache = cache.Options{ByObject: byObject}
		co.Logger = mgr.GetLogger().WithName("certs")
	})
	if err != nil {
		return nil, fmt.Errorf("creating client for certificate management: %w", err)
	}
	// A cluster is started with the manager's caches, before any
	// controller, on every replica.
	if err := mgr.Add(cl); err != nil {
		return nil, err
	}

	r := newRotator(o, certDir, cl.GetAPIReader(), cl.GetClient(), mgr.GetLogger())
	r.cluster = cl
	if err := mgr.Add(r); err != nil {
		return nil, err
	}
	return r.ready, nil
}

// newRotator builds a rotator for defaulted, validated options; Setup adds
// the watches (cluster).
func newRotator(o Options, certDir string, reader client.Reader, writer client.Client, log logr.Logger) *rotator {
	return &rotator{
		opts:    o,
		certDir: certDir,
		reader:  reader,
		writer:  writer,
		log:     log.WithName("certs").WithValues("secret", o.Namespace+"/"+o.SecretName),
		ready:   make(chan struct{}),
		trigger: make(chan struct{}, 1),
		cfg: planConfig{
			hosts:          o.hosts(),
			caName:         "runtimeguard-webhook-ca",
			caValidity:     o.CAValidity,
			certValidity:   o.CertValidity,
			rolloverDelay:  o.CARolloverDelay,
			resyncInterval: o.ResyncInterval,
		},
	}
}

// rotator is the runnable doing the work; one per replica.
type rotator struct {
	opts    Options
	cfg     planConfig
	certDir string
	cluster cluster.Cluster
	// reader reads from the API server directly: decisions must be made
	// on the latest Secret, not a possibly stale cache, to keep conflicts
	// (and stale caBundle writes) rare.
	reader client.Reader
	writer client.Client
	log    logr.Logger

	ready     chan struct{}
	readyOnce sync.Once
	trigger   chan struct{}
}

var (
	_ manager.Runnable               = (*rotator)(nil)
	_ manager.LeaderElectionRunnable = (*rotator)(nil)
)

// NeedLeaderElection is false: every replica must keep its own cert dir in
// sync with the Secret, and writes are safe without a leader thanks to
// resourceVersion preconditions. A rotator waiting for leadership would leave
// standby replicas serving an expired certificate.
func (r *rotator) NeedLeaderElection() bool { return false }

// errRetrySoon marks an optimistic-concurrency conflict: another replica
// wrote first, so re-read and re-plan almost at once.
var errRetrySoon = errors.New("conflict, retrying")

// Start runs the reconcile loop until ctx ends.
func (r *rotator) Start(ctx context.Context) error {
	onChange := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { r.poke() },
		UpdateFunc: func(any, any) { r.poke() },
		DeleteFunc: func(any) { r.poke() },
	}
	objs := []client.Object{&corev1.Secret{}}
	if r.opts.MutatingWebhookConfiguration != "" {
		objs = append(objs, &admissionregistrationv1.MutatingWebhookConfiguration{})
	}
	if r.opts.ValidatingWebhookConfiguration != "" {
		objs = append(objs, &admissionregistrationv1.ValidatingWebhookConfiguration{})
	}
	for _, obj := range objs {
		inf, err := r.cluster.GetCache().GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("watching %T: %w", obj, err)
		}
		if _, err := inf.AddEventHandler(onChange); err != nil {
			return fmt.Errorf("watching %T: %w", obj, err)
		}
	}

	backoff := time.Second
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-r.trigger:
		}
		wait, err := r.reconcile(ctx)
		switch {
		case errors.Is(err, errRetrySoon):
			wait = time.Duration(50+rand.IntN(200)) * time.Millisecond
		case err != nil:
			if ctx.Err() != nil {
				return nil
			}
			r.log.Error(err, "certificate reconcile failed", "retryIn", backoff)
			wait = backoff
			backoff = min(2*backoff, time.Minute)
		default:
			backoff = time.Second
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(max(wait, 0))
	}
}

func (r *rotator) poke() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// reconcile makes one pass: Secret, then cert dir, then caBundles. It returns
// how long to wait before the next pass if nothing changes meanwhile.
func (r *rotator) reconcile(ctx context.Context) (time.Duration, error) {
	now := time.Now()
	key := types.NamespacedName{Namespace: r.opts.Namespace, Name: r.opts.SecretName}

	secret := &corev1.Secret{}
	if err := r.reader.Get(ctx, key, secret); err != nil {
		if !apierrors.IsNotFound(err) {
			return 0, fmt.Errorf("reading Secret: %w", err)
		}
		secret, err = r.createSecret(ctx, key)
		if err != nil {
			return 0, err
		}
	}

	configs, err := r.readWebhookConfigs(ctx)
	if err != nil {
		return 0, err
	}
	var published [][]*x509.Certificate
	for _, c := range configs {
		for _, b := range c.bundles {
			published = append(published, parseCerts(b))
		}
	}

	p, err := plan(planInput{now: now, data: secret.Data, annotations: secret.Annotations, published: published}, r.cfg)
	if err != nil {
		return 0, fmt.Errorf("planning certificates: %w", err)
	}
	var updateErr error
	if p.changed {
		updated := secret.DeepCopy()
		updated.Data = p.data
		updated.Annotations = p.annotations
		if len(updated.Annotations) == 0 {
			updated.Annotations = nil
		}
		// Update carries secret.ResourceVersion: if another replica wrote
		// since we read, this fails with Conflict and nothing is lost; we
		// re-read and adopt its CA instead of overwriting it.
		switch err := r.writer.Update(ctx, updated); {
		case apierrors.IsConflict(err):
			r.log.V(1).Info("Secret changed concurrently; re-reading", "reasons", p.reasons)
			return 0, errRetrySoon
		case err != nil:
			// Keep serving and publishing what the Secret has now (it may
			// well still be valid) and retry the write with backoff.
			updateErr = fmt.Errorf("updating Secret (%v): %w", p.reasons, err)
		default:
			secret = updated
			leaf, _ := parseKeyPair(p.data[SecretKeyTLSCert], p.data[SecretKeyTLSKey])
			ca, _ := parseKeyPair(p.data[SecretKeyCACert], p.data[SecretKeyCAKey])
			kv := []any{"reasons", p.reasons}
			if leaf != nil && ca != nil {
				kv = append(kv, "servingSerial", fmt.Sprintf("%x", leaf.cert.SerialNumber),
					"servingNotAfter", leaf.cert.NotAfter, "ca", ca.cert.Subject.CommonName)
			}
			r.log.Info("updated certificates in Secret", kv...)
		}
	}

	bundle := secret.Data[SecretKeyCABundle]
	if err := r.syncCertDir(secret.Data, now); err != nil {
		return 0, errors.Join(updateErr, err)
	}
	if err := r.syncCABundles(ctx, configs, bundle); err != nil {
		return 0, errors.Join(updateErr, err)
	}
	if updateErr != nil {
		return 0, updateErr
	}
	return time.Until(p.nextCheck) + 100*time.Millisecond, nil
}

// createSecret creates the empty Secret when the chart did not. Create is
// atomic per name, so with several replicas exactly one succeeds; the others
// get AlreadyExists and re-read.
func (r *rotator) createSecret(ctx context.Context, key types.NamespacedName) (*corev1.Secret, error) {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: key.Namespace,
			Name:      key.Name,
			Labels:    map[string]string{"app.kubernetes.io/managed-by": "runtimeguard"},
		},
		Type: corev1.SecretTypeOpaque,
	}
	switch err := r.writer.Create(ctx, s); {
	case apierrors.IsAlreadyExists(err):
		return nil, errRetrySoon
	case apierrors.IsForbidden(err):
		return nil, fmt.Errorf("Secret %s does not exist and creating it is forbidden; pre-create it (see certs/README.md) or grant create on secrets: %w", key, err)
	case err != nil:
		return nil, fmt.Errorf("creating Secret %s: %w", key, err)
	}
	r.log.Info("created Secret for self-managed certificates")
	return s, nil
}

// webhookConfig is a managed configuration as read from the API server.
type webhookConfig struct {
	obj     client.Object
	kind    string
	bundles [][]byte // caBundle of each webhook entry, in order
}

func (r *rotator) readWebhookConfigs(ctx context.Context) ([]webhookConfig, error) {
	var out []webhookConfig
	if name := r.opts.MutatingWebhookConfiguration; name != "" {
		m := &admissionregistrationv1.MutatingWebhookConfiguration{}
		switch err := r.reader.Get(ctx, types.NamespacedName{Name: name}, m); {
		case apierrors.IsNotFound(err):
			r.log.V(1).Info("MutatingWebhookConfiguration not found; nothing to inject", "name", name)
		case err != nil:
			return nil, fmt.Errorf("reading MutatingWebhookConfiguration %s: %w", name, err)
		default:
			c := webhookConfig{obj: m, kind: "MutatingWebhookConfiguration"}
			for _, w := range m.Webhooks {
				c.bundles = append(c.bundles, w.ClientConfig.CABundle)
			}
			out = append(out, c)
		}
	}
	if name := r.opts.ValidatingWebhookConfiguration; name != "" {
		v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		switch err := r.reader.Get(ctx, types.NamespacedName{Name: name}, v); {
		case apierrors.IsNotFound(err):
			r.log.V(1).Info("ValidatingWebhookConfiguration not found; nothing to inject", "name", name)
		case err != nil:
			return nil, fmt.Errorf("reading ValidatingWebhookConfiguration %s: %w", name, err)
		default:
			c := webhookConfig{obj: v, kind: "ValidatingWebhookConfiguration"}
			for _, w := range v.Webhooks {
				c.bundles = append(c.bundles, w.ClientConfig.CABundle)
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// syncCABundles sets every webhook entry's caBundle to the Secret's bundle.
// It uses a JSON patch that touches only those fields and sets
// metadata.resourceVersion to the one that was read: the API server then
// applies it only if the object is unchanged (else 409 Conflict), so the
// entry indexes are the ones we read and a concurrent writer is never
// overwritten.
// A patch rather than an Update also avoids dropping fields that a newer API
// server knows and this client does not.
func (r *rotator) syncCABundles(ctx context.Context, configs []webhookConfig, bundle []byte) error {
	if len(bundle) == 0 {
		return nil
	}
	for _, c := range configs {
		type op struct {
			Op    string `json:"op"`
			Path  string `json:"path"`
			Value any    `json:"value"`
		}
		ops := []op{{Op: "replace", Path: "/metadata/resourceVersion", Value: c.obj.GetResourceVersion()}}
		for i, b := range c.bundles {
			if !bytes.Equal(b, bundle) {
				// caBundle is []byte, i.e. base64 in JSON.
				ops = append(ops, op{Op: "add", Path: fmt.Sprintf("/webhooks/%d/clientConfig/caBundle", i), Value: base64.StdEncoding.EncodeToString(bundle)})
			}
		}
		if len(ops) == 1 {
			continue
		}
		patch, err := json.Marshal(ops)
		if err != nil {
			return err
		}
		err = r.writer.Patch(ctx, c.obj, client.RawPatch(types.JSONPatchType, patch))
		switch {
		case apierrors.IsConflict(err), apierrors.IsNotFound(err):
			return errRetrySoon
		case err != nil:
			return fmt.Errorf("updating caBundle of %s %s: %w", c.kind, c.obj.GetName(), err)
		}
		r.log.Info("updated caBundle", "kind", c.kind, "name", c.obj.GetName(), "entries", len(ops)-1, "cas", len(parseCerts(bundle)))
	}
	return nil
}

// syncCertDir writes the Secret's serving certificate, key and CA bundle into
// the cert dir when they differ from what is there, and closes ready the first
// time the cert dir holds a valid certificate. Invalid content (e.g. an
// expired certificate while the writing replica retries) is not written, so a
// replica never swaps a working certificate for a broken one.
func (r *rotator) syncCertDir(data map[string][]byte, now time.Time) error {
	leaf, err := parseKeyPair(data[SecretKeyTLSCert], data[SecretKeyTLSKey])
	if err != nil {
		return fmt.Errorf("serving certificate in Secret unusable: %w", err)
	}
	bundle := data[SecretKeyCABundle]
	if err := verifyServing(leaf.cert, parseCerts(bundle), r.cfg.hosts, now); err != nil {
		return fmt.Errorf("serving certificate in Secret does not verify against its CA bundle: %w", err)
	}
	// Key before certificate: see DevCerts.Rotate for why this order is
	// safe with certwatcher.
	files := []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{TLSKeyFile, leaf.keyPEM, 0o600},
		{TLSCertFile, leaf.certPEM, 0o644},
		{CACertFile, bundle, 0o644},
	}
	changed := false
	for _, f := range files {
		// Compare with the disk rather than with what we last wrote, so
		// that a deleted or edited file is repaired; unchanged files are
		// not rewritten, which would make certwatcher reload for nothing.
		if onDisk, err := os.ReadFile(filepath.Join(r.certDir, f.name)); err == nil && bytes.Equal(onDisk, f.data) {
			continue
		}
		if err := writeFileAtomic(r.certDir, f.name, f.data, f.perm); err != nil {
			return fmt.Errorf("writing %s: %w", f.name, err)
		}
		changed = true
	}
	if changed {
		r.log.Info("wrote serving certificate to cert dir", "dir", r.certDir,
			"servingSerial", fmt.Sprintf("%x", leaf.cert.SerialNumber), "notAfter", leaf.cert.NotAfter)
	}
	r.readyOnce.Do(func() { close(r.ready) })
	return nil
}
