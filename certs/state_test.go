package certs

import (
	"bytes"
	"crypto/x509"
	"testing"
	"time"
)

var testCfg = planConfig{
	hosts:          []string{"rg.ns.svc", "rg", "rg.ns", "rg.ns.svc.cluster.local", "127.0.0.1"},
	caName:         "test-ca",
	caValidity:     3 * time.Hour,
	certValidity:   30 * time.Minute,
	rolloverDelay:  5 * time.Minute,
	resyncInterval: time.Hour,
}

// world is a Secret plus what the webhook configurations trust, advanced by
// plan step by step the way the rotator does.
type world struct {
	t           *testing.T
	now         time.Time
	data        map[string][]byte
	annotations map[string]string
	published   [][]*x509.Certificate
}

func (w *world) step() *planResult {
	w.t.Helper()
	res, err := plan(planInput{now: w.now, data: w.data, annotations: w.annotations, published: w.published}, testCfg)
	if err != nil {
		w.t.Fatal(err)
	}
	w.data, w.annotations = res.data, res.annotations
	return res
}

// publish copies the Secret's bundle into two webhook entries, as
// syncCABundles does.
func (w *world) publish() {
	b := parseCerts(w.data[SecretKeyCABundle])
	w.published = [][]*x509.Certificate{b, b}
}

func (w *world) ca() *x509.Certificate   { return mustParseCert(w.t, w.data[SecretKeyCACert]) }
func (w *world) leaf() *x509.Certificate { return mustParseCert(w.t, w.data[SecretKeyTLSCert]) }
func (w *world) bundle() []*x509.Certificate {
	return parseCerts(w.data[SecretKeyCABundle])
}

// checkInvariant: the served certificate verifies against what the webhooks
// trust (when published) and against the Secret's own bundle.
func (w *world) checkInvariant() {
	w.t.Helper()
	if err := verifyServing(w.leaf(), w.bundle(), testCfg.hosts, w.now); err != nil {
		w.t.Fatalf("at %s the serving certificate does not verify against the Secret's bundle: %v", w.now, err)
	}
	for i, entry := range w.published {
		if err := verifyServing(w.leaf(), entry, testCfg.hosts, w.now); err != nil {
			w.t.Fatalf("at %s the serving certificate does not verify against webhook entry %d: %v", w.now, i, err)
		}
	}
}

func newWorld(t *testing.T) *world {
	return &world{t: t, now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func TestPlanBootstrapAndIdempotence(t *testing.T) {
	w := newWorld(t)
	res := w.step()
	if !res.changed || len(w.data[SecretKeyCAKey]) == 0 || len(w.data[SecretKeyTLSKey]) == 0 {
		t.Fatalf("bootstrap: changed=%v keys=%v", res.changed, len(w.data))
	}
	if b := w.bundle(); len(b) != 1 || !b[0].Equal(w.ca()) {
		t.Fatalf("bundle after bootstrap has %d certs, want only the CA", len(b))
	}
	w.publish()
	w.checkInvariant()
	leaf := w.leaf()
	if got := leaf.NotAfter.Sub(w.now); got != testCfg.certValidity {
		t.Errorf("serving validity %s, want %s", got, testCfg.certValidity)
	}
	// Renewal is due when a third of the lifetime (incl. backdating) is left.
	if want := leaf.NotAfter.Add(-(testCfg.certValidity + backdate(testCfg.certValidity)) / 3); !res.nextCheck.Equal(want) {
		t.Errorf("nextCheck = %s, want serving renewal at %s", res.nextCheck, want)
	}

	before := w.data
	w.now = w.now.Add(time.Minute)
	if res := w.step(); res.changed {
		t.Fatalf("second plan on an up-to-date Secret changed it: %v", res.reasons)
	}
	if !bytes.Equal(before[SecretKeyTLSCert], w.data[SecretKeyTLSCert]) {
		t.Fatal("certificate changed although nothing was due")
	}
}

func TestPlanServingRenewal(t *testing.T) {
	w := newWorld(t)
	w.step()
	w.publish()
	ca, leaf := w.ca(), w.leaf()

	w.now = renewAt(leaf).Add(-time.Second)
	if res := w.step(); res.changed {
		t.Fatalf("renewed a second before the renewal point: %v", res.reasons)
	}
	w.now = renewAt(leaf)
	if res := w.step(); !res.changed {
		t.Fatal("not renewed at the renewal point")
	}
	if w.leaf().SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Fatal("serial unchanged after renewal")
	}
	if !w.ca().Equal(ca) || len(w.bundle()) != 1 {
		t.Fatal("serving renewal touched the CA or bundle")
	}
	w.checkInvariant()
}

func TestPlanReissuesForNewHosts(t *testing.T) {
	w := newWorld(t)
	w.step()
	old := w.leaf()
	cfg := testCfg
	cfg.hosts = append([]string{"renamed.ns.svc"}, cfg.hosts...)
	res, err := plan(planInput{now: w.now, data: w.data}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	leaf := mustParseCert(t, res.data[SecretKeyTLSCert])
	if !res.changed || leaf.Equal(old) || leaf.VerifyHostname("renamed.ns.svc") != nil {
		t.Fatal("certificate not reissued for the new service name")
	}
}

// TestPlanCARollover walks a CA through its rollover and checks, at every
// step, that the certificate a replica would serve is trusted by the
// webhooks' caBundle as it stands at that moment, including the moment right
// after the Secret changed and before any caBundle update.
func TestPlanCARollover(t *testing.T) {
	w := newWorld(t)
	w.step()
	w.publish()
	oldCA := w.ca()

	// Walk to the CA renewal point, renewing serving certificates on the way.
	for w.now.Before(renewAt(oldCA)) {
		w.now = w.now.Add(time.Minute)
		w.step()
		w.checkInvariant() // caBundle not yet re-published: still fine
		w.publish()
	}
	if w.data[SecretKeyNextCACert] == nil {
		t.Fatal("no next CA at the CA renewal point")
	}
	next := mustParseCert(t, w.data[SecretKeyNextCACert])
	if !w.ca().Equal(oldCA) {
		t.Fatal("active CA replaced at once instead of publishing the next CA first")
	}
	if err := verifyServing(w.leaf(), []*x509.Certificate{oldCA}, testCfg.hosts, w.now); err != nil {
		t.Fatalf("serving certificate no longer signed by the old CA during the delay: %v", err)
	}
	if b := w.bundle(); len(b) != 2 || !containsCert(b, next) || !containsCert(b, oldCA) {
		t.Fatalf("bundle during rollover has %d certs, want old and next CA", len(b))
	}
	started := w.now

	// Before the delay: no promotion even though published.
	w.now = started.Add(testCfg.rolloverDelay - time.Second)
	w.step()
	w.publish()
	if !w.ca().Equal(oldCA) {
		t.Fatal("promoted before the rollover delay")
	}

	// After the delay, but one webhook entry does not trust the next CA yet
	// (e.g. the caBundle update failed): no promotion.
	w.now = started.Add(testCfg.rolloverDelay)
	w.published[1] = []*x509.Certificate{oldCA}
	w.step()
	if !w.ca().Equal(oldCA) {
		t.Fatal("promoted although a webhook entry does not trust the next CA")
	}

	// Everyone trusts it: promote.
	w.publish()
	res := w.step()
	if !res.changed || !w.ca().Equal(next) {
		t.Fatalf("not promoted: %v", res.reasons)
	}
	if w.data[SecretKeyNextCACert] != nil || w.annotations[AnnotationRolloverStarted] != "" {
		t.Fatal("next CA / rollover annotation left behind after promotion")
	}
	if err := verifyServing(w.leaf(), []*x509.Certificate{next}, testCfg.hosts, w.now); err != nil {
		t.Fatalf("serving certificate not signed by the new CA after promotion: %v", err)
	}
	// The webhooks (not yet re-published) trust it already: that is the point.
	w.checkInvariant()
	if !containsCert(w.bundle(), oldCA) {
		t.Fatal("old CA dropped from the bundle at promotion; replicas still serving its certificate would fail")
	}
	w.publish()

	// The old CA is pruned once expired.
	w.now = oldCA.NotAfter
	w.step()
	if containsCert(w.bundle(), oldCA) || len(w.bundle()) != 1 {
		t.Fatalf("expired old CA still in the bundle (%d certs)", len(w.bundle()))
	}
	w.checkInvariant()
}

func TestPlanRolloverAnnotationLost(t *testing.T) {
	w := newWorld(t)
	w.step()
	w.now = renewAt(w.ca())
	w.step()
	w.publish()
	delete(w.annotations, AnnotationRolloverStarted)
	w.now = w.now.Add(testCfg.rolloverDelay)
	w.step()
	if w.data[SecretKeyNextCACert] == nil || w.annotations[AnnotationRolloverStarted] == "" {
		t.Fatal("lost annotation: the delay must restart, not promote or drop the next CA")
	}
}

// TestPlanEmergencyKeepsTrustedCAs: the Secret was wiped (or its CA
// expired) while webhooks still trust a CA whose certificates replicas serve.
func TestPlanEmergencyKeepsTrustedCAs(t *testing.T) {
	w := newWorld(t)
	w.step()
	w.publish()
	prevCA := w.ca()

	// Wiped Secret, webhooks still trusting prevCA.
	w.data, w.annotations = map[string][]byte{"unrelated": []byte("kept")}, nil
	res := w.step()
	if !res.changed || w.ca().Equal(prevCA) {
		t.Fatal("no new CA generated for a wiped Secret")
	}
	if !containsCert(w.bundle(), prevCA) || !containsCert(w.bundle(), w.ca()) {
		t.Fatal("new bundle must contain the new CA and the still-valid CA the webhooks trusted")
	}
	if string(w.data["unrelated"]) != "kept" {
		t.Fatal("unmanaged Secret key dropped")
	}

	// Expired CA: replaced, and the expired one not carried.
	w2 := newWorld(t)
	w2.step()
	w2.publish()
	expired := w2.ca()
	w2.now = expired.NotAfter.Add(time.Minute)
	w2.step()
	if w2.ca().Equal(expired) || containsCert(w2.bundle(), expired) {
		t.Fatal("expired CA kept")
	}
	w2.published = nil
	w2.checkInvariant()

	// Corrupt key: replaced.
	w3 := newWorld(t)
	w3.step()
	w3.data[SecretKeyCAKey] = w3.data[SecretKeyTLSKey] // key of another cert
	w3.step()
	if _, err := parseKeyPair(w3.data[SecretKeyCACert], w3.data[SecretKeyCAKey]); err != nil {
		t.Fatalf("CA with mismatched key not replaced: %v", err)
	}
	w3.checkInvariant()
}
