package certs

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// DevCerts is a development CA and the serving certificate it signed, as
// written by WriteDevCerts. It is for `make dev-certs`, the e2e suite and
// benchmarks; production uses cert-manager or the self-managed mode (Setup).
type DevCerts struct {
	// CAPEM is the CA certificate: register it as the caBundle of the
	// webhook configurations, or trust it in a test client.
	CAPEM []byte
	// CertPEM and KeyPEM are the current serving certificate and its key.
	CertPEM []byte
	KeyPEM  []byte

	ca *keyPair
}

// devCAValidity is how long the dev CA lives for serving certificates of the
// given validity: ten times longer (at least a day), so that Rotate can issue
// several successive certificates without the CA registered in the API
// server ever having to change.
func devCAValidity(validity time.Duration) time.Duration {
	return max(10*validity, 24*time.Hour)
}

// WriteDevCerts generates a fresh CA and a serving certificate signed by it
// for hosts (DNS names or IP addresses, e.g. "localhost", "127.0.0.1",
// "runtimeguard.runtimeguard-system.svc"), valid for validity, and writes
// ca.crt, ca.key, tls.crt and tls.key into dir (created if missing). Keys are
// written with mode 0600, certificates 0644; each file is replaced
// atomically. ca.key is written too so that another process (e.g. an e2e
// test that did not create the certs) can LoadDevCerts and Rotate.
func WriteDevCerts(dir string, hosts []string, validity time.Duration) (*DevCerts, error) {
	if err := checkDevArgs(hosts, validity); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ca, err := newCA("runtimeguard-dev-ca", devCAValidity(validity), time.Now())
	if err != nil {
		return nil, err
	}
	d := &DevCerts{CAPEM: ca.certPEM, ca: ca}
	if err := writeFileAtomic(dir, CACertFile, ca.certPEM, 0o644); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(dir, CAKeyFile, ca.keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := d.Rotate(dir, hosts, validity); err != nil {
		return nil, err
	}
	return d, nil
}

// LoadDevCerts reads a cert dir written by WriteDevCerts (including ca.key),
// so that a later process can Rotate the serving certificate under the same
// CA.
func LoadDevCerts(dir string) (*DevCerts, error) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil
		}
		return b
	}
	ca, err := parseKeyPair(read(CACertFile), read(CAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("loading dev CA from %s: %w", dir, err)
	}
	if !ca.cert.IsCA {
		return nil, fmt.Errorf("%s in %s is not a CA certificate", CACertFile, dir)
	}
	return &DevCerts{CAPEM: ca.certPEM, CertPEM: read(TLSCertFile), KeyPEM: read(TLSKeyFile), ca: ca}, nil
}

// Rotate issues a new serving certificate (new key, new serial) for hosts,
// signed by the same CA, and atomically replaces tls.key and tls.crt in dir.
// CAPEM is unchanged, so a caBundle registered from it stays valid: this is
// what the e2e test "serving certificate rotated on disk while requests flow"
// relies on. The key is written before the certificate; a reader that sees
// the new key with the old certificate gets a key mismatch and keeps its
// previous pair (controller-runtime's certwatcher does), and the second
// rename triggers a reload of the matching pair.
func (d *DevCerts) Rotate(dir string, hosts []string, validity time.Duration) error {
	if d == nil || d.ca == nil {
		return errors.New("DevCerts has no CA: create it with WriteDevCerts or LoadDevCerts")
	}
	if err := checkDevArgs(hosts, validity); err != nil {
		return err
	}
	serving, err := issueServing(d.ca, hosts, validity, time.Now())
	if err != nil {
		return err
	}
	if err := writeFileAtomic(dir, TLSKeyFile, serving.keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeFileAtomic(dir, TLSCertFile, serving.certPEM, 0o644); err != nil {
		return err
	}
	d.CertPEM, d.KeyPEM = serving.certPEM, serving.keyPEM
	return nil
}

// CertPool returns a pool trusting only the dev CA, for test clients.
func (d *DevCerts) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(d.CAPEM)
	return p
}

func checkDevArgs(hosts []string, validity time.Duration) error {
	if len(hosts) == 0 {
		return errors.New("at least one host is required")
	}
	for _, h := range hosts {
		if h == "" {
			return errors.New("empty host")
		}
	}
	if validity <= 0 {
		return fmt.Errorf("validity must be positive, got %s", validity)
	}
	return nil
}
