package webhook

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the admission pipeline's Prometheus metrics. A nil *Metrics records nothing, so tests and
// `eval` need no registry.
type Metrics struct {
	admissions   *prometheus.CounterVec
	decisionTime prometheus.Histogram
	cacheHits    prometheus.Counter
	evalErrors   prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runtimeguard_admissions_total",
			Help: "Admission reviews answered, by webhook (mutate, validate), outcome (allowed, mutated, warned, denied, error) and runtime_class: the class the Pod runs under if admitted (injected or its own; for a workload, its Pods'), \"other\" for a class the policy data does not list, \"\" for none.",
		}, []string{"webhook", "outcome", "runtime_class"}),
		decisionTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "runtimeguard_decision_duration_seconds",
			Help:    "Time to reach a policy decision, cache hits included.",
			Buckets: []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1},
		}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "runtimeguard_decision_cache_hits_total",
			Help: "Decisions answered from the decision cache.",
		}),
		evalErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "runtimeguard_policy_evaluation_errors_total",
			Help: "Policy evaluations that failed (error, deadline, wrong shape).",
		}),
	}
	reg.MustRegister(m.admissions, m.decisionTime, m.cacheHits, m.evalErrors)
	return m
}

func (m *Metrics) observeDecision(d time.Duration, cached bool, err error) {
	if m == nil {
		return
	}
	m.decisionTime.Observe(d.Seconds())
	if cached {
		m.cacheHits.Inc()
	}
	if err != nil {
		m.evalErrors.Inc()
	}
}

func (m *Metrics) observeAdmission(webhook, outcome, class string) {
	if m == nil {
		return
	}
	m.admissions.WithLabelValues(webhook, outcome, class).Inc()
}
