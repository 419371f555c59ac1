package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// source is one audited kind and how to list a page of it.
type source struct {
	kind metav1.GroupVersionKind
	// resource names it in reports (pods, deployments.apps).
	resource string
	list     func(ctx context.Context, c kubernetes.Interface, ns string, o metav1.ListOptions) (runtime.Object, error)
}

// sources are listed in this order: Pods first (what runs), then the workloads.
var sources = []source{
	{metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, "pods", func(ctx context.Context, c kubernetes.Interface, ns string, o metav1.ListOptions) (runtime.Object, error) {
		return c.CoreV1().Pods(ns).List(ctx, o)
	}},
	{metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, "deployments.apps", func(ctx context.Context, c kubernetes.Interface, ns string, o metav1.ListOptions) (runtime.Object, error) {
		return c.AppsV1().Deployments(ns).List(ctx, o)
	}},
	{metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}, "statefulsets.apps", func(ctx context.Context, c kubernetes.Interface, ns string, o metav1.ListOptions) (runtime.Object, error) {
		return c.AppsV1().StatefulSets(ns).List(ctx, o)
	}},
	{metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DaemonSet"}, "daemonsets.apps", func(ctx context.Context, c kubernetes.Interface, ns string, o metav1.ListOptions) (runtime.Object, error) {
		return c.AppsV1().DaemonSets(ns).List(ctx, o)
	}},
	{metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}, "replicasets.apps", func(ctx context.Context, c kubernetes.Interface, ns string, o metav1.ListOptions) (runtime.Object, error) {
		return c.AppsV1().ReplicaSets(ns).List(ctx, o)
	}},
	{metav1.GroupVersionKind{Version: "v1", Kind: "ReplicationController"}, "replicationcontrollers", func(ctx context.Context, c kubernetes.Interface, ns string, o metav1.ListOptions) (runtime.Object, error) {
		return c.CoreV1().ReplicationControllers(ns).List(ctx, o)
	}},
	{metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}, "jobs.batch", func(ctx context.Context, c kubernetes.Interface, ns string, o metav1.ListOptions) (runtime.Object, error) {
		return c.BatchV1().Jobs(ns).List(ctx, o)
	}},
	{metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}, "cronjobs.batch", func(ctx context.Context, c kubernetes.Interface, ns string, o metav1.ListOptions) (runtime.Object, error) {
		return c.BatchV1().CronJobs(ns).List(ctx, o)
	}},
}

// Resources lists what the audit reads, for RBAC and docs.
func Resources() []string {
	out := make([]string, len(sources))
	for i, s := range sources {
		out[i] = s.resource
	}
	return out
}

// list reads src page by page, calling each for every item and paged after every page. Each page
// is tried up to Attempts times with a doubling backoff. client-go's tools/pager is not used: it
// neither retries a failed page nor continues past an expired continue token, and its fallback
// (one unpaged list of everything) is what bounded memory rules out. Here an expired token is
// replaced by the one the API server returns with the 410 (the rest of the list, possibly
// inconsistent with the pages already read, which an audit can live with).
func (a *Auditor) list(ctx context.Context, src source, ns string, each func(runtime.Object), paged func()) error {
	opts := metav1.ListOptions{Limit: a.PageSize}
	if opts.Limit <= 0 {
		opts.Limit = 500
	}
	for {
		page, err := a.page(ctx, src, ns, &opts)
		if err != nil {
			return err
		}
		if err := meta.EachListItem(page, func(obj runtime.Object) error {
			each(obj)
			return nil
		}); err != nil {
			return err
		}
		paged()
		l, err := meta.ListAccessor(page)
		if err != nil {
			return err
		}
		if opts.Continue = l.GetContinue(); opts.Continue == "" {
			return nil
		}
	}
}

// page reads one page with retries.
func (a *Auditor) page(ctx context.Context, src source, ns string, opts *metav1.ListOptions) (runtime.Object, error) {
	attempts := a.Attempts
	if attempts <= 0 {
		attempts = 5
	}
	backoff := a.Backoff
	if backoff <= 0 {
		backoff = 500 * time.Millisecond
	}
	var page runtime.Object
	var last error
	tries := 0
	err := wait.ExponentialBackoffWithContext(ctx, wait.Backoff{Duration: backoff, Factor: 2, Jitter: 0.1, Steps: attempts}, func(ctx context.Context) (bool, error) {
		tries++
		page, last = src.list(ctx, a.Client, ns, *opts)
		switch {
		case last == nil:
			return true, nil
		case apierrors.IsResourceExpired(last) || apierrors.IsGone(last):
			if next := continueOf(last); next != "" && opts.Continue != "" {
				opts.Continue = next // the rest of the list, from now on
				return false, nil
			}
			return false, last
		case permanent(last):
			return false, last
		}
		return false, nil
	})
	if err == nil {
		return page, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if last == nil {
		last = err
	}
	where := "in all namespaces"
	if ns != "" {
		where = fmt.Sprintf("in namespace %q", ns)
	}
	return nil, fmt.Errorf("listing %s %s failed after %d attempt(s): %w", src.resource, where, tries, last)
}

// continueOf is the continue token a 410 for an expired token carries.
func continueOf(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return status.Status().ListMeta.Continue
	}
	return ""
}

// permanent errors will not go away by retrying: the audit lacks permission, or the API server
// does not serve the kind.
func permanent(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsNotFound(err) ||
		apierrors.IsBadRequest(err) || apierrors.IsInvalid(err) || apierrors.IsMethodNotSupported(err) ||
		apierrors.IsNotAcceptable(err)
}
