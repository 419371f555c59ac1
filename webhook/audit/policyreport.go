package audit

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// PolicyReports are written in the format of the Kubernetes Policy working group
// (wgpolicyk8s.io/v1alpha2), which Kyverno, Kubewarden and Trivy write and Policy Reporter reads.
var PolicyReportResource = schema.GroupVersionResource{Group: "wgpolicyk8s.io", Version: "v1alpha2", Resource: "policyreports"}

const (
	// ReportName is the name of runtimeguard's PolicyReport in each namespace.
	ReportName = "runtimeguard"
	// managedBy labels the reports runtimeguard owns: only those are updated or deleted.
	managedByLabel = "app.kubernetes.io/managed-by"
	managedBy      = "runtimeguard"
	policyName     = "runtimeguard"
	// ReasonUndecided is the rule of an "error" result: an object the audit could not decide.
	ReasonUndecided = "undecided"
)

// ErrNoPolicyReportCRD means the API server does not serve PolicyReports.
var ErrNoPolicyReportCRD = errors.New("the API server does not serve wgpolicyk8s.io/v1alpha2 PolicyReports: install the CRD (chart value audit.policyReports.installCRD=true, or the one Kyverno ships)")

// ReportWriter keeps one PolicyReport per namespace with a violation, with one "fail" result per
// violating object, and deletes the reports of namespaces that have none left.
type ReportWriter struct {
	Client dynamic.Interface
	// Now stamps new results (default time.Now).
	Now func() time.Time
}

// WriteResult says what Write changed.
type WriteResult struct {
	Created, Updated, Deleted, Unchanged int
}

// Write brings the reports in line with r, which must be complete (Report.Complete) and cover
// every namespace (Namespace ""): a partial report would delete results it could not check.
// Objects the audit could not decide are "error" results.
func (w *ReportWriter) Write(ctx context.Context, r *Report) (WriteResult, error) {
	var res WriteResult
	if !r.Complete() || r.Namespace != "" {
		return res, errors.New("refusing to write PolicyReports from an incomplete audit: results it could not check would be removed")
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	reports := w.Client.Resource(PolicyReportResource)
	existing, err := reports.Namespace("").List(ctx, metav1.ListOptions{LabelSelector: managedByLabel + "=" + managedBy})
	if err != nil {
		if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
			return res, ErrNoPolicyReportCRD
		}
		return res, fmt.Errorf("listing runtimeguard's PolicyReports: %w", err)
	}
	want := map[string][]Violation{}
	for _, v := range r.Violations {
		want[v.Namespace] = append(want[v.Namespace], v)
	}
	for _, u := range r.Undecided {
		want[u.Namespace] = append(want[u.Namespace], Violation{
			APIVersion: u.APIVersion, Kind: u.Kind, Namespace: u.Namespace, Name: u.Name, UID: u.UID,
			Reason: ReasonUndecided, Messages: []string{"runtimeguard could not decide: " + u.Error},
		})
	}
	var errs []error
	seen := map[string]bool{}
	for i := range existing.Items {
		old := &existing.Items[i]
		ns := old.GetNamespace()
		if old.GetName() != ReportName {
			continue
		}
		seen[ns] = true
		vs, ok := want[ns]
		if !ok {
			if err := reports.Namespace(ns).Delete(ctx, ReportName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("deleting PolicyReport %s/%s: %w", ns, ReportName, err))
				continue
			}
			res.Deleted++
			continue
		}
		results := resultsOf(vs, previousTimestamps(old), now())
		if equality.Semantic.DeepEqual(old.Object["results"], results) {
			res.Unchanged++
			continue
		}
		updated := old.DeepCopy()
		updated.Object["results"] = results
		updated.Object["summary"] = summaryOf(vs)
		if _, err := reports.Namespace(ns).Update(ctx, updated, metav1.UpdateOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("updating PolicyReport %s/%s: %w", ns, ReportName, err))
			continue
		}
		res.Updated++
	}
	for _, ns := range sortedKeys(want) {
		if seen[ns] {
			continue
		}
		report := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": PolicyReportResource.GroupVersion().String(),
			"kind":       "PolicyReport",
			"metadata": map[string]any{
				"name":      ReportName,
				"namespace": ns,
				"labels":    map[string]any{managedByLabel: managedBy},
			},
			"results": resultsOf(want[ns], nil, now()),
			"summary": summaryOf(want[ns]),
		}}
		if _, err := reports.Namespace(ns).Create(ctx, report, metav1.CreateOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("creating PolicyReport %s/%s: %w", ns, ReportName, err))
			continue
		}
		res.Created++
	}
	return res, errors.Join(errs...)
}

// MaxResults bounds the results of one PolicyReport: an object is stored whole in etcd, whose
// request limit (1.5 MiB by default) about 2,000 results of runtimeguard's size would reach. The
// summary still counts every violation; runtimeguard audit lists them all.
const MaxResults = 1000

// resultsOf are the report's results, sorted by kind and name so that an unchanged audit gives
// equal results (and no write), at most MaxResults. A result keeps the timestamp of when it was
// first found.
func resultsOf(vs []Violation, since map[string]any, now time.Time) []any {
	sort.Slice(vs, func(i, j int) bool {
		if vs[i].Kind != vs[j].Kind {
			return vs[i].Kind < vs[j].Kind
		}
		return vs[i].Name < vs[j].Name
	})
	if len(vs) > MaxResults {
		vs = vs[:MaxResults]
	}
	out := make([]any, 0, len(vs))
	for _, v := range vs {
		stamp, ok := since[string(v.UID)+"/"+v.Reason]
		if !ok {
			stamp = map[string]any{"seconds": now.Unix(), "nanos": int64(0)}
		}
		props := map[string]any{"enforcement": v.Enforcement}
		if v.RuntimeClassName != "" {
			props["runtimeClassName"] = v.RuntimeClassName
		}
		if v.Owner != "" {
			props["owner"] = v.Owner
		}
		result := "fail"
		if v.Reason == ReasonUndecided {
			result = "error"
		}
		out = append(out, map[string]any{
			"policy":     policyName,
			"rule":       v.Reason,
			"result":     result,
			"scored":     true,
			"severity":   "high",
			"source":     policyName,
			"category":   "RuntimeClass",
			"message":    v.Message(),
			"timestamp":  stamp,
			"properties": props,
			"resources": []any{map[string]any{
				"apiVersion": v.APIVersion,
				"kind":       v.Kind,
				"namespace":  v.Namespace,
				"name":       v.Name,
				"uid":        string(v.UID),
			}},
		})
	}
	return out
}

// previousTimestamps maps uid/rule to the timestamp of each result of an existing report.
func previousTimestamps(report *unstructured.Unstructured) map[string]any {
	out := map[string]any{}
	results, _, _ := unstructured.NestedSlice(report.Object, "results")
	for _, r := range results {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		resources, _, _ := unstructured.NestedSlice(m, "resources")
		rule, _, _ := unstructured.NestedString(m, "rule")
		if len(resources) != 1 || m["timestamp"] == nil {
			continue
		}
		if ref, ok := resources[0].(map[string]any); ok {
			uid, _ := ref["uid"].(string)
			out[uid+"/"+rule] = m["timestamp"]
		}
	}
	return out
}

func summaryOf(vs []Violation) map[string]any {
	var fail, errs int64
	for _, v := range vs {
		if v.Reason == ReasonUndecided {
			errs++
		} else {
			fail++
		}
	}
	return map[string]any{"pass": int64(0), "fail": fail, "warn": int64(0), "error": errs, "skip": int64(0)}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
