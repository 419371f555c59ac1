package certs

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"time"
)

// Keys of the Secret. The Secret is the single source of truth: every
// replica derives its cert dir and the caBundle from it, and only writes it
// with an update conditional on the resourceVersion it read.
const (
	// SecretKeyCACert and SecretKeyCAKey are the active CA, which signs
	// the serving certificate.
	SecretKeyCACert = "ca.crt"
	SecretKeyCAKey  = "ca.key"
	// SecretKeyTLSCert and SecretKeyTLSKey are the serving certificate.
	SecretKeyTLSCert = "tls.crt"
	SecretKeyTLSKey  = "tls.key"
	// SecretKeyCABundle is every CA to trust: the active CA, a pending
	// next CA during a rollover, and older CAs until they expire. It is
	// what goes into the webhooks' caBundle and into the cert dir's ca.crt.
	SecretKeyCABundle = "ca-bundle.crt"
	// SecretKeyNextCACert and SecretKeyNextCAKey hold the CA that will
	// replace the active one, while it is being published in the caBundle.
	SecretKeyNextCACert = "next-ca.crt"
	SecretKeyNextCAKey  = "next-ca.key"

	// AnnotationRolloverStarted records (RFC 3339) when the next CA was
	// added to the bundle; it is promoted CARolloverDelay later at the
	// earliest.
	AnnotationRolloverStarted = "certs.runtimeguard.io/ca-rollover-started"
)

// managedKeys are the data keys plan owns; other keys in the Secret are left
// alone.
var managedKeys = []string{
	SecretKeyCACert, SecretKeyCAKey, SecretKeyTLSCert, SecretKeyTLSKey,
	SecretKeyCABundle, SecretKeyNextCACert, SecretKeyNextCAKey,
}

// planConfig is what plan needs from Options.
type planConfig struct {
	hosts          []string
	caName         string
	caValidity     time.Duration
	certValidity   time.Duration
	rolloverDelay  time.Duration
	resyncInterval time.Duration
}

// planInput is a snapshot of the world at one instant.
type planInput struct {
	now         time.Time
	data        map[string][]byte
	annotations map[string]string
	// published holds, per webhook entry of the managed configurations
	// that exist, the CAs in its caBundle. A pending CA is promoted only
	// when every entry trusts it.
	published [][]*x509.Certificate
}

// planResult is the desired Secret content and when to look again.
type planResult struct {
	data        map[string][]byte // complete desired data (unmanaged keys copied)
	annotations map[string]string // complete desired annotations
	changed     bool
	reasons     []string  // why it changed, for logs and events
	nextCheck   time.Time // the next instant at which plan would decide differently
}

// plan computes the desired Secret content. It is a pure function of its
// input (plus randomness for new keys), so all replicas looking at the same
// Secret agree on whether something is due; when several of them generate at
// once, the resourceVersion-conditional update lets exactly one win and the
// others re-plan from the winner's Secret, where nothing is due anymore.
//
// The states:
//
//   - No usable CA (empty Secret, corrupt data, CA expired or not yet
//     valid): generate a CA and a serving certificate at once. This is the
//     bootstrap and the emergency path. Still-valid CAs found in the old
//     bundle or in the webhooks' current caBundle are kept in the new bundle,
//     so replicas that still serve the previous certificate stay trusted
//     while they pick up the new one.
//   - CA due for renewal (less than a third of its life left) and no next
//     CA: generate the next CA and add it to the bundle only. Nothing is
//     signed by it yet, so no replica can serve a certificate the API
//     server does not trust.
//   - Next CA pending, in the bundle for at least CARolloverDelay, and
//     present in every webhook entry's caBundle: promote it to active and
//     issue a serving certificate from it. The old CA stays in the bundle
//     until it expires, so replicas still serving the previous certificate
//     remain trusted.
//   - Serving certificate missing, not signed by the active CA, missing a
//     host, or with less than a third of its life left: issue a new one from
//     the active CA (the caBundle already trusts it).
//
// The bundle is always: active CA, next CA, then the other still-valid CAs
// from the previous bundle; expired certificates are dropped.
func plan(in planInput, cfg planConfig) (*planResult, error) {
	now := in.now
	res := &planResult{data: map[string][]byte{}, annotations: map[string]string{}}
	for k, v := range in.data {
		res.data[k] = v
	}
	for k, v := range in.annotations {
		res.annotations[k] = v
	}

	validCA := func(kp *keyPair, err error) *keyPair {
		if err != nil || kp == nil || !kp.cert.IsCA || !validAt(kp.cert, now) {
			return nil
		}
		return kp
	}
	ca := validCA(parseKeyPair(in.data[SecretKeyCACert], in.data[SecretKeyCAKey]))
	next := validCA(parseKeyPair(in.data[SecretKeyNextCACert], in.data[SecretKeyNextCAKey]))
	serving, _ := parseKeyPair(in.data[SecretKeyTLSCert], in.data[SecretKeyTLSKey])
	oldBundle := parseCerts(in.data[SecretKeyCABundle])
	rolloverStarted, _ := time.Parse(time.RFC3339Nano, in.annotations[AnnotationRolloverStarted])

	var extra []*x509.Certificate // CAs to keep trusting besides active and next
	extra = append(extra, oldBundle...)

	switch {
	case ca == nil:
		if len(in.data[SecretKeyCACert]) == 0 {
			res.reasons = append(res.reasons, "bootstrap: no CA in the Secret")
		} else {
			res.reasons = append(res.reasons, "the CA in the Secret is unusable (expired, not yet valid, corrupt or not matching its key): generating a new one")
		}
		// Keep trusting whatever the webhooks trust now (still valid CAs
		// only), e.g. the CA of a Secret that was wiped by a re-apply.
		for _, entry := range in.published {
			extra = append(extra, entry...)
		}
		var err error
		if ca, err = newCA(cfg.caName, cfg.caValidity, now); err != nil {
			return nil, err
		}
		next, rolloverStarted, serving = nil, time.Time{}, nil
	default:
		if next == nil && len(in.data[SecretKeyNextCACert]) > 0 {
			res.reasons = append(res.reasons, "dropping an unusable next CA")
			rolloverStarted = time.Time{}
		}
		if next == nil && !now.Before(renewAt(ca.cert)) {
			var err error
			if next, err = newCA(cfg.caName, cfg.caValidity, now); err != nil {
				return nil, err
			}
			rolloverStarted = now
			res.reasons = append(res.reasons, fmt.Sprintf("CA rollover started: CA %q expires %s; new CA %q published in the bundle, not used for signing yet",
				ca.cert.Subject.CommonName, ca.cert.NotAfter.Format(time.RFC3339), next.cert.Subject.CommonName))
		}
		if next != nil && rolloverStarted.IsZero() {
			// Annotation lost: restart the delay rather than promote early.
			rolloverStarted = now
			res.reasons = append(res.reasons, "CA rollover start time missing: restarting the rollover delay")
		}
		if next != nil && !now.Before(rolloverStarted.Add(cfg.rolloverDelay)) && allTrust(in.published, next.cert) {
			res.reasons = append(res.reasons, fmt.Sprintf("CA rollover completed: %q is now active, %q stays trusted until it expires",
				next.cert.Subject.CommonName, ca.cert.Subject.CommonName))
			extra = append(extra, ca.cert)
			ca, next, rolloverStarted, serving = next, nil, time.Time{}, nil
		}
	}

	// Serving certificate.
	switch {
	case serving == nil:
		res.reasons = append(res.reasons, "issuing a serving certificate")
		serving = nil
	case verifyServing(serving.cert, []*x509.Certificate{ca.cert}, cfg.hosts, now) != nil:
		res.reasons = append(res.reasons, "the serving certificate does not verify against the active CA for all hosts: reissuing")
		serving = nil
	case !now.Before(renewAt(serving.cert)):
		res.reasons = append(res.reasons, fmt.Sprintf("serving certificate %x expires %s: renewing",
			serving.cert.SerialNumber, serving.cert.NotAfter.Format(time.RFC3339)))
		serving = nil
	}
	if serving == nil {
		var err error
		if serving, err = issueServing(ca, cfg.hosts, cfg.certValidity, now); err != nil {
			return nil, err
		}
	}

	// Bundle: active, next, then the rest, deduplicated, unexpired CAs only.
	bundle := []*x509.Certificate{ca.cert}
	if next != nil {
		bundle = append(bundle, next.cert)
	}
	for _, c := range extra {
		if c.IsCA && now.Before(c.NotAfter) && !containsCert(bundle, c) {
			bundle = append(bundle, c)
		}
	}

	set := func(k string, v []byte) {
		if v == nil {
			delete(res.data, k)
			return
		}
		res.data[k] = v
	}
	set(SecretKeyCACert, ca.certPEM)
	set(SecretKeyCAKey, ca.keyPEM)
	set(SecretKeyTLSCert, serving.certPEM)
	set(SecretKeyTLSKey, serving.keyPEM)
	set(SecretKeyCABundle, encodeCerts(bundle))
	if next != nil {
		set(SecretKeyNextCACert, next.certPEM)
		set(SecretKeyNextCAKey, next.keyPEM)
		res.annotations[AnnotationRolloverStarted] = rolloverStarted.UTC().Format(time.RFC3339Nano)
	} else {
		set(SecretKeyNextCACert, nil)
		set(SecretKeyNextCAKey, nil)
		delete(res.annotations, AnnotationRolloverStarted)
	}

	for _, k := range managedKeys {
		if !bytes.Equal(in.data[k], res.data[k]) || (in.data[k] == nil) != (res.data[k] == nil) {
			res.changed = true
		}
	}
	if in.annotations[AnnotationRolloverStarted] != res.annotations[AnnotationRolloverStarted] {
		res.changed = true
	}
	if res.changed && len(res.reasons) == 0 {
		// e.g. an expired CA pruned from the bundle
		res.reasons = append(res.reasons, "updating the CA bundle")
	}

	// Next instant at which the decision changes.
	next1 := now.Add(cfg.resyncInterval)
	earlier := func(t time.Time) {
		if t.After(now) && t.Before(next1) {
			next1 = t
		}
	}
	earlier(renewAt(serving.cert))
	if next == nil {
		earlier(renewAt(ca.cert))
	} else {
		earlier(rolloverStarted.Add(cfg.rolloverDelay))
	}
	for _, c := range bundle {
		earlier(c.NotAfter) // prune
	}
	res.nextCheck = next1
	return res, nil
}

// allTrust reports whether every webhook entry's caBundle contains c. With no
// entries at all (configurations absent) there is nobody to wait for.
func allTrust(published [][]*x509.Certificate, c *x509.Certificate) bool {
	for _, entry := range published {
		if !containsCert(entry, c) {
			return false
		}
	}
	return true
}

func containsCert(list []*x509.Certificate, c *x509.Certificate) bool {
	for _, x := range list {
		if x.Equal(c) {
			return true
		}
	}
	return false
}
