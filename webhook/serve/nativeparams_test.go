package serve

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/native"
)

func TestParamsKeeperFollowsTheView(t *testing.T) {
	view, err := cluster.LoadFiles(cluster.Options{}, "../testdata/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cs := fake.NewClientset()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{}, 2)
	for range 2 { // two replicas: one writes
		k := newParamsKeeper(DefaultNativeParamsOptions(), "runtimeguard", cs, view, logr.Discard())
		k.poll, k.debounce, k.resync = 10*time.Millisecond, 50*time.Millisecond, 200*time.Millisecond
		k.election.leaseDuration, k.election.renewDeadline, k.election.retryPeriod = 2*time.Second, time.Second, 50*time.Millisecond
		go func() { _ = k.Start(ctx); done <- struct{}{} }()
	}
	t.Cleanup(func() { cancel(); <-done; <-done })

	data := func() map[string]string {
		cm, err := cs.CoreV1().ConfigMaps("runtimeguard").Get(t.Context(), native.ParamsName, metav1.GetOptions{})
		if err != nil {
			return nil
		}
		return cm.Data
	}
	waitUntil(t, "the ConfigMap", func() bool { return data()["gvisor"] == "true" && data()["kata"] == "true" })

	// The only node running runsc goes: gvisor becomes unavailable.
	view.DeleteNode("sandbox-1")
	start := time.Now()
	waitUntil(t, "gvisor unavailable", func() bool { return data()["gvisor"] == "false" })
	t.Logf("followed the view in %s", time.Since(start).Round(time.Millisecond))
	if data()["kata"] != "true" {
		t.Errorf("kata %q, want it still available", data()["kata"])
	}

	// Deleted by hand: written again at the next resync.
	if err := cs.CoreV1().ConfigMaps("runtimeguard").Delete(t.Context(), native.ParamsName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the ConfigMap back", func() bool { return data()["gvisor"] == "false" })
}
