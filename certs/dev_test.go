package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
)

var devHosts = []string{"localhost", "127.0.0.1", "runtimeguard.runtimeguard-system.svc"}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustParseCert(t *testing.T, pemBytes []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		t.Fatalf("no PEM block in %q", pemBytes)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// verifyForHosts checks the leaf against exactly the CA file on disk.
func verifyForHosts(t *testing.T, leafPEM, caPEM []byte, hosts []string) {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.crt has no certificate")
	}
	leaf := mustParseCert(t, leafPEM)
	for _, h := range hosts {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: h, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("certificate does not verify for %q: %v", h, err)
		}
	}
}

func checkMode(t *testing.T, dir, name string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s mode = %o, want %o", name, got, want)
	}
}

func TestWriteDevCerts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs") // must be created
	d, err := WriteDevCerts(dir, devHosts, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := readFile(t, dir, CACertFile)
	certPEM := readFile(t, dir, TLSCertFile)
	if !bytes.Equal(caPEM, d.CAPEM) || !bytes.Equal(certPEM, d.CertPEM) || !bytes.Equal(readFile(t, dir, TLSKeyFile), d.KeyPEM) {
		t.Fatal("files on disk differ from the returned DevCerts")
	}
	verifyForHosts(t, certPEM, caPEM, devHosts)

	leaf := mustParseCert(t, certPEM)
	if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("IP SANs = %v, want [127.0.0.1]", leaf.IPAddresses)
	}
	for _, n := range leaf.DNSNames {
		if net.ParseIP(n) != nil {
			t.Errorf("IP %q ended up as a DNS SAN", n)
		}
	}
	if got := leaf.NotAfter.Sub(time.Now()); got > time.Hour || got < 59*time.Minute {
		t.Errorf("serving certificate valid for %s more, want ~1h", got)
	}
	if ca := mustParseCert(t, caPEM); !ca.IsCA || ca.NotAfter.Before(leaf.NotAfter) {
		t.Errorf("CA IsCA=%v NotAfter=%s, leaf NotAfter=%s", ca.IsCA, ca.NotAfter, leaf.NotAfter)
	}
	if _, err := tls.X509KeyPair(certPEM, readFile(t, dir, TLSKeyFile)); err != nil {
		t.Errorf("tls.crt/tls.key do not match: %v", err)
	}
	checkMode(t, dir, TLSKeyFile, 0o600)
	checkMode(t, dir, CAKeyFile, 0o600)
	checkMode(t, dir, TLSCertFile, 0o644)

	// No temp files left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		names := []string{}
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("dir holds %v, want exactly ca.crt ca.key tls.crt tls.key", names)
	}
}

func TestDevCertsRotateKeepsCA(t *testing.T) {
	dir := t.TempDir()
	d, err := WriteDevCerts(dir, devHosts, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caBefore := readFile(t, dir, CACertFile)
	oldCert, oldKey := d.CertPEM, d.KeyPEM

	if err := d.Rotate(dir, devHosts, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	newCert := readFile(t, dir, TLSCertFile)
	if bytes.Equal(newCert, oldCert) || bytes.Equal(readFile(t, dir, TLSKeyFile), oldKey) {
		t.Fatal("Rotate did not replace the certificate and key")
	}
	if !bytes.Equal(newCert, d.CertPEM) {
		t.Fatal("DevCerts.CertPEM not updated")
	}
	if mustParseCert(t, newCert).SerialNumber.Cmp(mustParseCert(t, oldCert).SerialNumber) == 0 {
		t.Error("rotated certificate has the same serial")
	}
	if !bytes.Equal(readFile(t, dir, CACertFile), caBefore) || !bytes.Equal(d.CAPEM, caBefore) {
		t.Fatal("Rotate changed the CA")
	}
	verifyForHosts(t, newCert, caBefore, devHosts)
	checkMode(t, dir, TLSKeyFile, 0o600)

	// Another process: load from disk and rotate again under the same CA.
	loaded, err := LoadDevCerts(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := loaded.Rotate(dir, []string{"other.example"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	verifyForHosts(t, readFile(t, dir, TLSCertFile), caBefore, []string{"other.example"})

	// A certificate from an unrelated CA must not verify: the check above
	// is not vacuous.
	other, err := WriteDevCerts(t.TempDir(), devHosts, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caBefore)
	if _, err := mustParseCert(t, other.CertPEM).Verify(x509.VerifyOptions{DNSName: "localhost", Roots: pool}); err == nil {
		t.Error("certificate of another dev CA verified against ours")
	}
}

func TestDevCertsErrors(t *testing.T) {
	if _, err := WriteDevCerts(t.TempDir(), nil, time.Hour); err == nil {
		t.Error("no hosts: want error")
	}
	if _, err := WriteDevCerts(t.TempDir(), devHosts, 0); err == nil {
		t.Error("zero validity: want error")
	}
	if err := (&DevCerts{}).Rotate(t.TempDir(), devHosts, time.Hour); err == nil {
		t.Error("Rotate without CA: want error")
	}
	if _, err := LoadDevCerts(t.TempDir()); err == nil {
		t.Error("LoadDevCerts of an empty dir: want error")
	}
}

// TestDevCertsTLSHandshake serves the files the way the webhook server does
// (certwatcher), rotates them underneath, and checks that a client trusting
// only ca.crt completes handshakes before and after, seeing the new
// certificate within certwatcher's reload time.
func TestDevCertsTLSHandshake(t *testing.T) {
	dir := t.TempDir()
	d, err := WriteDevCerts(dir, devHosts, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveCertDir(t, dir)

	clientCfg := &tls.Config{RootCAs: d.CertPool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}
	first, err := handshake(addr, clientCfg)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if !first.Equal(mustParseCert(t, d.CertPEM)) {
		t.Fatal("server presented a different certificate than tls.crt")
	}
	// By IP too (IP SAN).
	if _, err := handshake(addr, &tls.Config{RootCAs: d.CertPool(), ServerName: "127.0.0.1"}); err != nil {
		t.Errorf("handshake by IP: %v", err)
	}
	// A client that trusts another CA must fail.
	other, err := WriteDevCerts(t.TempDir(), devHosts, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := handshake(addr, &tls.Config{RootCAs: other.CertPool(), ServerName: "localhost"}); err == nil {
		t.Fatal("handshake succeeded with a client trusting a different CA")
	}

	start := time.Now()
	if err := d.Rotate(dir, devHosts, time.Hour); err != nil {
		t.Fatal(err)
	}
	want := mustParseCert(t, d.CertPEM)
	deadline := time.Now().Add(15 * time.Second) // certwatcher: fsnotify, else a 10s poll
	for {
		got, err := handshake(addr, clientCfg)
		if err != nil {
			t.Fatalf("handshake during rotation: %v", err)
		}
		if got.Equal(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server still presents serial %x 15s after Rotate, want %x", got.SerialNumber, want.SerialNumber)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("rotated certificate served %s after Rotate", time.Since(start).Round(time.Millisecond))
}

// serveCertDir runs a TLS listener on 127.0.0.1 whose certificate comes from
// dir through certwatcher, like controller-runtime's webhook server.
func serveCertDir(t *testing.T, dir string) string {
	t.Helper()
	cw, err := certwatcher.New(filepath.Join(dir, TLSCertFile), filepath.Join(dir, TLSKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = cw.Start(ctx) }()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: cw.GetCertificate, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = c.(*tls.Conn).Handshake()
				_ = c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// handshake dials addr and returns the verified leaf certificate.
func handshake(addr string, cfg *tls.Config) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}
