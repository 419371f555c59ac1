package webhook

import (
	"encoding/json"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// logLines collects the JSON lines of a funcr logger.
type logLines struct {
	mu    sync.Mutex
	lines []map[string]any
	raw   []string
}

func (l *logLines) logger(t *testing.T) logr.Logger {
	return funcr.NewJSON(func(obj string) {
		var m map[string]any
		if err := json.Unmarshal([]byte(obj), &m); err != nil {
			t.Errorf("log line is not JSON: %v: %s", err, obj)
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, m)
		l.raw = append(l.raw, obj)
	}, funcr.Options{})
}

func (l *logLines) take() ([]map[string]any, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines, raw := l.lines, strings.Join(l.raw, "\n")
	l.lines, l.raw = nil, nil
	return lines, raw
}

// decisionRecord is a log line without what varies (the logger's own keys).
func decisionRecord(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		switch k {
		case "logger", "level", "ts", "caller":
			continue
		}
		out[k] = v
	}
	return out
}

func TestDecisionRecordsAndRuntimeClassLabel(t *testing.T) {
	p := newPipeline(t, setup{})
	var logs logLines
	p.cfg.DecisionLog = logs.logger(t)
	reg := prometheus.NewRegistry()
	p.cfg.Metrics = NewMetrics(reg)
	mutateURL, validateURL := serve(t, p)

	const untrustedReasons = `trait untrusted: namespace "tenant-a" is runtimeguard.io/tenancy=untrusted`
	financialDenial := []any{`pod rejected: namespace "payments" is runtimeguard.io/tenancy=financial, which needs isolation >= 2 (runtime class "kata" or stronger); spec.runtimeClassName is "gvisor"; remove spec.runtimeClassName to let runtimeguard choose, or set it to "kata"`}
	injected := map[string]any{"msg": "admission decision", "webhook": "mutate", "decision": "injected", "kind": "Pod", "namespace": "tenant-a",
		"generateName": "checkout-7d9f8c6b5-", "class": "gvisor", "uid": "3f1c2e5a-8d4b-4f6e-9a0c-1b2d3e4f5a6b"}
	cases := []struct {
		name   string
		url    string
		review []byte
		// times the review is sent: the second and later answers come from the answer memo
		times int
		// want is the decision record of each answer (nil: none is logged); reasonsHas is
		// the first reason's start.
		want       map[string]any
		reasonsHas string
		// label is the runtime_class label counted, with the outcome.
		outcome, label string
	}{
		{
			name: "an injection, logged for every admission including those the memo answers",
			url:  mutateURL, review: readReview(t, "untrusted-no-class.json"), times: 3,
			want: injected, reasonsHas: untrustedReasons,
			outcome: "mutated", label: "gvisor",
		},
		{
			name: "a denial names the pod, its class, the class the policy wants, and the reasons",
			url:  validateURL, review: readReview(t, "financial-gvisor.json"), times: 2,
			want: map[string]any{"msg": "admission decision", "webhook": "validate", "decision": "denied", "kind": "Pod", "namespace": "payments",
				"name": "ledger", "class": "gvisor", "policyClass": "kata", "reasons": financialDenial, "uid": "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"},
			outcome: "denied", label: "gvisor",
		},
		{
			name: "a class the policy data does not list is counted as other",
			url:  validateURL, review: readReview(t, "default-wasm.json"), times: 1,
			want: map[string]any{"msg": "admission decision", "webhook": "validate", "decision": "denied", "kind": "Pod", "namespace": "default",
				"name": "wasm-app", "class": "wasm", "uid": "11111111-2222-4333-8444-555555555555"},
			reasonsHas: `pod rejected: RuntimeClass "wasm" not found`,
			outcome:    "denied", label: "other",
		},
		{
			name: "an admission that neither denies nor injects is not logged",
			url:  validateURL, review: readReview(t, "untrusted-kata.json"), times: 2,
			outcome: "allowed", label: "kata",
		},
		{
			name: "a workload's denial is logged with its kind",
			url:  validateURL, times: 1,
			review: workloadReviewBody(t, "apps", "deployments", "payments", workloadObject("apps/v1", "Deployment", "ledger", podTemplate("gvisor")), nil),
			want: map[string]any{"msg": "admission decision", "webhook": "validate", "decision": "denied", "kind": "Deployment", "namespace": "payments",
				"name": "ledger", "class": "gvisor", "uid": "7f0b2a1c-workload"},
			reasonsHas: `deployment "ledger": its pods would be rejected: namespace "payments"`,
			outcome:    "denied", label: "gvisor",
		},
		{
			name: "a request without a class is counted under the empty label",
			url:  mutateURL, times: 1,
			review:  withNamespace(t, readReview(t, "untrusted-no-class.json"), "default"),
			outcome: "allowed", label: "",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			face := "validate"
			if tc.url == mutateURL {
				face = "mutate"
			}
			counter := p.cfg.Metrics.admissions.WithLabelValues(face, tc.outcome, tc.label)
			before := testutil.ToFloat64(counter)
			for range tc.times {
				status, review, raw := post(t, tc.url, tc.review)
				if status != http.StatusOK || review.Response == nil {
					t.Fatalf("HTTP %d: %s", status, raw)
				}
			}
			if p.answers.m == nil {
				t.Error("the answer memo holds nothing: repeated answers did not come from it")
			}
			if got := testutil.ToFloat64(counter) - before; got != float64(tc.times) {
				t.Errorf("runtimeguard_admissions_total{outcome=%q,runtime_class=%q} grew by %v, want %d", tc.outcome, tc.label, got, tc.times)
			}
			lines, raw := logs.take()
			if tc.want == nil {
				if len(lines) != 0 {
					t.Errorf("logged %d lines, want none:\n%s", len(lines), raw)
				}
				return
			}
			if len(lines) != tc.times {
				t.Fatalf("logged %d lines, want one per admission (%d):\n%s", len(lines), tc.times, raw)
			}
			for _, line := range lines {
				got := decisionRecord(line)
				if tc.reasonsHas != "" {
					reasons, _ := got["reasons"].([]any)
					if len(reasons) == 0 || !strings.HasPrefix(reasons[0].(string), tc.reasonsHas) {
						t.Errorf("reasons %v, want the first to start with %q", got["reasons"], tc.reasonsHas)
					}
					delete(got, "reasons")
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("decision record\n got %v\nwant %v", got, tc.want)
				}
			}
			// The record names the Pod, never its spec.
			for _, spec := range []string{"registry.example.com", "containers", "image", "env"} {
				if strings.Contains(raw, spec) {
					t.Errorf("the decision log holds Pod spec content %q:\n%s", spec, raw)
				}
			}
		})
	}
	// Every runtime_class value is bounded: the classes of the policy data, other, or none.
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, f := range families {
		if f.GetName() != "runtimeguard_admissions_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "runtime_class" {
					seen = append(seen, l.GetValue())
					if v := l.GetValue(); v != "" && v != "other" && !p.cfg.Engine.KnownClass(v) {
						t.Errorf("runtime_class=%q is not a class of the policy data, other or empty", l.GetValue())
					}
				}
			}
		}
	}
	sort.Strings(seen)
	if want := []string{"", "gvisor", "gvisor", "kata", "other"}; !reflect.DeepEqual(seen, want) {
		t.Errorf("runtime_class values counted %q, want %q", seen, want)
	}
}

// withNamespace is review with its request and object moved to namespace.
func withNamespace(t *testing.T, review []byte, namespace string) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(review, &m); err != nil {
		t.Fatal(err)
	}
	req := m["request"].(map[string]any)
	req["namespace"] = namespace
	req["object"].(map[string]any)["metadata"].(map[string]any)["namespace"] = namespace
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// With the logger's level above info, or the zero Logger (--log-decisions=false), nothing is
// logged, and the record is not even built into a log call.
func TestDecisionRecordsOff(t *testing.T) {
	for name, logger := range map[string]logr.Logger{
		"a logger whose level hides info": logr.New(&countingSink{}),
		"--log-decisions=false":           {},
	} {
		t.Run(name, func(t *testing.T) {
			p := newPipeline(t, setup{})
			p.cfg.DecisionLog = logger
			mutateURL, _ := serve(t, p)
			for range 2 {
				if status, review, raw := post(t, mutateURL, readReview(t, "untrusted-no-class.json")); status != http.StatusOK || len(review.Response.Patch) == 0 {
					t.Fatalf("HTTP %d, want an injection: %s", status, raw)
				}
			}
			if sink, ok := logger.GetSink().(*countingSink); ok {
				if sink.enabled.Load() == 0 {
					t.Error("the level was never checked")
				}
				if sink.infos.Load() != 0 {
					t.Errorf("Info called %d times on a logger whose level hides info", sink.infos.Load())
				}
			}
		})
	}
}

// countingSink is a logr sink at a level above info that counts what is asked of it.
type countingSink struct {
	enabled, infos atomic.Int64
}

func (s *countingSink) Init(logr.RuntimeInfo)  {}
func (s *countingSink) Enabled(level int) bool { s.enabled.Add(1); return false }
func (s *countingSink) Info(int, string, ...any) {
	s.infos.Add(1)
}
func (s *countingSink) Error(error, string, ...any)    {}
func (s *countingSink) WithValues(...any) logr.LogSink { return s }
func (s *countingSink) WithName(string) logr.LogSink   { return s }
