package audit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

// pipeline decides with the default policy over the webhook's test cluster: tenant-a is
// untrusted, tenant-b untrusted in warn mode, payments financial, legacy ignored.
func pipeline(t *testing.T) *webhook.Pipeline {
	t.Helper()
	opts := webhook.DefaultOptions()
	opts.Namespace = "runtimeguard"
	view, err := cluster.LoadFiles(opts.ViewOptions(), "../testdata/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	set, err := opts.LoadPolicies()
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := opts.NewPipeline(context.Background(), set, view, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func pod(ns, name, class string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(ns + "-" + name)},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example.com/app:1"}}},
	}
	if class != "" {
		p.Spec.RuntimeClassName = ptr.To(class)
	}
	return p
}

func deployment(ns, name, class string) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(ns + "-" + name)}}
	d.Spec.Template.Spec = pod(ns, name, class).Spec
	return d
}

// pagedPods makes the fake clientset serve Pods in pages of the request's Limit, as the API
// server does (client-go's fake ignores Limit and Continue); it records the limits asked for.
func pagedPods(cs *fake.Clientset, pods []corev1.Pod, limits *[]int64) {
	cs.PrependReactor("list", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		o := action.(k8stesting.ListActionImpl).ListOptions
		*limits = append(*limits, o.Limit)
		start := 0
		if o.Continue != "" {
			start, _ = strconv.Atoi(o.Continue)
		}
		end := min(start+int(o.Limit), len(pods))
		list := &corev1.PodList{Items: pods[start:end]}
		if end < len(pods) {
			list.Continue = strconv.Itoa(end)
		}
		return true, list, nil
	})
}

func TestRunReportsViolationsOfPodsAndTopLevelWorkloads(t *testing.T) {
	owner := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "d", Controller: ptr.To(true)}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "web-1", OwnerReferences: []metav1.OwnerReference{owner}}}
	rs.Spec.Template.Spec = pod("payments", "x", "gvisor").Spec
	owned := pod("tenant-b", "web-1-abc", "")
	owned.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-1", UID: "rs", Controller: ptr.To(true)}}
	done := pod("tenant-a", "finished", "")
	done.Status.Phase = corev1.PodSucceeded
	cronJob := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "nightly"}}
	cronJob.Spec.JobTemplate.Spec.Template.Spec = pod("payments", "x", "gvisor").Spec
	cs := fake.NewClientset(
		pod("tenant-a", "compliant", "gvisor"),
		owned, // created in warn mode: no class
		done,
		pod("kube-system", "exempt", ""),
		pod("payments", "weak", "gvisor"),
		deployment("payments", "web", "gvisor"), // top level: decided
		rs,                                      // controlled by the Deployment: skipped
		deployment("tenant-a", "fine", ""),      // the class would be injected into its Pods
		cronJob,
	)
	r, err := (&Auditor{Client: cs, Pipeline: pipeline(t)}).Run(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range r.Violations {
		got = append(got, fmt.Sprintf("%s %s/%s %s %s owner=%s", v.Kind, v.Namespace, v.Name, v.Reason, v.Enforcement, v.Owner))
	}
	want := []string{
		"Pod payments/weak weak-class enforce owner=",
		"Pod tenant-b/web-1-abc missing-class warn owner=ReplicaSet/web-1",
		"Deployment payments/web weak-class enforce owner=",
		"CronJob payments/nightly weak-class enforce owner=",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if r.Checked != 6 || r.Exempt != 1 || r.Skipped != 2 || !r.Complete() || len(r.Undecided) != 0 {
		t.Fatalf("checked %d exempt %d skipped %d unread %v undecided %v; want 6, 1, 2, complete", r.Checked, r.Exempt, r.Skipped, r.Unread, r.Undecided)
	}
	if m := r.Violations[2].Message(); !strings.HasPrefix(m, `deployment "web": namespace "payments" is runtimeguard.io/tenancy=financial`) {
		t.Errorf("deployment message %q", m)
	}
}

func TestRunListsInPagesOfTheChunkSize(t *testing.T) {
	var pods []corev1.Pod
	for i := range 1203 {
		class := "gvisor"
		if i%100 == 0 {
			class = "" // 13 Pods created in warn mode
		}
		pods = append(pods, *pod("tenant-a", fmt.Sprintf("p-%04d", i), class))
	}
	cs := fake.NewClientset()
	var limits []int64
	pagedPods(cs, pods, &limits)
	var progress []Progress
	a := &Auditor{Client: cs, Pipeline: pipeline(t), Progress: func(p Progress) {
		if p.Resource == "pods" {
			progress = append(progress, p)
		}
	}}
	r, err := a.Run(context.Background(), "tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	if len(limits) != 3 || limits[0] != 500 || limits[2] != 500 {
		t.Errorf("pod list limits %v, want 3 pages of 500", limits)
	}
	if r.Checked != 1203 || len(r.Violations) != 13 {
		t.Errorf("checked %d, violations %d; want 1203 and 13", r.Checked, len(r.Violations))
	}
	if len(progress) != 3 || progress[2].Read != 1203 || progress[0].Read != 500 {
		t.Errorf("progress %+v, want one per page, reaching 1203", progress)
	}
}

func TestRunRetriesAFailingPageThenReportsWhatItCouldNotRead(t *testing.T) {
	var pods []corev1.Pod
	for i := range 25 {
		pods = append(pods, *pod("tenant-a", fmt.Sprintf("p-%02d", i), ""))
	}
	t.Run("a page that fails twice is retried and the audit completes", func(t *testing.T) {
		cs := fake.NewClientset()
		var limits []int64
		pagedPods(cs, pods, &limits)
		var failures atomic.Int32
		cs.PrependReactor("list", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
			if action.(k8stesting.ListActionImpl).ListOptions.Continue == "10" && failures.Add(1) <= 2 {
				return true, nil, apierrors.NewServiceUnavailable("etcd leader changed")
			}
			return false, nil, nil
		})
		r, err := (&Auditor{Client: cs, Pipeline: pipeline(t), PageSize: 10, Backoff: time.Millisecond}).Run(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		if !r.Complete() || len(r.Violations) != 25 || failures.Load() != 3 {
			t.Fatalf("complete %v (unread %v), violations %d, failed calls %d; want complete, 25, 2 failures then success", r.Complete(), r.Unread, len(r.Violations), failures.Load()-1)
		}
	})
	t.Run("a page that keeps failing is reported unread, with what was read before, and the other kinds are still audited", func(t *testing.T) {
		cs := fake.NewClientset(deployment("payments", "web", "gvisor"))
		var limits []int64
		pagedPods(cs, pods, &limits)
		cs.PrependReactor("list", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
			if action.(k8stesting.ListActionImpl).ListOptions.Continue == "20" {
				return true, nil, apierrors.NewTooManyRequests("slow down", 0)
			}
			return false, nil, nil
		})
		r, err := (&Auditor{Client: cs, Pipeline: pipeline(t), PageSize: 10, Attempts: 3, Backoff: time.Millisecond}).Run(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		if r.Complete() || len(r.Unread) != 1 {
			t.Fatalf("unread %v, want the pod list", r.Unread)
		}
		u := r.Unread[0]
		if u.Resource != "pods" || u.Read != 20 || !strings.Contains(u.Error, "listing pods in all namespaces failed after 3 attempt(s): slow down") {
			t.Errorf("unread %+v", u)
		}
		if len(r.Violations) != 21 || r.Violations[20].Kind != "Deployment" {
			t.Errorf("violations %d (want the 20 pods read and the deployment)", len(r.Violations))
		}
	})
	t.Run("a forbidden list is not retried", func(t *testing.T) {
		cs := fake.NewClientset()
		var calls atomic.Int32
		cs.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
			calls.Add(1)
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", fmt.Errorf("RBAC"))
		})
		r, err := (&Auditor{Client: cs, Pipeline: pipeline(t), Backoff: time.Millisecond}).Run(context.Background(), "tenant-a")
		if err != nil {
			t.Fatal(err)
		}
		if calls.Load() != 1 || len(r.Unread) != 1 || !strings.Contains(r.Unread[0].Error, `in namespace "tenant-a" failed after 1 attempt(s)`) {
			t.Fatalf("calls %d, unread %v", calls.Load(), r.Unread)
		}
	})
	t.Run("an expired continue token goes on with the token of the 410", func(t *testing.T) {
		cs := fake.NewClientset()
		var limits []int64
		pagedPods(cs, pods, &limits)
		cs.PrependReactor("list", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
			if action.(k8stesting.ListActionImpl).ListOptions.Continue == "10" {
				gone := apierrors.NewResourceExpired("The provided continue parameter is too old")
				gone.ErrStatus.ListMeta.Continue = "15" // what the API server offers: the rest, inconsistently
				return true, nil, gone
			}
			return false, nil, nil
		})
		r, err := (&Auditor{Client: cs, Pipeline: pipeline(t), PageSize: 10, Backoff: time.Millisecond}).Run(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		if !r.Complete() || len(r.Violations) != 20 {
			t.Fatalf("complete %v, violations %d; want complete with pods 0-9 and 15-24", r.Complete(), len(r.Violations))
		}
	})
}

func TestRunReportsObjectsItCannotDecideAndGoesOn(t *testing.T) {
	// Node affinity with an empty term: the API server would refuse it, but an audit must
	// survive whatever a list returns.
	broken := deployment("tenant-a", "broken", "")
	broken.Spec.Template.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{}}},
	}}
	cs := fake.NewClientset(broken, pod("payments", "weak", "gvisor"))
	r, err := (&Auditor{Client: cs, Pipeline: pipeline(t)}).Run(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Violations) != 1 || r.Violations[0].Name != "weak" {
		t.Errorf("violations %+v, want the weak pod", r.Violations)
	}
	if len(r.Undecided) != 1 || r.Undecided[0].Name != "broken" || !strings.Contains(r.Undecided[0].Error, `deployment "broken": pod placement is invalid`) || !r.Complete() {
		t.Fatalf("undecided %+v, want the broken deployment (the lists were all read)", r.Undecided)
	}
}
