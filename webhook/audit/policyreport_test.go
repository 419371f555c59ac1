package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
)

func reportClient(objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{PolicyReportResource: "PolicyReportList"}, objs...)
}

func violation(ns, name, uid, reason string) Violation {
	return Violation{APIVersion: "v1", Kind: "Pod", Namespace: ns, Name: name, UID: types.UID(uid), Reason: reason,
		Reasons: []string{reason}, Messages: []string{"spec.runtimeClassName is not set"}, Enforcement: "warn"}
}

func getReport(t *testing.T, c *dynamicfake.FakeDynamicClient, ns string) *unstructured.Unstructured {
	t.Helper()
	u, err := c.Resource(PolicyReportResource).Namespace(ns).Get(context.Background(), ReportName, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return u
}

func resultNames(t *testing.T, u *unstructured.Unstructured) []string {
	t.Helper()
	results, _, _ := unstructured.NestedSlice(u.Object, "results")
	var names []string
	for _, r := range results {
		m := r.(map[string]any)
		res := m["resources"].([]any)[0].(map[string]any)
		names = append(names, res["name"].(string)+":"+m["result"].(string)+":"+m["rule"].(string))
	}
	return names
}

func TestReportWriterKeepsOneReportPerNamespaceAndRemovesStaleResults(t *testing.T) {
	ctx := context.Background()
	// A report of another tool in the same namespace is never touched.
	other := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
		"metadata": map[string]any{"name": "kyverno-x", "namespace": "a", "labels": map[string]any{"app.kubernetes.io/managed-by": "kyverno"}},
	}}
	c := reportClient(other)
	clock := time.Unix(1000, 0)
	w := &ReportWriter{Client: c, Now: func() time.Time { return clock }}

	first := &Report{Violations: []Violation{violation("a", "p1", "u1", "missing-class"), violation("a", "p2", "u2", "weak-class"), violation("b", "q", "u3", "missing-class")},
		Undecided: []Undecided{{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "b", Name: "broken", UID: "u4", Error: "bad placement"}}}
	res, err := w.Write(ctx, first)
	if err != nil || res.Created != 2 {
		t.Fatalf("first write: %+v, %v; want 2 reports created", res, err)
	}
	if got := resultNames(t, getReport(t, c, "a")); len(got) != 2 || got[0] != "p1:fail:missing-class" || got[1] != "p2:fail:weak-class" {
		t.Fatalf("report a results %v", got)
	}
	b := getReport(t, c, "b")
	if got := resultNames(t, b); len(got) != 2 || got[0] != "broken:error:undecided" || got[1] != "q:fail:missing-class" {
		t.Fatalf("report b results %v", got)
	}
	if fail, _, _ := unstructured.NestedInt64(b.Object, "summary", "fail"); fail != 1 {
		t.Errorf("report b summary.fail %d, want 1", fail)
	}
	if errs, _, _ := unstructured.NestedInt64(b.Object, "summary", "error"); errs != 1 {
		t.Errorf("report b summary.error %d, want 1", errs)
	}

	// The same findings later: nothing is written, and timestamps stay those of the first sighting.
	clock = time.Unix(2000, 0)
	if res, err := w.Write(ctx, first); err != nil || res.Unchanged != 2 || res.Updated+res.Created+res.Deleted != 0 {
		t.Fatalf("unchanged write: %+v, %v", res, err)
	}

	// p1 deleted, b clean: p1's result goes, b's report is deleted, the other tool's stays.
	second := &Report{Violations: []Violation{violation("a", "p2", "u2", "weak-class")}}
	if res, err := w.Write(ctx, second); err != nil || res.Updated != 1 || res.Deleted != 1 {
		t.Fatalf("second write: %+v, %v; want a updated, b deleted", res, err)
	}
	a := getReport(t, c, "a")
	if got := resultNames(t, a); len(got) != 1 || got[0] != "p2:fail:weak-class" {
		t.Fatalf("report a results after p1 went %v", got)
	}
	results, _, _ := unstructured.NestedSlice(a.Object, "results")
	if s, _, _ := unstructured.NestedInt64(results[0].(map[string]any), "timestamp", "seconds"); s != 1000 {
		t.Errorf("p2's timestamp %d, want 1000 (first found)", s)
	}
	if getReport(t, c, "b") != nil {
		t.Error("report b still exists with no violation left")
	}
	if _, err := c.Resource(PolicyReportResource).Namespace("a").Get(ctx, "kyverno-x", metav1.GetOptions{}); err != nil {
		t.Errorf("another tool's report was touched: %v", err)
	}

	// An incomplete audit writes nothing.
	partial := &Report{Unread: []Unread{{Resource: "pods", Error: "timeout"}}}
	if _, err := w.Write(ctx, partial); err == nil || getReport(t, c, "a") == nil {
		t.Fatalf("an incomplete audit was written (err %v)", err)
	}
	if _, err := w.Write(ctx, &Report{Namespace: "a"}); err == nil {
		t.Fatal("a one-namespace audit was written")
	}
}

func TestReportWriterWithoutTheCRDSaysHowToInstallIt(t *testing.T) {
	c := reportClient()
	// What the API server answers for a resource it does not serve.
	c.PrependReactor("list", "policyreports", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewNotFound(PolicyReportResource.GroupResource(), "")
	})
	_, err := (&ReportWriter{Client: c}).Write(context.Background(), &Report{})
	if !errors.Is(err, ErrNoPolicyReportCRD) || !strings.Contains(err.Error(), "audit.policyReports.installCRD=true") {
		t.Fatalf("error %v, want ErrNoPolicyReportCRD naming the chart value", err)
	}
}

func TestReportWriterBoundsTheResultsOfOneReport(t *testing.T) {
	c := reportClient()
	r := &Report{}
	for i := range MaxResults + 5 {
		r.Violations = append(r.Violations, violation("big", fmt.Sprintf("p-%04d", i), fmt.Sprint(i), "missing-class"))
	}
	if _, err := (&ReportWriter{Client: c}).Write(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	u := getReport(t, c, "big")
	results, _, _ := unstructured.NestedSlice(u.Object, "results")
	fail, _, _ := unstructured.NestedInt64(u.Object, "summary", "fail")
	if len(results) != MaxResults || fail != MaxResults+5 {
		t.Fatalf("%d results, summary.fail %d; want %d results and every violation counted", len(results), fail, MaxResults)
	}
}
