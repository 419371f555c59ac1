package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

const notSetSuffix = ` (runtimeguard's mutating webhook does this when it is registered)`

func TestDecideWithTheDefaultPolicy(t *testing.T) {
	e := defaultEngine(t)
	v := testView(t)
	tests := []struct {
		name string
		ns   string
		pod  string
		want Decision
	}{
		{
			name: "a pod in an untrusted namespace needs isolation 1 and gets the cheapest class providing it",
			ns:   "tenant-a",
			pod:  string(realisticPod(t)),
			want: Decision{
				Class:      "gvisor",
				Acceptable: []string{"gvisor", "gvisor-nvidia", "kata", "kata-nvidia-gpu"},
				Deny:       []string{`pod rejected: namespace "tenant-a" is runtimeguard.io/tenancy=untrusted, which needs isolation >= 1; spec.runtimeClassName is not set; set it to "gvisor"` + notSetSuffix},
				Warn:       []string{},
				Reasons: []string{
					`trait untrusted: namespace "tenant-a" is runtimeguard.io/tenancy=untrusted`,
					"requires isolation >= 1",
					`cheapest available class that provides isolation >= 1: "gvisor"`,
				},
				Traits:       map[string][]string{"untrusted": {`namespace "tenant-a" is runtimeguard.io/tenancy=untrusted`}},
				Requirements: Requirements{Isolation: 1},
			},
		},
		{
			name: "a pod without traits needs nothing and every class is acceptable",
			ns:   "default",
			pod:  `{"metadata":{"name":"web"},"spec":{"containers":[{"name":"web","image":"nginx:1.27"}]}}`,
			want: Decision{
				Class:        "",
				Acceptable:   []string{"gvisor", "gvisor-nvidia", "kata", "kata-nvidia-gpu", "nvidia"},
				Deny:         []string{},
				Warn:         []string{},
				Reasons:      []string{"no trait requires a sandboxed or GPU runtime"},
				Traits:       map[string][]string{},
				Requirements: Requirements{},
			},
		},
		{
			name: "a container limiting nvidia.com/gpu needs a GPU runtime",
			ns:   "ml",
			pod:  `{"metadata":{"name":"train"},"spec":{"containers":[{"name":"train","image":"nvcr.io/nvidia/pytorch:24.01-py3","resources":{"limits":{"nvidia.com/gpu":"1"}}}]}}`,
			want: Decision{
				Class:      "nvidia",
				Acceptable: []string{"gvisor-nvidia", "kata-nvidia-gpu", "nvidia"},
				Deny:       []string{`pod rejected: container "train" requests nvidia.com/gpu, which needs a GPU runtime; spec.runtimeClassName is not set; set it to "nvidia"` + notSetSuffix},
				Warn:       []string{},
				Reasons: []string{
					`trait gpu: container "train" requests nvidia.com/gpu`,
					"requires a GPU runtime",
					`cheapest available class that provides a GPU runtime: "nvidia"`,
				},
				Traits:       map[string][]string{"gpu": {`container "train" requests nvidia.com/gpu`}},
				Requirements: Requirements{GPU: true},
			},
		},
		{
			name: "a financial pod naming a weaker class is denied with the class to use",
			ns:   "payments",
			pod:  `{"metadata":{"name":"ledger"},"spec":{"runtimeClassName":"gvisor","containers":[{"name":"ledger","image":"registry.example.com/payments/ledger:3.2"}]}}`,
			want: Decision{
				Class:      "kata",
				Acceptable: []string{"kata", "kata-nvidia-gpu"},
				Deny: []string{`pod rejected: namespace "payments" is runtimeguard.io/tenancy=financial, which needs isolation >= 2 (runtime class "kata" or stronger); ` +
					`spec.runtimeClassName is "gvisor"; remove spec.runtimeClassName to let runtimeguard choose, or set it to "kata"`},
				Warn: []string{},
				Reasons: []string{
					`trait financial: namespace "payments" is runtimeguard.io/tenancy=financial`,
					"requires isolation >= 2",
					`cheapest available class that provides isolation >= 2: "kata"`,
				},
				Traits:       map[string][]string{"financial": {`namespace "payments" is runtimeguard.io/tenancy=financial`}},
				Requirements: Requirements{Isolation: 2},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, _, err := e.Decide(t.Context(), request(t, v, tt.ns, mustPod(t, tt.pod)))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*d, tt.want) {
				t.Errorf("decision\n got %s\nwant %s", pretty(d), pretty(tt.want))
			}
		})
	}
}

// The cache must never serve an answer the current policy, cluster or namespace would not
// give: every change is seen by the very next decision.
func TestDecisionCache(t *testing.T) {
	ctx := context.Background()
	e := defaultEngine(t)
	v := testView(t)
	tenantPod := mustPod(t, string(realisticPod(t)))
	payments := mustPod(t, `{"metadata":{"generateName":"ledger-"},"spec":{"containers":[{"name":"ledger","image":"registry.example.com/payments/ledger:3.2"}]}}`)

	type step struct {
		does       string
		apply      func()
		req        func() Request
		wantCached bool
		wantClass  string
	}
	var first *Decision
	steps := []step{
		{
			does:       "a first decision misses",
			req:        func() Request { return request(t, v, "tenant-a", tenantPod) },
			wantCached: false, wantClass: "gvisor",
		},
		{
			does:       "the same input again hits",
			req:        func() Request { return request(t, v, "tenant-a", tenantPod) },
			wantCached: true, wantClass: "gvisor",
		},
		{
			does: "another replica of the same template hits: the name is not part of the input",
			req: func() Request {
				replica := mustPod(t, strings.Replace(string(realisticPod(t)), `"generateName":"checkout-7d9f8c6b5-"`, `"name":"checkout-7d9f8c6b5-x2x9k","generateName":"checkout-7d9f8c6b5-"`, 1))
				return request(t, v, "tenant-a", replica)
			},
			wantCached: true, wantClass: "gvisor",
		},
		{
			does:       "another operation misses",
			req:        func() Request { r := request(t, v, "tenant-a", tenantPod); r.Operation = "UPDATE"; return r },
			wantCached: false, wantClass: "gvisor",
		},
		{
			does:       "a financial pod is decided on its own",
			req:        func() Request { return request(t, v, "payments", payments) },
			wantCached: false, wantClass: "kata",
		},
		{
			does: "a namespace label change misses and decides with the new labels",
			apply: func() {
				v.UpsertNamespace(cluster.Namespace{Name: "payments", Labels: map[string]string{"runtimeguard.io/tenancy": "untrusted"}})
			},
			req:        func() Request { return request(t, v, "payments", payments) },
			wantCached: false, wantClass: "gvisor",
		},
		{
			does: "a cluster change misses and the very next decision sees it",
			apply: func() {
				// sandbox-1, the only gvisor node, goes NotReady: gvisor is unavailable, so the
				// next cheapest class that provides isolation 1 is chosen (GPU classes rank
				// after the others: they take GPU nodes).
				n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "sandbox-1", Labels: map[string]string{"sandbox.runtimeguard.io/gvisor": "true"}},
					Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: "sandbox.runtimeguard.io/gvisor", Value: "true", Effect: corev1.TaintEffectNoSchedule}}},
					Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse}},
						RuntimeHandlers: []corev1.NodeRuntimeHandler{{Name: ""}, {Name: "runc"}, {Name: "runsc"}}}}
				v.UpsertNode(n)
			},
			req:        func() Request { return request(t, v, "tenant-a", tenantPod) },
			wantCached: false, wantClass: "kata",
		},
		{
			does:       "the new answer is cached in turn",
			req:        func() Request { return request(t, v, "tenant-a", tenantPod) },
			wantCached: true, wantClass: "kata",
		},
		{
			does: "a RuntimeClass deletion misses too",
			apply: func() {
				v.DeleteRuntimeClass("kata")
			},
			req:        func() Request { return request(t, v, "tenant-a", tenantPod) },
			wantCached: false, wantClass: "gvisor-nvidia",
		},
		{
			does: "a policy swap misses and decides with the new policy",
			apply: func() {
				if err := e.Swap(ctx, mustSet(t, policyFiles(t, false, map[string]string{"policy.rego": constantPolicy("kata")}))); err != nil {
					t.Fatal(err)
				}
			},
			req:        func() Request { return request(t, v, "default", payments) },
			wantCached: false, wantClass: "kata",
		},
	}
	for i, s := range steps {
		if s.apply != nil {
			s.apply()
		}
		d, cached, err := e.Decide(ctx, s.req())
		if err != nil {
			t.Fatalf("step %d, %s: %v", i+1, s.does, err)
		}
		if cached != s.wantCached || d.Class != s.wantClass {
			t.Errorf("step %d, %s: cached=%v class=%q, want cached=%v class=%q", i+1, s.does, cached, d.Class, s.wantCached, s.wantClass)
		}
		if i == 0 {
			first = d
		}
		if i == 1 && d != first {
			t.Errorf("step %d, %s: a cache hit returned a different *Decision", i+1, s.does)
		}
	}
}

func constantPolicy(class string) string {
	return fmt.Sprintf(`package runtimeguard

decision := {"class": %q, "deny": [], "warn": [], "reasons": ["constant"]}
`, class)
}

func TestErrorsAreNotCached(t *testing.T) {
	e := mustEngine(t, policyFiles(t, false, map[string]string{"policy.rego": `package runtimeguard

decision := {"class": to_number(input.pod.labels.replicas)}
`}), 0)
	v := testView(t)
	pod := mustPod(t, `{"metadata":{"labels":{"replicas":"three"}},"spec":{"containers":[{"name":"a","image":"a"}]}}`)
	for i := range 2 {
		d, cached, err := e.Decide(t.Context(), request(t, v, "default", pod))
		if err == nil || cached {
			t.Fatalf("call %d: decision %+v cached=%v err=%v; want an uncached error", i+1, d, cached, err)
		}
		if !strings.HasPrefix(err.Error(), "policy evaluation failed: ") || !strings.Contains(err.Error(), "to_number") {
			t.Errorf("call %d: error %q, want a policy evaluation failure naming to_number", i+1, err)
		}
	}
}

// One engine deciding for two views (two admitters in one process, or tests) must not serve
// one view's cluster to the other: snapshots of different views may not share a cache slot.
func TestOneEngineForTwoViews(t *testing.T) {
	e := defaultEngine(t)
	pod := mustPod(t, `{"metadata":{"generateName":"job-"},"spec":{"containers":[{"name":"job","image":"registry.example.com/job:1"}]}}`)
	untrusted := &cluster.Namespace{Name: "tenant-a", Labels: map[string]string{"runtimeguard.io/tenancy": "untrusted"}}
	gvisor := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "gvisor"}, Handler: "runsc"}
	node := func(handlers ...string) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
		for _, h := range handlers {
			n.Status.RuntimeHandlers = append(n.Status.RuntimeHandlers, corev1.NodeRuntimeHandler{Name: h})
		}
		return n
	}
	// Same number of events, so the same generation if generations are per view.
	withGvisor := cluster.NewView(cluster.Options{})
	withGvisor.UpsertNode(node("runc", "runsc"))
	withGvisor.UpsertRuntimeClass(gvisor)
	withoutGvisor := cluster.NewView(cluster.Options{})
	withoutGvisor.UpsertNode(node("runc"))
	withoutGvisor.UpsertRuntimeClass(gvisor)

	for _, c := range []struct {
		view      *cluster.View
		wantClass string
	}{{withGvisor, "gvisor"}, {withoutGvisor, ""}} {
		d, cached, err := e.Decide(t.Context(), Request{Operation: "CREATE", Namespace: untrusted, Pod: pod, Cluster: c.view.Snapshot()})
		if err != nil {
			t.Fatal(err)
		}
		if d.Class != c.wantClass {
			t.Errorf("view with classes %v (generation %d): class %q (cached=%v), want %q",
				c.view.Snapshot().ClassNames(), c.view.Snapshot().Generation, d.Class, cached, c.wantClass)
		}
	}
}

// loadAndCompile is what serve does with a policy directory.
func loadAndCompile(tb testing.TB, files map[string]string) error {
	set, err := LoadFS(policyFiles(tb, false, files))
	if err != nil {
		return err
	}
	_, err = NewEngine(context.Background(), set, 0)
	return err
}

// podKey is a decision cache key for a pod labelled app=label.
func podKey(tb testing.TB, label string) []byte {
	tb.Helper()
	pod := mustPod(tb, fmt.Sprintf(`{"metadata":{"labels":{"app":%q}}}`, label))
	req := Request{Operation: "CREATE", Namespace: &cluster.Namespace{Name: "default"}, Pod: pod}
	in := projected{podLabels: pod.Metadata.Labels}
	return cacheKey(nil, req, &in)
}

func TestPolicyErrors(t *testing.T) {
	const decision = `decision := {"class": "", "deny": [], "warn": [], "reasons": []}`
	forbiddenHint := "(runtimeguard forbids http.send, net.*, opa.runtime, time.now_ns, rand.intn, uuid.rfc4122 and trace: policies must not reach the network and must be deterministic)"
	tests := []struct {
		name  string
		files map[string]string
		// every fragment must appear in the error, in order
		want []string
	}{
		{
			name:  "a syntax error names file and row",
			files: map[string]string{"policy.rego": "package runtimeguard\n\n" + decision + "\n\nwarn contains msg if {\n\tmsg := sprintf(\"%s\", [input.x]\n}\n"},
			want:  []string{"policy.rego:7:", "rego_parse_error", "expected"},
		},
		{
			name:  "pre-v1 syntax is refused, naming file and row",
			files: map[string]string{"policy.rego": "package runtimeguard\n\n" + decision + "\n\ndeny[msg] {\n\tmsg := \"no\"\n}\n"},
			want:  []string{"policy.rego:5:", "rego_parse_error"},
		},
		{
			name:  "a compile error names file and row",
			files: map[string]string{"policy.rego": "package runtimeguard\n\n" + decision + "\n\nwarn contains msg if {\n\tmsg := undefined_thing\n}\n"},
			want:  []string{"policy.rego:6:", "rego_unsafe_var_error", "undefined_thing"},
		},
		{
			name:  "http.send is forbidden, and the error says why",
			files: map[string]string{"policy.rego": "package runtimeguard\n\n" + decision + "\n\nwarn contains msg if {\n\tresp := http.send({\"method\": \"get\", \"url\": \"https://example.com\"})\n\tmsg := resp.body\n}\n"},
			want:  []string{"policy.rego:6:", "undefined function http.send", forbiddenHint},
		},
		{
			name:  "time.now_ns is forbidden: decisions are cached and must be deterministic",
			files: map[string]string{"policy.rego": "package runtimeguard\n\n" + decision + "\n\nwarn contains msg if {\n\ttime.now_ns() > 0\n\tmsg := \"late\"\n}\n"},
			want:  []string{"policy.rego:6:", "undefined function time.now_ns", forbiddenHint},
		},
		{
			name:  "net.lookup_ip_addr is forbidden",
			files: map[string]string{"policy.rego": "package runtimeguard\n\n" + decision + "\n\nwarn contains msg if {\n\tips := net.lookup_ip_addr(\"example.com\")\n\tmsg := sprintf(\"%v\", [ips])\n}\n"},
			want:  []string{"policy.rego:6:", "undefined function net.lookup_ip_addr", forbiddenHint},
		},
		{
			name:  "opa.runtime is forbidden",
			files: map[string]string{"policy.rego": "package runtimeguard\n\n" + decision + "\n\nwarn contains msg if {\n\tmsg := opa.runtime().hostname\n}\n"},
			want:  []string{"policy.rego:6:", "undefined function opa.runtime", forbiddenHint},
		},
		{
			name:  "rand.intn is forbidden",
			files: map[string]string{"policy.rego": "package runtimeguard\n\n" + decision + "\n\nwarn contains msg if {\n\trand.intn(\"x\", 10) > 5\n\tmsg := \"lucky\"\n}\n"},
			want:  []string{"policy.rego:6:", "undefined function rand.intn", forbiddenHint},
		},
		{
			name:  "a policy set without the decision rule is refused",
			files: map[string]string{"policy.rego": "package runtimeguard\n\nclass := \"gvisor\"\n"},
			want:  []string{"no module defines data.runtimeguard.decision (package runtimeguard, rule decision)"},
		},
		{
			name:  "a decision in another package does not count",
			files: map[string]string{"policy.rego": "package kubernetes.admission\n\n" + decision + "\n"},
			want:  []string{"no module defines data.runtimeguard.decision"},
		},
		{
			name:  "a directory without Rego is refused",
			files: map[string]string{"data.yaml": "config: {}\n"},
			want:  []string{"no .rego files found"},
		},
		{
			name:  "broken data names its file",
			files: map[string]string{"policy.rego": "package runtimeguard\n\n" + decision + "\n", "data.yaml": "config:\n  classes: [\n"},
			want:  []string{"data.yaml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := loadAndCompile(t, tt.files)
			if err == nil {
				t.Fatal("the policy set loaded and compiled, want an error")
			}
			rest := err.Error()
			for _, frag := range tt.want {
				i := strings.Index(rest, frag)
				if i < 0 {
					t.Fatalf("error\n%s\nlacks (in order) %q", err, frag)
				}
				rest = rest[i+len(frag):]
			}
		})
	}
}

func TestLoadFSSkipsTestsAndHiddenEntries(t *testing.T) {
	files := policyFiles(t, true, map[string]string{
		// opa test files are not admission policy, even when they would not compile here.
		"runtimeguard_test.rego": "package runtimeguard_test\n\ntest_x if { http.send({}) }\n",
		// A mounted ConfigMap keeps its real files under ..data; the visible names link to them.
		"..data/runtimeguard.rego": "this is not rego",
		".hidden.rego":             "nor is this",
		"README.md":                "# not loaded",
	})
	set, err := LoadFS(files)
	if err != nil {
		t.Fatal(err)
	}
	if want := mustSet(t, policyFiles(t, true, nil)).Files; !reflect.DeepEqual(set.Files, want) {
		t.Errorf("Files = %v, want the default policy's alone, %v", set.Files, want)
	}
	for _, f := range set.Files {
		if strings.HasSuffix(f, "_test.rego") || strings.HasPrefix(f, ".") {
			t.Errorf("Files holds %s", f)
		}
	}
	if _, err := NewEngine(t.Context(), set, 0); err != nil {
		t.Errorf("the default policy with skipped files does not compile: %v", err)
	}
}

func TestDecisionShape(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		want   string // the error; "" for a valid decision
	}{
		{name: "a minimal decision with only class is valid", policy: `decision := {"class": ""}`},
		{name: "class must be a string", policy: `decision := {"class": 1, "deny": []}`,
			want: "policy returned the wrong shape: decision.class is a number, want a string"},
		{name: "class must be present", policy: `decision := {"deny": []}`,
			want: "policy returned the wrong shape: decision.class is missing"},
		{name: "the decision must be an object", policy: `decision := "gvisor"`,
			want: "policy returned the wrong shape: data.runtimeguard.decision is a string, want an object"},
		{name: "deny must be a set or array", policy: `decision := {"class": "", "deny": "no"}`,
			want: "policy returned the wrong shape: decision.deny is a string, want a set or array of strings"},
		{name: "deny must hold strings", policy: `decision := {"class": "", "deny": {1, 2}}`,
			want: "policy returned the wrong shape: decision.deny holds a number, want strings"},
		{name: "warn must hold strings", policy: `decision := {"class": "", "warn": [{"msg": "x"}]}`,
			want: "policy returned the wrong shape: decision.warn holds an object, want strings"},
		{name: "traits must be an object", policy: `decision := {"class": "", "traits": ["gpu"]}`,
			want: "policy returned the wrong shape: decision.traits is an array, want an object"},
		{name: "traits must map to strings", policy: `decision := {"class": "", "traits": {"gpu": [true]}}`,
			want: "policy returned the wrong shape: decision.traits: decision.gpu holds a boolean, want strings"},
		{name: "an undefined decision is an error, never an allow", policy: `decision := {"class": ""} if input.pod.labels.tier == "gold"`,
			want: "data.runtimeguard.decision is undefined for this input: a policy must always define it"},
		{name: "conflicting decisions are an error", policy: "decision := {\"class\": \"a\"} if input.operation == \"CREATE\"\n\ndecision := {\"class\": \"b\"} if input.namespace.name == \"default\"",
			want: "policy evaluation failed: "},
	}
	v := testView(t)
	pod := mustPod(t, `{"metadata":{"labels":{"tier":"silver"}},"spec":{"containers":[{"name":"a","image":"a"}]}}`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustEngine(t, policyFiles(t, false, map[string]string{"policy.rego": "package runtimeguard\n\n" + tt.policy + "\n"}), 0)
			d, _, err := e.Decide(t.Context(), request(t, v, "default", pod))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Decide = %v, want a decision", err)
			case tt.want == "" && (d.Class != "" || d.Deny != nil || d.Warn != nil):
				t.Errorf("Decide = %s, want an empty decision", pretty(d))
			case tt.want != "" && err == nil:
				t.Fatalf("Decide = %s, want error %q", pretty(d), tt.want)
			case tt.want != "" && !strings.HasPrefix(err.Error(), tt.want):
				t.Errorf("Decide error\n%q\nwant it to start with\n%q", err, tt.want)
			}
			if err != nil && d != nil {
				t.Errorf("Decide returned a decision with its error: %s", pretty(d))
			}
		})
	}
}

func TestDeadline(t *testing.T) {
	// 400 million iterations: minutes of work, cut off by the engine's timeout.
	slow := `package runtimeguard

decision := {"class": "", "reasons": [sprintf("%d", [n])]}

n := count([1 |
	some x in numbers.range(1, 20000 * count(input.pod.containers))
	some y in numbers.range(1, 20000)
])
`
	e := mustEngine(t, policyFiles(t, false, map[string]string{"policy.rego": slow}), 100*time.Millisecond)
	v := testView(t)
	pod := mustPod(t, `{"spec":{"containers":[{"name":"a","image":"a"}]}}`)
	start := time.Now()
	d, _, err := e.Decide(t.Context(), request(t, v, "default", pod))
	elapsed := time.Since(start)
	if err == nil {
		t.Fatalf("a looping policy decided %s", pretty(d))
	}
	if !strings.HasPrefix(err.Error(), "policy evaluation did not finish within 100ms: ") {
		t.Errorf("error %q, want the deadline named", err)
	}
	if elapsed > 2*time.Second {
		t.Errorf("Decide returned after %s with a 100ms timeout", elapsed)
	}

	// A caller that gives up (the API server closed the connection) stops it too, long
	// before the engine's own deadline.
	e = mustEngine(t, policyFiles(t, false, map[string]string{"policy.rego": slow}), time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	d, _, err = e.Decide(ctx, request(t, v, "default", pod))
	if err == nil {
		t.Fatalf("a looping policy decided %s", pretty(d))
	}
	if !strings.HasPrefix(err.Error(), "policy evaluation stopped, the request was cancelled: ") {
		t.Errorf("error %q, want the cancelled request named, not the engine's deadline", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Decide returned after %s with the caller's context cancelled after 100ms", elapsed)
	}
}

func TestSwapWithABrokenSetKeepsTheOldProgram(t *testing.T) {
	ctx := context.Background()
	e := defaultEngine(t)
	v := testView(t)
	req := request(t, v, "tenant-a", mustPod(t, string(realisticPod(t))))
	before, _, err := e.Decide(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	files := e.Files()
	broken := mustSet(t, policyFiles(t, false, map[string]string{"policy.rego": "package runtimeguard\n\nclass := \"x\"\n"}))
	if err := e.Swap(ctx, broken); err == nil {
		t.Fatal("Swap accepted a set without the decision")
	}
	after, cached, err := e.Decide(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !cached || after != before {
		t.Errorf("after a rejected swap: cached=%v, same decision=%v; want the old program and its cache", cached, after == before)
	}
	if got := e.Files(); !reflect.DeepEqual(got, files) {
		t.Errorf("Files() = %v after a rejected swap, want %v", got, files)
	}
}

// Set is exported: a caller may build one from modules alone, without data documents.
func TestASetWithoutDataCompiles(t *testing.T) {
	set := mustSet(t, policyFiles(t, false, map[string]string{"policy.rego": constantPolicy("kata")}))
	set.Data = nil
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("NewEngine panicked on a Set without Data: %v", r)
		}
	}()
	if _, err := NewEngine(t.Context(), set, 0); err != nil {
		t.Fatalf("NewEngine = %v", err)
	}
}

func TestNewEngineRefusesABrokenSet(t *testing.T) {
	_, err := NewEngine(t.Context(), mustSet(t, policyFiles(t, false, map[string]string{"policy.rego": "package runtimeguard\n\nclass := \"x\"\n"})), 0)
	if err == nil {
		t.Fatal("NewEngine accepted a set without the decision")
	}
}

// Decisions run concurrently with policy swaps in serve: every answer must come from one
// policy or the other, never a mix or a panic.
func TestConcurrentDecideAndSwap(t *testing.T) {
	ctx := context.Background()
	e := mustEngine(t, policyFiles(t, false, map[string]string{"policy.rego": constantPolicy("gvisor")}), 0)
	sets := []*Set{
		mustSet(t, policyFiles(t, false, map[string]string{"policy.rego": constantPolicy("gvisor")})),
		mustSet(t, policyFiles(t, false, map[string]string{"policy.rego": constantPolicy("kata")})),
	}
	v := testView(t)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				pod := mustPod(t, fmt.Sprintf(`{"metadata":{"labels":{"g":"%d","i":"%d"}},"spec":{"containers":[{"name":"a","image":"a"}]}}`, g, i%5))
				d, _, err := e.Decide(ctx, request(t, v, "default", pod))
				if err != nil {
					errs <- err
					return
				}
				if d.Class != "gvisor" && d.Class != "kata" {
					errs <- fmt.Errorf("class %q from neither policy", d.Class)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 20 {
			if err := e.Swap(ctx, sets[i%2]); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// The input is the contract with policy authors: what a policy sees of a Pod.
func TestInput(t *testing.T) {
	echo := `package runtimeguard

decision := {"class": "", "reasons": [json.marshal(input.pod), json.marshal(input.namespace), json.marshal(input.cluster.runtimeClasses.gvisor), input.operation]}
`
	e := mustEngine(t, policyFiles(t, false, map[string]string{"policy.rego": echo}), 0)
	v := testView(t)
	pod := mustPod(t, `{
		"metadata": {"name": "gpu-job-x7k2p", "generateName": "gpu-job-", "labels": {"app": "train"}, "annotations": {"owner": "ml"}},
		"spec": {
			"runtimeClassName": "nvidia", "nodeSelector": {"pool": "gpu"}, "hostNetwork": true,
			"initContainers": [{"name": "fetch", "image": "busybox", "resources": {"requests": {"cpu": "100m", "example.com/fpga": 2}}}],
			"containers": [{"name": "train", "image": "nvcr.io/nvidia/pytorch:24.01-py3", "securityContext": {"privileged": true},
				"resources": {"requests": {"nvidia.com/gpu": "1", "memory": "8Gi"}, "limits": {"nvidia.com/gpu": "2"}}}]
		}}`)
	d, _, err := e.Decide(t.Context(), request(t, v, "ml", pod))
	if err != nil {
		t.Fatal(err)
	}
	wantPod := `{"annotations":{"owner":"ml"},"containers":[{"extendedResources":{"nvidia.com/gpu":2},"image":"nvcr.io/nvidia/pytorch:24.01-py3","name":"train","privileged":true}],` +
		`"generateName":"gpu-job-","hostIPC":false,"hostNetwork":true,"hostPID":false,` +
		`"initContainers":[{"extendedResources":{"example.com/fpga":2},"image":"busybox","name":"fetch","privileged":false}],` +
		`"labels":{"app":"train"},"namespace":"","nodeName":"","nodeSelector":{"pool":"gpu"},"resourceClaims":[],"runtimeClassName":"nvidia"}`
	wantNamespace := `{"annotations":{},"labels":{},"name":"ml"}`
	wantClass := `{"available":true,"handler":"runsc","known":true,"nodeSelector":{"sandbox.runtimeguard.io/gvisor":"true"},"overhead":{"cpu":"250m","memory":"64Mi"},` +
		`"reason":"1 of 3 nodes can run handler \"runsc\" (1 via status.runtimeHandlers, 0 via labels sandbox.runtimeguard.io/gvisor=true)","source":"status",` +
		`"tolerations":[{"effect":"NoSchedule","key":"sandbox.runtimeguard.io/gvisor","operator":"Exists"}]}`
	want := []string{wantPod, wantNamespace, wantClass, "CREATE"}
	if !reflect.DeepEqual(d.Reasons, want) {
		t.Errorf("input\n got %s\nwant %s", strings.Join(d.Reasons, "\n"), strings.Join(want, "\n"))
	}
	// metadata.namespace is passed as decoded (the handler fills it from the request when
	// empty), and the name never reaches the policy.
	var p map[string]any
	_ = json.Unmarshal([]byte(d.Reasons[0]), &p)
	if _, ok := p["name"]; ok {
		t.Error("input.pod carries name: replicas would never share a cached decision")
	}
}

func TestBadExtendedResourceIsAnError(t *testing.T) {
	e := defaultEngine(t)
	v := testView(t)
	pod := mustPod(t, `{"spec":{"containers":[{"name":"train","image":"x","resources":{"limits":{"nvidia.com/gpu":"lots"}}}]}}`)
	_, _, err := e.Decide(t.Context(), request(t, v, "ml", pod))
	if err == nil || !strings.HasPrefix(err.Error(), `container "train": resources nvidia.com/gpu: `) {
		t.Errorf("Decide = %v, want an error naming the container and resource", err)
	}
}

func TestCacheDoesNotRollBack(t *testing.T) {
	var c decisionCache
	newer := generation{policy: 2, cluster: 5}
	older := generation{policy: 2, cluster: 4}
	key := podKey(t, "a")
	d := &Decision{Class: "kata"}
	c.put(newer, key, d)
	c.put(older, podKey(t, "b"), &Decision{Class: "stale"})
	if got := c.get(newer, key); got != d {
		t.Errorf("a slow evaluation of an older cluster generation dropped the newer cache: get = %v", got)
	}
	if got := c.get(older, podKey(t, "b")); got != nil {
		t.Errorf("an older generation's decision was cached: %+v", got)
	}
}

func TestCacheIsBounded(t *testing.T) {
	var c decisionCache
	gen := generation{policy: 1, cluster: 1}
	first := podKey(t, "first")
	c.put(gen, first, &Decision{})
	for i := range maxCacheEntries {
		c.put(gen, podKey(t, fmt.Sprint(i)), &Decision{})
	}
	if len(c.entries) > maxCacheEntries {
		t.Errorf("cache holds %d entries, bound is %d", len(c.entries), maxCacheEntries)
	}
	if c.get(gen, first) != nil {
		t.Error("the cache grew past its bound without dropping old entries")
	}
}
