package serve

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/runtimeguard/runtimeguard/certs"
)

func notAfter(t *testing.T, certPEM []byte) time.Time {
	t.Helper()
	b, _ := pem.Decode(certPEM)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.NotAfter
}

// The expiry gauge follows the certificate the server serves: the one on disk at start, then
// the one certwatcher reloads after a rotation, and GetCertificate serves that same one.
func TestServingCertificateExpiryGaugeFollowsReloads(t *testing.T) {
	dir := t.TempDir()
	dev, err := certs.WriteDevCerts(dir, []string{"127.0.0.1"}, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s := newServingCert(reg, logr.Discard())
	if got := testutil.ToFloat64(s.expiry); got != 0 {
		t.Fatalf("gauge before any load = %v, want 0", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := &tls.Config{}
	s.tlsOption(ctx, dir)(cfg)
	if cfg.GetCertificate == nil {
		t.Fatal("tlsOption left GetCertificate unset with valid files")
	}
	want := notAfter(t, dev.CertPEM)
	if got := testutil.ToFloat64(s.expiry); got != float64(want.Unix()) {
		t.Fatalf("gauge = %v, want NotAfter %v (%d)", got, want, want.Unix())
	}
	if n, err := testutil.GatherAndCount(reg, "runtimeguard_serving_certificate_expiry_timestamp_seconds"); err != nil || n != 1 {
		t.Fatalf("registered series: %d, %v; want 1", n, err)
	}

	if err := dev.Rotate(dir, []string{"127.0.0.1"}, 5*time.Hour); err != nil {
		t.Fatal(err)
	}
	renewed := notAfter(t, dev.CertPEM)
	if renewed.Equal(want) {
		t.Fatal("the rotated certificate has the same NotAfter; the test would prove nothing")
	}
	deadline := time.Now().Add(20 * time.Second) // fsnotify, or certwatcher's 10 s poll
	for testutil.ToFloat64(s.expiry) != float64(renewed.Unix()) {
		if time.Now().After(deadline) {
			t.Fatalf("gauge = %v after the rotation, want %d", testutil.ToFloat64(s.expiry), renewed.Unix())
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, not waiting for an event
	}
	served, err := cfg.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if leaf, err := x509.ParseCertificate(served.Certificate[0]); err != nil || !leaf.NotAfter.Equal(renewed) {
		t.Errorf("served certificate NotAfter %v (%v), want the renewed %v", leaf.NotAfter, err, renewed)
	}
}

func TestServingCertificateMissingFilesLeaveTheServerToReportThem(t *testing.T) {
	s := newServingCert(prometheus.NewRegistry(), logr.Discard())
	cfg := &tls.Config{}
	s.tlsOption(context.Background(), filepath.Join(t.TempDir(), "absent"))(cfg)
	if cfg.GetCertificate != nil {
		t.Error("GetCertificate set without a certificate; the server would serve nothing instead of failing")
	}
	if s.trustedBy(nil) {
		t.Error("trustedBy is true before any certificate was loaded")
	}
}

func TestServingCertificateTrustedOnlyByItsCA(t *testing.T) {
	dir := t.TempDir()
	dev, err := certs.WriteDevCerts(dir, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := certs.WriteDevCerts(t.TempDir(), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s := newServingCert(prometheus.NewRegistry(), logr.Discard())
	pair, err := tls.X509KeyPair(dev.CertPEM, dev.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.set(pair); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		behaviour string
		bundle    []byte
		want      bool
	}{
		{"its own CA trusts it", dev.CAPEM, true},
		{"a bundle holding another CA and its own trusts it", append(append([]byte{}, other.CAPEM...), dev.CAPEM...), true},
		{"another CA does not", other.CAPEM, false},
		{"an empty bundle (system roots) does not trust a private CA", nil, false},
		{"garbage does not", []byte("not PEM"), false},
	} {
		if got := s.trustedBy(tc.bundle); got != tc.want {
			t.Errorf("%s: trustedBy = %v, want %v", tc.behaviour, got, tc.want)
		}
	}
}
