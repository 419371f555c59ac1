package cluster

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/runtimeguard/runtimeguard/e2e/apitest"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Watch against a real kube-apiserver, with the cache options serve uses (the caches store the
// view's records, not API objects): the view reports synced only once it holds every Node and
// Namespace that existed at start, and follows updates and deletes afterwards.
func TestWatchAgainstKubeAPIServer(t *testing.T) {
	cfg, c := apitest.Start(t)
	ctx := t.Context()

	const nodes, namespaces = 200, 200
	if err := c.Create(ctx, &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "gvisor"}, Handler: "runsc"}); err != nil {
		t.Fatal(err)
	}
	for i := range nodes {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%03d", i),
			Labels: map[string]string{"kubernetes.io/os": "linux", "pool": []string{"sandbox", "general"}[min(i%10, 1)]}}}
		if err := c.Create(ctx, n); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 { // every tenth runs gVisor and says so
			ready(t, c, n, "runc", "runsc")
		}
	}
	for i := range namespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("tenant-%03d", i), Labels: map[string]string{"team": "a"}}}
		if err := c.Create(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}

	opts := CacheOptions()
	opts.Scheme = c.Scheme()
	informers, err := cache.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	v := NewView(Options{})
	if err := Watch(ctx, informers, v); err != nil {
		t.Fatal(err)
	}
	go func() { _ = informers.Start(ctx) }()
	waitFor(t, "the view to sync", v.Synced)
	// No waiting from here on: synced means complete.
	if got := v.Snapshot().Nodes; got != nodes {
		t.Errorf("synced view holds %d Nodes, want %d", got, nodes)
	}
	if a := v.Snapshot().Classes["gvisor"].Availability; !a.Available || a.Counts.ByStatus != nodes/10 {
		t.Errorf("gvisor availability when synced = %+v, want available on %d nodes by status", a, nodes/10)
	}
	for i := range namespaces {
		name := fmt.Sprintf("tenant-%03d", i)
		ns, found, err := v.Namespace(ctx, name)
		want := &Namespace{Name: name, Labels: map[string]string{"team": "a", corev1.LabelMetadataName: name}}
		if err != nil || !found || !reflect.DeepEqual(ns, want) {
			t.Fatalf("synced view: Namespace(%s) = %+v, %v, %v; want %+v", name, ns, found, err, want)
		}
	}

	// Updates and deletes reach the view through the records.
	n := &corev1.Node{}
	if err := c.Get(ctx, client.ObjectKey{Name: "node-001"}, n); err != nil {
		t.Fatal(err)
	}
	ready(t, c, n, "runsc")
	waitFor(t, "the updated Node to run gVisor", func() bool {
		return v.Snapshot().Classes["gvisor"].Availability.Counts.ByStatus == nodes/10+1
	})
	_, reach := v.Reach(&Placement{NodeName: "node-001"}, "")
	if r := reach.Classes["gvisor"]; !r.Available || r.Nodes != 1 {
		t.Errorf("reach of a Pod bound to node-001 = %+v, want gvisor available on it", r)
	}
	if err := c.Delete(ctx, n); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted Node to leave the view", func() bool { return v.Snapshot().Nodes == nodes-1 })

	ns := &corev1.Namespace{}
	if err := c.Get(ctx, client.ObjectKey{Name: "tenant-007"}, ns); err != nil {
		t.Fatal(err)
	}
	ns.Labels["runtimeguard.io/tenancy"] = "untrusted"
	if err := c.Update(ctx, ns); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the namespace label to reach the view", func() bool {
		got, _, _ := v.Namespace(ctx, "tenant-007")
		return got.Labels["runtimeguard.io/tenancy"] == "untrusted"
	})
}

// ready makes n a Ready Node reporting handlers, as its kubelet and the node lifecycle
// controller would: status written, the not-ready taint the API server adds at creation lifted.
func ready(t *testing.T, c client.Client, n *corev1.Node, handlers ...string) {
	t.Helper()
	n.Status = corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}
	for _, h := range handlers {
		n.Status.RuntimeHandlers = append(n.Status.RuntimeHandlers, corev1.NodeRuntimeHandler{Name: h})
	}
	if err := c.Status().Update(t.Context(), n); err != nil {
		t.Fatal(err)
	}
	n.Spec.Taints = nil
	if err := c.Update(t.Context(), n); err != nil {
		t.Fatal(err)
	}
}
