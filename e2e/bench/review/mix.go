package review

import (
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Variant is one kind of Pod in a mix and the answer the webhook must give for it.
type Variant struct {
	Name     string
	Template *Template
	// Class is the class the mutating answer's patch must set; "" expects an allowed answer
	// without a patch. In a Validate variant the Pod already names Class.
	Class string
	// Validate variants go to the validating webhook with spec.runtimeClassName set to Class, as
	// the API server sends them after the mutating webhook injected it: the answer must allow
	// them without a patch or a warning.
	Validate bool
}

// Verifier returns the check of v's answers.
func (v Variant) Verifier() *Verifier {
	if v.Validate {
		return NewValidateVerifier()
	}
	return NewVerifier(v.Class)
}

// NodePlaceholder stands for a node name in a template (a Field's placeholder).
const NodePlaceholder = "node-NNNNN"

// The generated clusters' layout (e2e/bench/internal/fixtures), restated here so the
// expected answers do not come from the code under test: node i is named node-%05d, is in
// pool sandbox (gVisor, tainted) when i%10 == 0, kata when i%10 == 1, general (runc only)
// when i%10 >= 4, and in zone eu-west-1a, b, c by i%3.
const (
	poolLabel = "pool"
	zoneLabel = "topology.kubernetes.io/zone"
	osLabel   = "kubernetes.io/os"
)

func nodeName(i int) string { return fmt.Sprintf("node-%05d", i) }

// Mixes lists the mixes by name, for --mix.
var Mixes = map[string]string{
	"template":  "the benchmark Pod as is (no placement constraint): gvisor",
	"pool":      "the benchmark Pod with nodeSelector kubernetes.io/os=linux plus pool=sandbox (gvisor), kata (kata) or general (nothing to inject), or os only (gvisor)",
	"bound":     "nodeName-bound and DaemonSet-pinned Pods (matchFields metadata.name, one node after another) on sandbox, kata and general nodes, and zone In / NotIn affinity",
	"realistic": "70% the benchmark Deployment Pod (all alike), 30% StatefulSet and Job Pods with the labels their controllers give each Pod (pod-name, pod-index, Job uid and name: unique per request): gvisor",
}

// Mix returns the variants of mix name, for the mutating webhook, for a generated cluster of
// nodes nodes; requests take them in turn.
func Mix(name string, nodes int) ([]Variant, error) { return mix(name, nodes, false) }

// ValidateMix returns the variants of mix name for the validating webhook: each Pod names the
// class the mutating webhook injects into it. Mixes with Pods that get no class are refused: in
// enforce mode the validating webhook denies them, which measures a denial, not an admission.
func ValidateMix(name string, nodes int) ([]Variant, error) { return mix(name, nodes, true) }

func mix(name string, nodes int, validate bool) ([]Variant, error) {
	var vs []Variant
	add := func(vname, class string, edit func(*corev1.Pod), fields ...Field) error {
		pod := Pod()
		edit(pod)
		if validate {
			if class == "" {
				return fmt.Errorf("mix %s, %s: the Pod gets no class, so the validating webhook would deny it; use the mix with the mutating webhook", name, vname)
			}
			pod.Spec.RuntimeClassName = ptr.To(class)
		}
		t, err := NewTemplate(pod, fields...)
		if err != nil {
			return fmt.Errorf("mix %s, %s: %w", name, vname, err)
		}
		vs = append(vs, Variant{Name: vname, Template: t, Class: class, Validate: validate})
		return nil
	}
	selector := func(pool string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.NodeSelector = map[string]string{osLabel: "linux"}
			if pool != "" {
				p.Spec.NodeSelector[poolLabel] = pool
			}
		}
	}
	// Bound and pinned Pods walk the pool's nodes, one turn of the mix's 6 variants after
	// another, as a DaemonSet rollout does: each is a distinct decision.
	groups := uint64(max(nodes/10, 1))
	in := func(offset int) Field {
		return Field{Placeholder: NodePlaceholder, Value: func(i uint64) string { return nodeName(10*int(i/6%groups) + offset) }}
	}
	var err error
	switch name {
	case "template":
		err = add("template", ExpectedClass, func(*corev1.Pod) {})
	case "pool":
		for _, v := range []struct{ pool, class string }{{"sandbox", "gvisor"}, {"kata", "kata"}, {"general", ""}, {"", "gvisor"}} {
			vname := "pool=" + v.pool
			if v.pool == "" {
				vname = "kubernetes.io/os=linux only"
			}
			if err = add(vname, v.class, selector(v.pool)); err != nil {
				return nil, err
			}
		}
	case "bound":
		if nodes < 30 {
			// Below 30 nodes zone c has no gVisor node (node 20 is the first).
			return nil, fmt.Errorf("mix bound needs a generated cluster of at least 30 nodes, not %d", nodes)
		}
		bind := func(p *corev1.Pod) { p.Spec.NodeName = NodePlaceholder }
		pin := func(p *corev1.Pod) { daemonSetPod(p, NodePlaceholder) }
		zone := func(op corev1.NodeSelectorOperator, zones ...string) func(*corev1.Pod) {
			return func(p *corev1.Pod) {
				p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
					NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: zoneLabel, Operator: op, Values: zones}}}}}}}
			}
		}
		for _, v := range []struct {
			name, class string
			edit        func(*corev1.Pod)
			fields      []Field
		}{
			{"nodeName sandbox", "gvisor", bind, []Field{in(0)}},
			{"nodeName kata", "kata", bind, []Field{in(1)}},
			{"daemonset sandbox", "gvisor", pin, []Field{in(0)}},
			{"daemonset general", "", pin, []Field{in(4)}},
			{"zone In [a]", "gvisor", zone(corev1.NodeSelectorOpIn, "eu-west-1a"), nil},
			{"zone NotIn [a,b]", "gvisor", zone(corev1.NodeSelectorOpNotIn, "eu-west-1a", "eu-west-1b"), nil},
		} {
			if err = add(v.name, v.class, v.edit, v.fields...); err != nil {
				return nil, err
			}
		}
	case "realistic":
		// 20 turns: 14 Deployment Pods, 3 StatefulSet and 3 Job Pods, spread out. The
		// Deployment Pods share one template (cache hits after the first); the others carry
		// per-request values.
		var deployment Variant
		if err = add("deployment", ExpectedClass, func(*corev1.Pod) {}); err != nil {
			return nil, err
		}
		deployment, vs = vs[0], vs[:0]
		var sts, job Variant
		if err = add("statefulset", ExpectedClass, statefulSetPod, statefulSetFields()...); err != nil {
			return nil, err
		}
		if err = add("job", ExpectedClass, jobPod, jobFields()...); err != nil {
			return nil, err
		}
		sts, job, vs = vs[0], vs[1], vs[:0]
		others := []int{3, 6, 9, 13, 16, 19}
		for k := 0; k < 20; k++ {
			v := deployment
			if j := slices.Index(others, k); j >= 0 {
				v = [2]Variant{sts, job}[j%2]
			}
			vs = append(vs, v)
		}
	default:
		return nil, fmt.Errorf("unknown mix %q (template, pool, bound, realistic)", name)
	}
	return vs, err
}

// daemonSetPod makes p what the DaemonSet controller creates for node: pinned with
// matchFields metadata.name, with the tolerations it adds to every DaemonSet Pod.
func daemonSetPod(p *corev1.Pod, node string) {
	p.OwnerReferences[0].Kind, p.OwnerReferences[0].Name = "DaemonSet", "node-agent"
	p.GenerateName = "node-agent-"
	p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{node}}}}}}}}
	p.Spec.Tolerations = nil
	for _, t := range []struct {
		key    string
		effect corev1.TaintEffect
	}{
		{"node.kubernetes.io/not-ready", corev1.TaintEffectNoExecute}, {"node.kubernetes.io/unreachable", corev1.TaintEffectNoExecute},
		{"node.kubernetes.io/disk-pressure", corev1.TaintEffectNoSchedule}, {"node.kubernetes.io/memory-pressure", corev1.TaintEffectNoSchedule},
		{"node.kubernetes.io/pid-pressure", corev1.TaintEffectNoSchedule}, {"node.kubernetes.io/unschedulable", corev1.TaintEffectNoSchedule},
	} {
		p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: t.key, Operator: corev1.TolerationOpExists, Effect: t.effect})
	}
	p.Spec.PriorityClassName, p.Spec.Priority = "system-node-critical", ptr.To[int32](2000001000)
}

// Per-request values of the realistic mix's StatefulSet and Job Pods.
const (
	ordinalPlaceholder  = "STSORDINALPLACEHOLDER"
	jobNamePlaceholder  = "JOBNAMEPLACEHOLDER"
	jobUIDPlaceholder   = "JOBUIDPLACEHOLDER"
	jobIndexPlaceholder = "JOBINDEXPLACEHOLDER"
)

// statefulSetPod makes p what the StatefulSet controller creates for StatefulSet web: a Pod
// named web-<ordinal> (a name, not a generateName) with the per-Pod labels pod-name and
// pod-index, the revision's controller-revision-hash, hostname and subdomain.
func statefulSetPod(p *corev1.Pod) {
	podName := "web-" + ordinalPlaceholder
	p.GenerateName, p.Name = "", podName
	delete(p.Labels, "pod-template-hash")
	p.Labels["app.kubernetes.io/name"], p.Labels["app.kubernetes.io/component"] = "web", "cache"
	p.Labels["statefulset.kubernetes.io/pod-name"] = podName
	p.Labels["apps.kubernetes.io/pod-index"] = ordinalPlaceholder
	p.Labels["controller-revision-hash"] = "web-6c8f9d7b54"
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "web",
		UID: "5d1e9c3a-7b2f-4e8d-a6c4-0f9b8e7d6c5a", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}
	p.Spec.Hostname, p.Spec.Subdomain = podName, "web"
}

// statefulSetFields give request i the ordinal i: every StatefulSet Pod is another one.
func statefulSetFields() []Field {
	return []Field{{Placeholder: ordinalPlaceholder, Value: func(i uint64) string { return strconv.FormatUint(i, 10) }}}
}

// jobPod makes p what the Job controller creates for an Indexed Job: generateName
// <job>-<index>-, the Job's uid and name in both the batch.kubernetes.io/ and the legacy
// labels, the completion index as label and annotation, the tracking finalizer.
func jobPod(p *corev1.Pod) {
	p.GenerateName = jobNamePlaceholder + "-" + jobIndexPlaceholder + "-"
	delete(p.Labels, "pod-template-hash")
	p.Labels["app.kubernetes.io/name"], p.Labels["app.kubernetes.io/component"] = "nightly-report", "batch"
	for k, v := range map[string]string{
		"batch.kubernetes.io/controller-uid":       jobUIDPlaceholder,
		"batch.kubernetes.io/job-name":             jobNamePlaceholder,
		"controller-uid":                           jobUIDPlaceholder,
		"job-name":                                 jobNamePlaceholder,
		"batch.kubernetes.io/job-completion-index": jobIndexPlaceholder,
	} {
		p.Labels[k] = v
	}
	p.Annotations["batch.kubernetes.io/job-completion-index"] = jobIndexPlaceholder
	p.Finalizers = []string{"batch.kubernetes.io/job-tracking"}
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: jobNamePlaceholder,
		UID: jobUIDPlaceholder, Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}
	p.Spec.RestartPolicy = corev1.RestartPolicyNever
	p.Spec.Hostname, p.Spec.Subdomain = jobNamePlaceholder+"-"+jobIndexPlaceholder, ""
}

// jobFields make every request's Job Pod come from a new Job (as a CronJob's runs do): its
// own name (CronJob style, <cronjob>-<scheduled minute>) and uid, at completion index i%16.
func jobFields() []Field {
	return []Field{
		{Placeholder: jobNamePlaceholder, Value: func(i uint64) string { return "nightly-report-" + strconv.FormatUint(29_000_000+i, 10) }},
		{Placeholder: jobUIDPlaceholder, Value: jobUID},
		{Placeholder: jobIndexPlaceholder, Value: func(i uint64) string { return strconv.FormatUint(i%16, 10) }},
	}
}

// jobUID is a UUID-shaped value determined by i; its last group is a bijection of i, so no
// two requests share one.
func jobUID(i uint64) string {
	h := (i + 0x632be59bd9b4e019) * 0x9e3779b97f4a7c15
	h ^= h >> 29
	return fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", uint32(h>>32), uint16(h>>16), uint16(h)&0xfff, uint16(h>>4)&0xfff, (i*0x5deece66d)&0xffffffffffff)
}
