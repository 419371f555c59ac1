package serve

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/runtimeguard/runtimeguard/webhook/audit"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

// auditReplica is one serve replica's audit runner over a shared fake API server.
func auditReplica(t *testing.T, cs *fake.Clientset, reports *dynamicfake.FakeDynamicClient, view *cluster.View) *auditRunner {
	t.Helper()
	o := DefaultOptions()
	o.Namespace = "runtimeguard"
	set, err := o.LoadPolicies()
	if err != nil {
		t.Fatal(err)
	}
	gate := &policyGate{opts: &o, view: view}
	if err := gate.apply(t.Context(), set); err != nil {
		t.Fatal(err)
	}
	r := newAuditRunner(AuditOptions{Interval: time.Hour, PolicyReports: true, LeaseName: "runtimeguard-audit"}, "runtimeguard", cs,
		&audit.ReportWriter{Client: reports}, gate, view, prometheus.NewPedanticRegistry(), logr.Discard())
	r.poll, r.debounce = 10*time.Millisecond, 100*time.Millisecond
	r.election.leaseDuration, r.election.renewDeadline, r.election.retryPeriod = 2*time.Second, time.Second, 50*time.Millisecond
	return r
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAuditRunsOnOneReplicaAtStartAndAgainAfterANamespaceLabelChange(t *testing.T) {
	view, err := cluster.LoadFiles(cluster.Options{}, "../testdata/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// tenant-a is untrusted: its Pod without class is a violation.
	cs := fake.NewClientset(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "tenant-a", Name: "legacy", UID: "u1"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}},
	})
	reports := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{audit.PolicyReportResource: "PolicyReportList"})
	first, second := auditReplica(t, cs, reports, view), auditReplica(t, cs, reports, view)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{}, 2)
	for _, r := range []*auditRunner{first, second} {
		go func() { _ = r.Start(ctx); done <- struct{}{} }()
	}
	t.Cleanup(func() { cancel(); <-done; <-done })

	runs := func(r *auditRunner) float64 { return testutil.ToFloat64(r.metrics.runs.WithLabelValues("complete")) }
	waitUntil(t, "the first audit", func() bool { return runs(first)+runs(second) >= 1 })
	leader, follower := first, second
	if runs(second) > 0 {
		leader, follower = second, first
	}
	if got := testutil.ToFloat64(leader.metrics.violations.WithLabelValues("tenant-a", "missing-class")); got != 1 {
		t.Errorf("violations{tenant-a,missing-class} = %v, want 1", got)
	}
	if testutil.ToFloat64(leader.metrics.leader) != 1 || testutil.ToFloat64(follower.metrics.leader) != 0 {
		t.Error("runtimeguard_audit_leader is not 1 on the leader alone")
	}
	if _, err := reports.Resource(audit.PolicyReportResource).Namespace("tenant-a").Get(ctx, audit.ReportName, metav1.GetOptions{}); err != nil {
		t.Fatalf("no PolicyReport in tenant-a: %v", err)
	}

	// Nothing changed: no second audit before the (hour-long) period.
	time.Sleep(5 * leader.debounce)
	if runs(leader) != 1 || runs(follower) != 0 {
		t.Fatalf("audits: leader %v, follower %v; want 1 and 0 with nothing changed", runs(leader), runs(follower))
	}

	// tenant-a loses its tenancy label: the audit re-runs after the debounce, and the Pod
	// complies now.
	view.UpsertNamespace(cluster.Namespace{Name: "tenant-a"})
	waitUntil(t, "the audit after the label change", func() bool { return runs(leader) == 2 })
	if n := testutil.CollectAndCount(leader.metrics.violations); n != 0 {
		t.Errorf("%d violation series left after the namespace stopped requiring a class", n)
	}
	if _, err := reports.Resource(audit.PolicyReportResource).Namespace("tenant-a").Get(ctx, audit.ReportName, metav1.GetOptions{}); err == nil {
		t.Error("tenant-a's PolicyReport survived its last violation")
	}
	if runs(follower) != 0 {
		t.Errorf("the follower audited %v times", runs(follower))
	}
	lease, err := cs.CoordinationV1().Leases("runtimeguard").Get(ctx, "runtimeguard-audit", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != leader.election.identity {
		t.Errorf("lease %v (%v), want held by %s", lease, err, leader.election.identity)
	}
}
