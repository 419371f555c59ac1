package audit

import (
	"context"
	"encoding/json"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/runtimeguard/runtimeguard/webhook"
)

// Violation is an existing object the current policy would reject: the contract of
// `runtimeguard audit -o json` (one object per line).
type Violation struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Namespace  string    `json:"namespace"`
	Name       string    `json:"name"`
	UID        types.UID `json:"uid"`
	// Owner is the controller of a Pod ("ReplicaSet/web-6f7d"), "" for none.
	Owner string `json:"owner,omitempty"`
	// RuntimeClassName is the class its Pods run under ("" for none).
	RuntimeClassName string `json:"runtimeClassName"`
	// Reason is the kind of the first denial (webhook.Reason*): bounded, a metric label.
	Reason string `json:"reason"`
	// Reasons holds the kind of each message.
	Reasons  []string `json:"reasons"`
	Messages []string `json:"messages"`
	// Enforcement is the namespace's mode today: warn means it is still admitted.
	Enforcement string `json:"enforcement"`
}

// Message is the denial as the validating webhook would word it.
func (v Violation) Message() string {
	return webhook.Verdict{Denials: v.Messages}.Message()
}

// Undecided is an existing object the pipeline could not decide.
type Undecided struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	UID        types.UID `json:"uid"`
	Namespace  string    `json:"namespace"`
	Name       string    `json:"name"`
	Error      string    `json:"error"`
}

// Unread is a list the audit could not finish, after its retries.
type Unread struct {
	// Resource is what was listed (pods, deployments.apps, ...) and Namespace where ("" = all).
	Resource  string `json:"resource"`
	Namespace string `json:"namespace"`
	// Read is how many objects were read (and decided) before the failure.
	Read  int    `json:"read"`
	Error string `json:"error"`
}

// Report is the result of one audit.
type Report struct {
	// Namespace is the audited namespace ("" = all).
	Namespace string    `json:"namespace"`
	Started   time.Time `json:"started"`
	Duration  string    `json:"duration"`
	// Checked objects were decided; Exempt ones are not reviewed (kube-system, ignored
	// namespaces, mirror Pods); Skipped ones are finished Pods and workloads another audited
	// workload controls.
	Checked    int         `json:"checked"`
	Exempt     int         `json:"exempt"`
	Skipped    int         `json:"skipped"`
	Violations []Violation `json:"violations"`
	Undecided  []Undecided `json:"undecided"`
	Unread     []Unread    `json:"unread"`
}

// Complete says whether every list was read to its end: only then does the absence of a
// violation mean the object complies (or is listed as undecided).
func (r *Report) Complete() bool { return len(r.Unread) == 0 }

// Progress is where a long audit is, after each page.
type Progress struct {
	Resource   string
	Read       int
	Checked    int
	Violations int
}

// Auditor lists and decides. The zero values of the tuning fields are the defaults.
type Auditor struct {
	Client   kubernetes.Interface
	Pipeline *webhook.Pipeline
	// PageSize is the list page size (Limit; default 500).
	PageSize int64
	// Attempts is how many times a page is tried before its list is reported unread
	// (default 5); Backoff is the first wait between tries, doubled each time (default 500ms).
	Attempts int
	Backoff  time.Duration
	// Progress, when set, is called after each page.
	Progress func(Progress)
}

// Run audits namespace ("" = every namespace). Unread lists and undecided objects are in the
// report; the error is only for a cancelled ctx.
func (a *Auditor) Run(ctx context.Context, namespace string) (*Report, error) {
	r := &Report{Namespace: namespace, Started: time.Now(), Violations: []Violation{}, Undecided: []Undecided{}, Unread: []Unread{}}
	for _, src := range sources {
		read := 0
		err := a.list(ctx, src, namespace, func(obj runtime.Object) {
			read++
			a.decide(ctx, r, src, obj)
		}, func() {
			if a.Progress != nil {
				a.Progress(Progress{Resource: src.resource, Read: read, Checked: r.Checked, Violations: len(r.Violations)})
			}
		})
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
		if err != nil {
			r.Unread = append(r.Unread, Unread{Resource: src.resource, Namespace: namespace, Read: read, Error: err.Error()})
		}
	}
	r.Duration = time.Since(r.Started).Round(time.Millisecond).String()
	return r, nil
}

// decide decides one listed object and records the outcome.
func (a *Auditor) decide(ctx context.Context, r *Report, src source, obj runtime.Object) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return // not an object: a list item never is
	}
	if skip(src, obj, m) {
		r.Skipped++
		return
	}
	kind, apiVersion := src.kind.Kind, apiVersionOf(src.kind)
	undecided := func(err error) {
		r.Undecided = append(r.Undecided, Undecided{APIVersion: apiVersion, Kind: kind, UID: m.GetUID(), Namespace: m.GetNamespace(), Name: m.GetName(), Error: err.Error()})
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		undecided(err)
		return
	}
	v, err := a.Pipeline.Recheck(ctx, webhook.Existing{Kind: src.kind, Namespace: m.GetNamespace(), Name: m.GetName(), Raw: raw})
	switch {
	case err != nil:
		undecided(err)
		return
	case v.Exempt != "":
		r.Exempt++
		return
	}
	r.Checked++
	if len(v.Denials) == 0 {
		return
	}
	viol := Violation{
		APIVersion: apiVersion, Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName(), UID: m.GetUID(),
		RuntimeClassName: v.Class, Reason: v.Reasons[0], Reasons: v.Reasons, Messages: v.Denials, Enforcement: string(v.Enforcement),
	}
	if c := metav1.GetControllerOfNoCopy(m); c != nil {
		viol.Owner = c.Kind + "/" + c.Name
	}
	r.Violations = append(r.Violations, viol)
}

// skip: finished Pods never run again; a workload controlled by an audited workload (a
// Deployment's ReplicaSets, a CronJob's Jobs) holds a copy of its owner's template, and the owner
// is reported instead.
func skip(src source, obj runtime.Object, m metav1.Object) bool {
	if pod, ok := obj.(*corev1.Pod); ok {
		return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	}
	c := metav1.GetControllerOfNoCopy(m)
	if c == nil {
		return false
	}
	for _, s := range sources {
		if s.kind.Kind == c.Kind && s.kind.Kind != "Pod" && apiVersionOf(s.kind) == c.APIVersion {
			return true
		}
	}
	return false
}

func apiVersionOf(k metav1.GroupVersionKind) string {
	if k.Group == "" {
		return k.Version
	}
	return k.Group + "/" + k.Version
}
