// Package audit decides every Pod and workload template that already exists in the cluster the
// way the validating webhook would decide it today (webhook.Pipeline.Recheck), and reports those
// the current policy would reject: Pods created while their namespace was in warn mode or before
// runtimeguard was installed, classes too weak since the namespace's tenancy changed, classes
// whose handler no reachable node runs any more.
//
// What is decided:
//   - every Pod that can still run (phases Succeeded and Failed are skipped: they never run
//     again). Pods are always decided, even when a workload owns them: a Pod differs from its
//     template (the class is injected into Pods, never into templates; a Pod created in warn mode
//     got nothing), and the Pod is what runs;
//   - every workload (Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job,
//     CronJob) that no other audited workload controls: a Deployment's ReplicaSets and a CronJob's
//     Jobs carry copies of their owner's template (current or past revisions, often scaled to
//     zero), so the owner, which is what people edit, stands for them.
//
// Lists are paged (Limit/Continue), so memory stays bounded however many Pods there are; a page
// that fails is retried with backoff, and a list that still fails is reported as unread rather
// than ending the audit, as is an object that cannot be decided.
package audit
