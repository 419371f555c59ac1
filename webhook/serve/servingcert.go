package serve

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
)

// servingCert is the certificate the webhook server actually serves. It owns the server's
// certwatcher (controller-runtime's server creates none when GetCertificate is set), so what
// it reports is what the TLS handshakes use, reloads included: the expiry gauge
// runtimeguard_serving_certificate_expiry_timestamp_seconds and, for the failure-policy keeper,
// the chain a caBundle must trust.
type servingCert struct {
	log    logr.Logger
	expiry prometheus.Gauge

	mu    sync.RWMutex
	chain []*x509.Certificate // leaf first; nil until the first load
}

func newServingCert(reg prometheus.Registerer, log logr.Logger) *servingCert {
	s := &servingCert{log: log, expiry: prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "runtimeguard_serving_certificate_expiry_timestamp_seconds",
		Help: "NotAfter of the serving certificate this replica serves, in seconds since the epoch (updated when the certificate files are reloaded).",
	})}
	reg.MustRegister(s.expiry)
	return s
}

// set records a certificate the watcher loaded.
func (s *servingCert) set(cert tls.Certificate) error {
	if len(cert.Certificate) == 0 {
		return errors.New("no certificate in tls.crt")
	}
	chain := make([]*x509.Certificate, 0, len(cert.Certificate))
	for i, der := range cert.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("certificate %d of tls.crt: %w", i, err)
		}
		chain = append(chain, c)
	}
	s.mu.Lock()
	s.chain = chain
	s.mu.Unlock()
	s.expiry.Set(float64(chain[0].NotAfter.Unix()))
	s.log.Info("serving certificate loaded", "serial", chain[0].SerialNumber.String(), "notAfter", chain[0].NotAfter)
	return nil
}

// trustedBy reports whether caBundle (PEM; empty means the system roots, as for the API
// server) verifies the served chain. It is false until a certificate is loaded.
func (s *servingCert) trustedBy(caBundle []byte) bool {
	s.mu.RLock()
	chain := s.chain
	s.mu.RUnlock()
	if len(chain) == 0 {
		return false
	}
	opts := x509.VerifyOptions{Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if len(caBundle) > 0 {
		opts.Roots = x509.NewCertPool()
		if !opts.Roots.AppendCertsFromPEM(caBundle) {
			return false
		}
	}
	for _, c := range chain[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := chain[0].Verify(opts)
	return err == nil
}

// tlsOption starts a certwatcher on certDir's tls.crt and tls.key when the webhook server
// starts (in self-signed mode the files only exist then) and serves through it. If the files
// cannot be read it leaves GetCertificate unset: the server then fails with the same error.
func (s *servingCert) tlsOption(ctx context.Context, certDir string) func(*tls.Config) {
	return func(cfg *tls.Config) {
		w, err := certwatcher.New(filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key"))
		if err != nil {
			s.log.Error(err, "cannot load the serving certificate", "dir", certDir)
			return
		}
		w.RegisterCallback(func(cert tls.Certificate) {
			if err := s.set(cert); err != nil {
				s.log.Error(err, "serving certificate loaded but not understood", "dir", certDir)
			}
		})
		go func() {
			if err := w.Start(ctx); err != nil {
				s.log.Error(err, "certificate watcher stopped", "dir", certDir)
			}
		}()
		cfg.GetCertificate = w.GetCertificate
	}
}
