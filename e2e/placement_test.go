package e2e

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/runtimeguard/runtimeguard/e2e/controlplane"
	"github.com/runtimeguard/runtimeguard/e2e/harness"
)

// Placement scenarios: kube-scheduler and kube-controller-manager are real, so what the
// webhook decides about where a Pod can run is checked against where it really lands (or that
// it would not land anywhere). The standard Nodes are in pools (harness.PoolLabel): sandbox-1
// in pool=sandbox runs runsc, general-1 in pool=general runs runc only.

// bindTimeout bounds how long kube-scheduler takes to bind a Pod, or to report that it
// cannot: milliseconds when idle, seconds behind a backlog of Pods other scenarios created.
const bindTimeout = 60 * time.Second

// addPoolNodes adds a general and a sandbox node (general-N and sandbox-N, so that each pool
// has two) and waits until the suite's webhook has observed both; cleanup deletes them and
// waits for the standard view.
func addPoolNodes(t *testing.T) (general, sandbox harness.NodeSpec) {
	t.Helper()
	ctx := context.Background()
	general, sandbox = harness.GeneralNode(uniqueName("e2e-general")), harness.SandboxNode(uniqueName("e2e-sandbox"))
	t.Cleanup(func() {
		for _, n := range []harness.NodeSpec{sandbox, general} {
			if err := s.client.Delete(ctx, n.Object()); client.IgnoreNotFound(err) != nil {
				t.Errorf("deleting Node %s: %v", n.Name, err)
			}
		}
		waitStandardView(t)
	})
	// The general node first: the webhook's Node informer delivers events in order, so once
	// its view counts the sandbox node (visible in its metrics), it has the general one too.
	for _, n := range []harness.NodeSpec{general, sandbox} {
		if err := harness.ApplyNode(ctx, s.client, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := harness.WaitForView(ctx, s.webhook, viewTimeout, "Node "+sandbox.Name+" added", func(v harness.ClusterView) bool {
		return v["gvisor"].Usable == 2
	}); err != nil {
		t.Fatal(err)
	}
	return general, sandbox
}

// deleteNow deletes Pods without a grace period: a bound Pod is otherwise only marked for
// deletion until its kubelet confirms, and there is no kubelet here.
func deleteNow(t *testing.T, pods ...*corev1.Pod) {
	t.Helper()
	for _, p := range pods {
		if err := s.client.Delete(context.Background(), p, client.GracePeriodSeconds(0)); client.IgnoreNotFound(err) != nil {
			t.Errorf("deleting Pod %s/%s: %v", p.Namespace, p.Name, err)
		}
	}
}

// waitBound waits until kube-scheduler has bound p and returns the Pod and its Node.
func waitBound(t *testing.T, p *corev1.Pod) (*corev1.Pod, *corev1.Node) {
	t.Helper()
	ctx := context.Background()
	got := &corev1.Pod{}
	if err := controlplane.Wait(ctx, bindTimeout, func(ctx context.Context) (bool, error) {
		err := s.client.Get(ctx, client.ObjectKeyFromObject(p), got)
		return err == nil && got.Spec.NodeName != "", err
	}); err != nil {
		t.Fatalf("kube-scheduler did not bind pod %s/%s: %v (conditions %v; log in %s)", p.Namespace, p.Name, err, got.Status.Conditions, s.logDir)
	}
	node := &corev1.Node{}
	if err := s.client.Get(ctx, client.ObjectKey{Name: got.Spec.NodeName}, node); err != nil {
		t.Fatalf("the node pod %s was bound to: %v", got.Name, err)
	}
	return got, node
}

func runsHandler(n *corev1.Node, handler string) bool {
	return slices.ContainsFunc(n.Status.RuntimeHandlers, func(h corev1.NodeRuntimeHandler) bool { return h.Name == handler })
}

// events lists the events about the object of that kind and name with that reason.
func events(ctx context.Context, namespace, kind, name, reason string) ([]corev1.Event, error) {
	var list corev1.EventList
	err := s.client.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{
		"involvedObject.kind": kind, "involvedObject.name": name, "reason": reason,
	})
	return list.Items, err
}

// warningRecorder collects the warnings the API server returns (admission webhook warnings
// among them), as kubectl prints them.
type warningRecorder struct {
	mu   sync.Mutex
	seen []string
}

func (w *warningRecorder) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = append(w.seen, text)
}

func (w *warningRecorder) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.seen)
}

// Scenario 24.
func TestPlacementUntrustedPodsAreBoundByTheSchedulerToNodesThatRunGVisor(t *testing.T) {
	ensureStandardCluster(t)
	addPoolNodes(t)
	// Four Pods over two sandbox and two general nodes: the scheduler spreads Pods, so a Pod
	// without the injected class (and its nodeSelector and toleration) would land on a general
	// node.
	var created []*corev1.Pod
	t.Cleanup(func() { deleteNow(t, created...) })
	for range 4 {
		p := mustCreatePod(t, harness.Pod(nsUntrusted, uniqueName("placed")))
		created = append(created, p)
		if className(p) != "gvisor" {
			t.Fatalf("pod %s: runtimeClassName %q, want gvisor injected", p.Name, className(p))
		}
	}
	for _, p := range created {
		p, node := waitBound(t, p)
		if !runsHandler(node, "runsc") || node.Labels[harness.PoolLabel] != "sandbox" {
			t.Errorf("pod %s (class %s) bound to %s (pool %q, handlers %v), want a sandbox node that runs runsc",
				p.Name, className(p), node.Name, node.Labels[harness.PoolLabel], node.Status.RuntimeHandlers)
		}
	}
}

// Scenario 25.
func TestPlacementUntrustedPodSelectingTheGeneralPoolIsRejectedAtAdmission(t *testing.T) {
	ensureStandardCluster(t)
	pod := func(pool string) *corev1.Pod {
		p := harness.Pod(nsUntrusted, uniqueName("pool-"+pool))
		p.Spec.NodeSelector = map[string]string{harness.PoolLabel: pool}
		return p
	}
	_, err := createPod(t, pod("general"))
	wantDenied(t, err, `admission webhook "`, `nodeSelector pool=general`, `handler "runsc"`, `none of which runs`)
	t.Logf("denied: %v", err)

	// The same Pod selecting the sandbox pool is admitted and bound there: the denial is about
	// the general pool, not about selecting a pool.
	p := mustCreatePod(t, pod("sandbox"))
	t.Cleanup(func() { deleteNow(t, p) })
	if className(p) != "gvisor" {
		t.Errorf("pool=sandbox pod: runtimeClassName %q, want gvisor", className(p))
	}
	if _, node := waitBound(t, p); !runsHandler(node, "runsc") {
		t.Errorf("pool=sandbox pod bound to %s, which does not run runsc", node.Name)
	}
}

// Scenario 26.
//
// Warn mode admits what enforce mode denies, and this shows that the denial was right: the
// Pod really cannot be placed. Warn mode never mutates, so the Pod names the class enforce
// mode would have injected; the API server's RuntimeClass plugin adds the class's
// nodeSelector to the Pod's pool=general, and no node matches both.
func TestPlacementWarnModeAdmitsAnUnreachablePodWhichThenStaysPending(t *testing.T) {
	ensureStandardCluster(t)
	ctx := context.Background()
	warned := &warningRecorder{}
	cfg := rest.CopyConfig(s.cp.Config)
	cfg.WarningHandler = warned
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := harness.Pod(nsWarnUntrusted, uniqueName("pending"))
	p.Spec.NodeSelector = map[string]string{harness.PoolLabel: "general"}
	p.Spec.RuntimeClassName = ptr.To("gvisor")
	if p, err = cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("warn mode rejected the pod: %v", err)
	}
	t.Cleanup(func() { deleteNow(t, p) })
	// The warning is enforce mode's denial of a Pod naming a class it cannot reach: the Pod's
	// own selector (not the class's, which the API server's RuntimeClass plugin merged into the
	// Pod before any webhook saw it) reaches nodes, none of which runs the handler.
	want := []string{"runtimeguard warn mode, would deny: ", `RuntimeClass "gvisor" (handler "runsc") cannot run this pod: nodeSelector pool=general matches`, `handler "runsc" on 0 of them`}
	if i := slices.IndexFunc(warned.all(), func(w string) bool {
		return !slices.ContainsFunc(want, func(sub string) bool { return !strings.Contains(w, sub) })
	}); i < 0 {
		t.Errorf("warnings %q\nhave none containing all of %q", warned.all(), want)
	} else {
		t.Logf("warning: %s", warned.all()[i])
	}

	// The scheduler's verdict: FailedScheduling because of the node selector.
	var failed []corev1.Event
	if err := controlplane.Wait(ctx, bindTimeout, func(ctx context.Context) (bool, error) {
		failed, err = events(ctx, p.Namespace, "Pod", p.Name, "FailedScheduling")
		return len(failed) > 0, err
	}); err != nil {
		t.Fatalf("no FailedScheduling event for pod %s: %v", p.Name, err)
	}
	if msg := failed[0].Message; !strings.Contains(msg, "didn't match Pod's node affinity/selector") {
		t.Errorf("FailedScheduling %q does not blame the node selector", msg)
	}
	// The scheduler records the event and writes the Pod's PodScheduled condition separately:
	// wait for the condition rather than read the Pod once.
	got := &corev1.Pod{}
	scheduled := corev1.PodCondition{}
	_ = controlplane.Wait(ctx, bindTimeout, func(ctx context.Context) (bool, error) {
		if err := s.client.Get(ctx, client.ObjectKeyFromObject(p), got); err != nil {
			return false, err
		}
		for _, c := range got.Status.Conditions {
			if c.Type == corev1.PodScheduled {
				scheduled = c
			}
		}
		return scheduled.Status != "", nil
	})
	if got.Spec.NodeName != "" || got.Status.Phase != corev1.PodPending ||
		scheduled.Status != corev1.ConditionFalse || scheduled.Reason != corev1.PodReasonUnschedulable {
		t.Errorf("pod after FailedScheduling: nodeName %q, phase %s, PodScheduled %s/%s; want unbound, Pending, False/Unschedulable",
			got.Spec.NodeName, got.Status.Phase, scheduled.Status, scheduled.Reason)
	}
	t.Logf("kube-scheduler: %s", failed[0].Message)
}

// Scenario 27.
//
// kube-controller-manager's DaemonSet controller decides which nodes get a Pod and pins each
// Pod to its node with required node affinity on matchFields metadata.name. A node agent in an
// untrusted namespace is rolled out pool by pool (nodes opt in with a label its affinity
// selects): on the sandbox nodes its Pods get gvisor and are bound there; on the general nodes
// the creates are denied, and the controller's FailedCreate events say why.
//
// Pool by pool, because the controller creates a DaemonSet's Pods in slow-start batches in
// random node order, drops the rest of a batch after a failed create and retries with
// exponential back-off: with both pools opted in at once, the denials for the general nodes
// can hold a sandbox node's Pod back for minutes (seen: not created after 2 minutes and 15
// denied creates). That is the controller's behaviour, not the webhook's; the test must not
// depend on a random order.
func TestPlacementDaemonSetInUntrustedNamespaceRunsOnSandboxNodesAndIsDeniedOnGeneralNodes(t *testing.T) {
	ensureStandardCluster(t)
	ctx := context.Background()
	// Registered first, so it runs last: after the extra nodes are gone, the standard view
	// can be waited for.
	t.Cleanup(func() { restoreNodes(t, "sandbox-1", "general-1") })
	general2, sandbox2 := addPoolNodes(t)
	sandboxNodes := []harness.NodeSpec{harness.StandardNodes()[0], sandbox2}
	generalNodes := []harness.NodeSpec{harness.StandardNodes()[3], general2}
	names := func(specs []harness.NodeSpec) (out []string) {
		for _, n := range specs {
			out = append(out, n.Name)
		}
		return out
	}

	name := uniqueName("e2e-agent")
	rollout := "rollout.e2e.runtimeguard.io/" + name
	labels := map[string]string{"app": name}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: nsUntrusted, Name: name},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "agent", Image: "registry.example.com/agent:1"}},
					// Node agents tolerate every taint, the sandbox pool's included.
					Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
						RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
							MatchExpressions: []corev1.NodeSelectorRequirement{
								{Key: harness.PoolLabel, Operator: corev1.NodeSelectorOpIn, Values: []string{"sandbox", "general"}},
								{Key: rollout, Operator: corev1.NodeSelectorOpExists},
							},
						}}},
					}},
				},
			},
		},
	}
	// The sandbox pool opts in before the DaemonSet is created: the validating webhook reviews
	// the DaemonSet by its template (scenario 34), and a template no Ready node can run under
	// a class that isolates enough is denied, like its Pods. Created once the webhook's view
	// has seen the labels (a poll: informer events arrive within milliseconds).
	optIn := func(nodes []harness.NodeSpec) {
		t.Helper()
		for _, n := range nodes {
			n.Labels = maps.Clone(n.Labels)
			n.Labels[rollout] = "true"
			if err := harness.ApplyNode(ctx, s.client, n); err != nil {
				t.Fatal(err)
			}
		}
	}
	optIn(sandboxNodes)
	var createErr error
	if err := controlplane.Wait(ctx, viewTimeout, func(ctx context.Context) (bool, error) {
		createErr = s.client.Create(ctx, ds)
		return createErr == nil, nil
	}); err != nil {
		t.Fatalf("creating DaemonSet %s once the sandbox pool opted in: %v: %v", name, err, createErr)
	}
	t.Cleanup(func() {
		// The DaemonSet first, so that nothing recreates its Pods, then its Pods at once (the
		// garbage collector's graceful deletes would wait for a kubelet forever).
		if err := s.client.Delete(ctx, ds, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			t.Errorf("deleting DaemonSet %s: %v", name, err)
		}
		if err := controlplane.Wait(ctx, 30*time.Second, func(ctx context.Context) (bool, error) {
			err := s.client.Get(ctx, client.ObjectKeyFromObject(ds), &appsv1.DaemonSet{})
			return client.IgnoreNotFound(err) == nil && err != nil, client.IgnoreNotFound(err)
		}); err != nil {
			t.Errorf("DaemonSet %s not deleted: %v", name, err)
		}
		if err := s.client.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(nsUntrusted), client.MatchingLabels(labels),
			client.GracePeriodSeconds(0)); err != nil {
			t.Errorf("deleting the DaemonSet's pods: %v", err)
		}
	})
	var pods corev1.PodList
	var failed []corev1.Event
	describe := func() string {
		var all []string
		for _, p := range pods.Items {
			all = append(all, fmt.Sprintf("%s pinned to %q class %q bound to %q", p.Name, pinnedNode(&p), className(&p), p.Spec.NodeName))
		}
		return fmt.Sprintf("pods: %v\nFailedCreate: %v", all, eventMessages(failed))
	}
	list := func(ctx context.Context) error {
		return s.client.List(ctx, &pods, client.InNamespace(nsUntrusted), client.MatchingLabels(labels))
	}

	// The sandbox pool (opted in above): a Pod per node, with gvisor, bound by the scheduler.
	onNode := map[string]*corev1.Pod{}
	if err := controlplane.Wait(ctx, bindTimeout, func(ctx context.Context) (bool, error) {
		if err := list(ctx); err != nil {
			return false, err
		}
		clear(onNode)
		for i := range pods.Items {
			if n := pods.Items[i].Spec.NodeName; n != "" {
				onNode[n] = &pods.Items[i]
			}
		}
		return len(onNode) == len(sandboxNodes), nil
	}); err != nil {
		t.Fatalf("want DaemonSet pods bound to %v: %v\n%s", names(sandboxNodes), err, describe())
	}
	for _, n := range names(sandboxNodes) {
		p := onNode[n]
		if p == nil || className(p) != "gvisor" || pinnedNode(p) != n {
			t.Errorf("sandbox node %s: want a DaemonSet pod pinned to it with gvisor\n%s", n, describe())
		}
	}

	// The general pool: the creates are denied, and the FailedCreate events carry the denial
	// that names the node. Each sync the controller stops at the first failed create of its
	// batch and backs off, so it may retry one general node only: every event must be a clear
	// denial for a general node, not one event per node.
	optIn(generalNodes)
	wantMsg := []string{`admission webhook "`, "denied the request", `handler "runsc"`, "none of which runs"}
	if err := controlplane.Wait(ctx, bindTimeout, func(ctx context.Context) (bool, error) {
		var err error
		failed, err = events(ctx, nsUntrusted, "DaemonSet", name, "FailedCreate")
		return len(failed) > 0, err
	}); err != nil {
		_ = list(ctx)
		t.Fatalf("want FailedCreate events for %v: %v\n%s", names(generalNodes), err, describe())
	}
	for _, e := range failed {
		if !slices.ContainsFunc(names(generalNodes), func(n string) bool { return namesNode(e.Message, n) }) {
			t.Errorf("FailedCreate %q names none of the general nodes %v", e.Message, names(generalNodes))
		}
		for _, sub := range wantMsg {
			if !strings.Contains(e.Message, sub) {
				t.Errorf("FailedCreate %q\ndoes not contain %q", e.Message, sub)
			}
		}
		t.Logf("FailedCreate (x%d): %s", e.Count, e.Message)
	}

	// The controller wanted a Pod on all four nodes (its status is written after a sync: wait
	// for it), and the only Pods are the sandbox nodes' ones.
	want := int32(len(sandboxNodes) + len(generalNodes))
	got := &appsv1.DaemonSet{}
	if err := controlplane.Wait(ctx, 30*time.Second, func(ctx context.Context) (bool, error) {
		err := s.client.Get(ctx, client.ObjectKeyFromObject(ds), got)
		return err == nil && got.Status.DesiredNumberScheduled == want, err
	}); err != nil {
		t.Errorf("DaemonSet desiredNumberScheduled = %d, want %d (both pools): %v", got.Status.DesiredNumberScheduled, want, err)
	}
	if err := list(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if !slices.Contains(names(sandboxNodes), pinnedNode(&p)) {
			t.Errorf("DaemonSet pod %s pinned to %q was admitted, want pods only on %v\n%s", p.Name, pinnedNode(&p), names(sandboxNodes), describe())
		}
	}
}

// Scenario 28.
func TestPlacementPodBoundToAGeneralNodeNamingGVisorIsDenied(t *testing.T) {
	ensureStandardCluster(t)
	pod := func(node string) *corev1.Pod {
		p := harness.Pod(nsPlain, uniqueName("bound"))
		p.Spec.NodeName = node
		p.Spec.RuntimeClassName = ptr.To("gvisor")
		return p
	}
	_, err := createPod(t, pod("general-1"))
	wantDenied(t, err, `admission webhook "`, `spec.nodeName "general-1" does not run handler "runsc"`)
	t.Logf("denied: %v", err)

	// Bound to the sandbox node instead, it is admitted: a bound Pod needs no toleration of
	// NoSchedule taints, and sandbox-1 runs runsc.
	p := mustCreatePod(t, pod("sandbox-1"))
	t.Cleanup(func() { deleteNow(t, p) })
	if p.Spec.NodeName != "sandbox-1" || className(p) != "gvisor" {
		t.Errorf("pod bound to sandbox-1: nodeName %q class %q, want sandbox-1 and gvisor", p.Spec.NodeName, className(p))
	}
}

// namesNode reports whether msg names node as a whole word: general-1 is not named by a
// message about e2e-general-10.
func namesNode(msg, node string) bool {
	return regexp.MustCompile(`(^|[^A-Za-z0-9.-])` + regexp.QuoteMeta(node) + `($|[^A-Za-z0-9.-])`).MatchString(msg)
}

// pinnedNode returns the node a DaemonSet Pod is pinned to: the value of its single
// matchFields metadata.name requirement, "" when it has none.
func pinnedNode(p *corev1.Pod) string {
	a := p.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return ""
	}
	for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, f := range term.MatchFields {
			if f.Key == "metadata.name" && f.Operator == corev1.NodeSelectorOpIn && len(f.Values) == 1 {
				return f.Values[0]
			}
		}
	}
	return ""
}

func eventMessages(evs []corev1.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, fmt.Sprintf("%s (x%d)", e.Message, e.Count))
	}
	return out
}
