package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// File names inside a cert dir. tls.crt/tls.key are what controller-runtime's
// webhook server (and its certwatcher) read by default.
const (
	CACertFile  = "ca.crt"
	CAKeyFile   = "ca.key"
	TLSCertFile = "tls.crt"
	TLSKeyFile  = "tls.key"
)

// maxBackdate caps how far NotBefore is moved into the past. Backdating
// tolerates clocks (API servers, other replicas) that run slightly behind
// ours; an hour is what most Kubernetes tooling uses.
const maxBackdate = time.Hour

// keyPair is a parsed certificate with its private key and their PEM forms.
type keyPair struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
	keyPEM  []byte
}

// backdate returns how far before "now" a certificate of the given validity
// starts: a tenth of the validity, at most maxBackdate. Proportional so that
// the very short validities used in tests still renew on schedule (renewal is
// computed from NotBefore..NotAfter).
func backdate(validity time.Duration) time.Duration {
	return min(validity/10, maxBackdate)
}

// renewAt is the instant after which a certificate counts as due for renewal:
// when less than a third of its lifetime remains. A third leaves the rest of
// the lifetime for retries if the API server or the Secret is unavailable for
// a while, and is the rule cert-manager uses by default too.
func renewAt(c *x509.Certificate) time.Time {
	return c.NotAfter.Add(-c.NotAfter.Sub(c.NotBefore) / 3)
}

// newSerial returns a random positive 127-bit serial number: RFC 5280 wants
// serials unique per issuer, and random ones let tests (and humans) tell
// renewed certificates apart. cert-controller uses a constant serial.
func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	return n.Add(n, big.NewInt(1)), nil
}

func newKey() (*ecdsa.PrivateKey, error) {
	// P-256: universally supported by Go's TLS stack and the API server, and
	// fast to generate, which matters for tests that renew every few seconds.
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// newCA creates a self-signed CA. The common name carries the creation time so
// that two generations of the CA are distinguishable in a caBundle during a
// rollover (the same convention as kube's self-signed "<name>@<unix>" certs).
func newCA(name string, validity time.Duration, now time.Time) (*keyPair, error) {
	key, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("generating CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("generating serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: fmt.Sprintf("%s@%d", name, now.Unix()), Organization: []string{"runtimeguard"}},
		NotBefore:             now.Add(-backdate(validity)),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// The CA only ever signs leaf certificates.
		MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("creating CA certificate: %w", err)
	}
	return newKeyPair(der, key)
}

// issueServing signs a server certificate for hosts (DNS names or IP
// addresses) with ca. NotAfter is clamped to the CA's NotAfter because a leaf
// that outlives its issuer fails verification anyway, and the renewal
// schedule must be computed from the real end of validity.
func issueServing(ca *keyPair, hosts []string, validity time.Duration, now time.Time) (*keyPair, error) {
	if len(hosts) == 0 {
		return nil, errors.New("no hosts for the serving certificate")
	}
	key, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("generating serving key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("generating serial: %w", err)
	}
	notBefore := now.Add(-backdate(validity))
	if notBefore.Before(ca.cert.NotBefore) {
		notBefore = ca.cert.NotBefore
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	if !notAfter.After(now) {
		return nil, fmt.Errorf("CA %q expired at %s", ca.cert.Subject.CommonName, ca.cert.NotAfter.Format(time.RFC3339))
	}
	dnsNames, ips := splitHosts(hosts)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hosts[0]},
		DNSNames:     dnsNames,
		IPAddresses:  ips,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		// ECDSA keys sign the handshake; there is no key encipherment.
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("signing serving certificate: %w", err)
	}
	return newKeyPair(der, key)
}

// splitHosts sorts hosts into DNS names and IP addresses: "127.0.0.1" must be
// an IP SAN, since TLS clients match IP literals only against IP SANs.
func splitHosts(hosts []string) (dnsNames []string, ips []net.IP) {
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			dnsNames = append(dnsNames, h)
		}
	}
	return dnsNames, ips
}

func newKeyPair(der []byte, key crypto.Signer) (*keyPair, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding key: %w", err)
	}
	return &keyPair{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// parseKeyPair parses a PEM certificate and its PEM key and checks that they
// belong together (tls.X509KeyPair compares the public keys).
func parseKeyPair(certPEM, keyPEM []byte) (*keyPair, error) {
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return nil, errors.New("missing certificate or key")
	}
	tc, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(tc.Certificate[0])
	if err != nil {
		return nil, err
	}
	signer, ok := tc.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("private key cannot sign")
	}
	return &keyPair{cert: cert, key: signer, certPEM: certPEM, keyPEM: keyPEM}, nil
}

// parseCerts returns every CERTIFICATE block in data that parses; anything
// else is skipped, so a caBundle edited by hand cannot wedge the controller.
func parseCerts(data []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for len(data) > 0 {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			out = append(out, c)
		}
	}
	return out
}

func encodeCerts(certs []*x509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return buf.Bytes()
}

// verifyServing checks that leaf chains to one of roots, is a server
// certificate, and is valid for every host at time now.
func verifyServing(leaf *x509.Certificate, roots []*x509.Certificate, hosts []string, now time.Time) error {
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	for _, h := range hosts {
		if _, err := leaf.Verify(x509.VerifyOptions{
			DNSName:     h, // VerifyHostname treats IP literals as IP SANs.
			Roots:       pool,
			CurrentTime: now,
			KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}); err != nil {
			return err
		}
	}
	return nil
}

// validAt reports whether now lies within the certificate's validity.
func validAt(c *x509.Certificate, now time.Time) bool {
	return !now.Before(c.NotBefore) && now.Before(c.NotAfter)
}

// writeFileAtomic replaces dir/name with data so that a concurrent reader
// (the webhook server's certwatcher) sees either the old or the new file,
// never a truncated one: write a temp file in the same directory, fsync, and
// rename over the target.
func writeFileAtomic(dir, name string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if tmp != "" {
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		_ = f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	tmp = ""
	// Persist the rename itself; best effort, some filesystems refuse it.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
