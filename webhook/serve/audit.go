package serve

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/runtimeguard/runtimeguard/webhook/audit"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

// AuditOptions configure the background audit (webhook/audit): one replica, elected through a
// Lease, decides every existing Pod and workload template on a period and after relevant changes,
// and publishes the result as metrics and PolicyReports.
type AuditOptions struct {
	// Interval is the period between audits (--audit-interval, 0 = off). Off by default: the audit
	// needs list access to every Pod, which a deployment grants on purpose (the chart's
	// audit.enabled, whose interval defaults to 10m).
	Interval time.Duration
	// PolicyReports writes a wgpolicyk8s.io/v1alpha2 PolicyReport per namespace with violations
	// (--audit-policy-reports, true); without the CRD the audit logs that once and goes on.
	PolicyReports bool
	// LeaseName is the Lease, in --webhook-namespace, that elects the auditing replica
	// (--audit-lease-name, runtimeguard-audit).
	LeaseName string
}

// DefaultAuditOptions returns the defaults the flags show.
func DefaultAuditOptions() AuditOptions {
	return AuditOptions{PolicyReports: true, LeaseName: "runtimeguard-audit"}
}

// AddFlags registers the audit flags.
func (o *AuditOptions) AddFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&o.Interval, "audit-interval", o.Interval, "period of the background audit of existing pods and workloads (e.g. 10m), run by one replica (leader election); it also runs soon after a node, namespace label or policy change; 0 disables it (needs list on pods and workloads, leases in --webhook-namespace, and policyreports)")
	fs.BoolVar(&o.PolicyReports, "audit-policy-reports", o.PolicyReports, "write the audit's violations as wgpolicyk8s.io/v1alpha2 PolicyReports, one per namespace (needs the PolicyReport CRD)")
	fs.StringVar(&o.LeaseName, "audit-lease-name", o.LeaseName, "name of the Lease in --webhook-namespace that elects the auditing replica")
}

// Validate checks the options.
func (o *AuditOptions) Validate() error {
	switch {
	case o.Interval < 0:
		return fmt.Errorf("--audit-interval %s: want 0 (off) or a positive duration", o.Interval)
	case o.Interval > 0 && o.LeaseName == "":
		return errors.New("--audit-lease-name is required while the audit runs (--audit-interval > 0)")
	}
	return nil
}

// auditRunner is the background audit, on the replica its own Lease elects (election).
type auditRunner struct {
	opts      AuditOptions
	namespace string
	client    kubernetes.Interface
	reports   *audit.ReportWriter // nil: no PolicyReports
	gate      *policyGate
	view      *cluster.View
	metrics   *auditMetrics
	log       logr.Logger
	election  election
	// poll is how often the inputs are checked for a change, debounce how long they must stay
	// unchanged before the audit re-runs (a rollout relabels many nodes in a burst).
	poll, debounce time.Duration

	noCRDOnce sync.Once
}

var (
	_ manager.Runnable               = (*auditRunner)(nil)
	_ manager.LeaderElectionRunnable = (*auditRunner)(nil)
)

func newAuditRunner(o AuditOptions, namespace string, client kubernetes.Interface, reports *audit.ReportWriter, gate *policyGate, view *cluster.View, reg prometheus.Registerer, log logr.Logger) *auditRunner {
	return &auditRunner{
		opts: o, namespace: namespace, client: client, reports: reports, gate: gate, view: view,
		metrics: newAuditMetrics(reg), log: log, election: newElection(client, namespace, o.LeaseName),
		poll: time.Second, debounce: 3 * time.Second,
	}
}

// NeedLeaderElection is false: the runner elects itself through its own Lease (see the type).
func (a *auditRunner) NeedLeaderElection() bool { return false }

// Start campaigns for the Lease until ctx ends, auditing while it holds it.
func (a *auditRunner) Start(ctx context.Context) error {
	// Another replica reports once this one loses the Lease: drop this one's figures, so that
	// sums over replicas count each violation once.
	return a.election.run(ctx, a.lead, a.metrics.forget)
}

// inputs are what a decision depends on besides the objects themselves.
type inputs struct{ snapshot, namespaces, policy uint64 }

func (a *auditRunner) inputs() (inputs, bool) {
	p := a.gate.Engine()
	if p == nil || a.gate.Pipeline() == nil || !a.view.Synced() {
		return inputs{}, false
	}
	gen, _ := p.Generation()
	return inputs{a.view.Snapshot().Generation, a.view.NamespaceLabelChanges(), gen}, true
}

// lead audits while this replica holds the Lease: once ready, then every Interval, and a
// debounce after the nodes, RuntimeClasses, namespace labels or policy last changed.
func (a *auditRunner) lead(ctx context.Context) {
	a.log.Info("this replica runs the audit", "lease", a.namespace+"/"+a.opts.LeaseName, "identity", a.election.identity, "interval", a.opts.Interval)
	a.metrics.leader.Set(1)
	period := time.NewTicker(a.opts.Interval)
	defer period.Stop()
	poll := time.NewTicker(a.poll)
	defer poll.Stop()
	due := true // the first audit runs as soon as the view and the policy are ready
	var seen inputs
	var settle <-chan time.Time
	for {
		if due {
			if in, ok := a.inputs(); ok {
				seen, due, settle = in, false, nil
				a.run(ctx)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-period.C:
			due = true
		case <-poll.C:
			if in, ok := a.inputs(); ok && in != seen {
				seen = in
				settle = time.After(a.debounce)
			}
		case <-settle:
			settle, due = nil, true
		}
	}
}

// run audits the whole cluster once and publishes the result.
func (a *auditRunner) run(ctx context.Context) {
	p := a.gate.Pipeline()
	start := time.Now()
	report, err := (&audit.Auditor{Client: a.client, Pipeline: p}).Run(ctx, "")
	if err != nil {
		return // ctx ended
	}
	elapsed := time.Since(start)
	log := a.log.WithValues("checked", report.Checked, "violations", len(report.Violations), "undecided", len(report.Undecided), "duration", elapsed.Round(time.Millisecond))
	for _, u := range report.Unread {
		log.Error(errors.New(u.Error), "audit could not read a list; its findings are kept from the last complete audit", "resource", u.Resource, "read", u.Read)
	}
	for i, u := range report.Undecided {
		if i == 5 {
			log.Info("more objects could not be decided", "count", len(report.Undecided)-5)
			break
		}
		log.Info("audit could not decide an object", "kind", u.Kind, "namespace", u.Namespace, "name", u.Name, "error", u.Error)
	}
	if !report.Complete() {
		a.metrics.runs.WithLabelValues("incomplete").Inc()
		return
	}
	a.metrics.observe(report, start, elapsed)
	log.Info("audit done")
	if a.reports == nil {
		return
	}
	res, err := a.reports.Write(ctx, report)
	switch {
	case errors.Is(err, audit.ErrNoPolicyReportCRD):
		a.noCRDOnce.Do(func() { a.log.Info("not writing PolicyReports: " + err.Error()) })
	case err != nil:
		a.metrics.reportErrors.Inc()
		a.log.Error(err, "writing PolicyReports")
	default:
		a.log.V(1).Info("PolicyReports written", "created", res.Created, "updated", res.Updated, "deleted", res.Deleted, "unchanged", res.Unchanged)
	}
}

// auditMetrics are the audit's figures; only the leading replica has violations.
type auditMetrics struct {
	violations   *prometheus.GaugeVec
	objects      *prometheus.GaugeVec
	lastRun      prometheus.Gauge
	duration     prometheus.Gauge
	runs         *prometheus.CounterVec
	reportErrors prometheus.Counter
	leader       prometheus.Gauge
}

func newAuditMetrics(reg prometheus.Registerer) *auditMetrics {
	m := &auditMetrics{
		violations: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "runtimeguard_audit_violations",
			Help: "Existing Pods and workloads the current policy would reject, by namespace and reason (missing-class, weak-class, class-not-found, class-unavailable, selector-conflict, policy), as of the last complete audit. Only the replica running the audit reports it.",
		}, []string{"namespace", "reason"}),
		objects: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "runtimeguard_audit_objects",
			Help: "Objects in the last complete audit, by outcome: checked (decided), exempt, skipped (finished Pods, workloads another workload controls), undecided (the policy could not decide them).",
		}, []string{"outcome"}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "runtimeguard_audit_last_run_timestamp_seconds",
			Help: "When the last complete audit started (Unix time); 0 before the first one.",
		}),
		duration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "runtimeguard_audit_duration_seconds",
			Help: "How long the last complete audit took.",
		}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runtimeguard_audit_runs_total",
			Help: "Audits run, by result: complete, or incomplete (a list failed after retries; the previous findings were kept).",
		}, []string{"result"}),
		reportErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "runtimeguard_audit_policyreport_errors_total",
			Help: "Audits whose PolicyReports could not all be written.",
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "runtimeguard_audit_leader",
			Help: "1 on the replica that holds the audit Lease and runs the audit.",
		}),
	}
	reg.MustRegister(m.violations, m.objects, m.lastRun, m.duration, m.runs, m.reportErrors, m.leader)
	return m
}

func (m *auditMetrics) observe(r *audit.Report, start time.Time, elapsed time.Duration) {
	m.runs.WithLabelValues("complete").Inc()
	m.violations.Reset()
	for _, v := range r.Violations {
		m.violations.WithLabelValues(v.Namespace, v.Reason).Inc()
	}
	m.objects.WithLabelValues("checked").Set(float64(r.Checked))
	m.objects.WithLabelValues("exempt").Set(float64(r.Exempt))
	m.objects.WithLabelValues("skipped").Set(float64(r.Skipped))
	m.objects.WithLabelValues("undecided").Set(float64(len(r.Undecided)))
	m.lastRun.Set(float64(start.Unix()))
	m.duration.Set(elapsed.Seconds())
}

func (m *auditMetrics) forget() {
	m.violations.Reset()
	m.objects.Reset()
	m.leader.Set(0)
}
