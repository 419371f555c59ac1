package harness

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Node labels the standard classes select on.
const (
	GVisorLabel = "sandbox.runtimeguard.io/gvisor"
	KataLabel   = "katacontainers.io/kata-runtime"
	GPULabel    = "nvidia.com/gpu.present"
)

// PoolLabel groups the standard Nodes into node pools, as managed clusters label them: Pods
// select a pool with it, which is what placement-aware decisions must see through.
const PoolLabel = "pool"

// GPUResource is the extended resource GPU Pods request and the GPU Node offers.
const GPUResource corev1.ResourceName = "nvidia.com/gpu"

// StandardClasses are the RuntimeClasses of the examples: gVisor, Kata, NVIDIA and gVisor
// with NVIDIA, with overhead and scheduling like real installations.
func StandardClasses() []*nodev1.RuntimeClass {
	class := func(name, handler, label string, cpu, mem string, tolerate bool) *nodev1.RuntimeClass {
		rc := &nodev1.RuntimeClass{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Handler:    handler,
			Overhead: &nodev1.Overhead{PodFixed: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem),
			}},
			Scheduling: &nodev1.Scheduling{NodeSelector: map[string]string{label: "true"}},
		}
		if tolerate {
			rc.Scheduling.Tolerations = []corev1.Toleration{{Key: label, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
		}
		return rc
	}
	return []*nodev1.RuntimeClass{
		class("gvisor", "runsc", GVisorLabel, "250m", "64Mi", true),
		class("kata", "kata-qemu", KataLabel, "250m", "160Mi", false),
		class("nvidia", "nvidia", GPULabel, "10m", "16Mi", false),
		class("gvisor-nvidia", "runsc-nvidia", GPULabel, "250m", "64Mi", false),
	}
}

// NodeSpec describes a Node to create.
type NodeSpec struct {
	Name     string
	Labels   map[string]string
	Handlers []string // status.runtimeHandlers; empty = the node reports none
	NotReady bool
	Cordoned bool
	Taints   []corev1.Taint
	// GPUs is the node's nvidia.com/gpu capacity (0: none).
	GPUs int64
}

// nodeCapacity is what every Node offers the scheduler. There is no kubelet to free what a
// bound Pod holds, and Pods accumulate over the suite (thousands in the latency scenario,
// each with its RuntimeClass overhead), so it is large enough never to be the reason a Pod
// is not bound: placement is decided by labels, taints and handlers only.
var nodeCapacity = corev1.ResourceList{
	corev1.ResourceCPU:    resource.MustParse("100k"),
	corev1.ResourceMemory: resource.MustParse("1Pi"),
	corev1.ResourcePods:   resource.MustParse("100k"),
}

// Object returns the Node object.
func (s NodeSpec) Object() *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Labels: s.Labels},
		Spec:       corev1.NodeSpec{Unschedulable: s.Cordoned, Taints: s.Taints},
	}
	status := corev1.ConditionTrue
	if s.NotReady {
		status = corev1.ConditionFalse
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status, Reason: "Test", LastHeartbeatTime: metav1.Now()}}
	for _, h := range s.Handlers {
		n.Status.RuntimeHandlers = append(n.Status.RuntimeHandlers, corev1.NodeRuntimeHandler{Name: h})
	}
	n.Status.Capacity = nodeCapacity.DeepCopy()
	if s.GPUs > 0 {
		n.Status.Capacity[GPUResource] = *resource.NewQuantity(s.GPUs, resource.DecimalSI)
	}
	n.Status.Allocatable = n.Status.Capacity.DeepCopy()
	return n
}

// ApplyNode creates or updates a Node, spec and status (status is a subresource: written
// separately, as a kubelet would).
func ApplyNode(ctx context.Context, c client.Client, s NodeSpec) error {
	want := s.Object()
	existing := &corev1.Node{}
	err := c.Get(ctx, client.ObjectKey{Name: s.Name}, existing)
	switch {
	case apierrors.IsNotFound(err):
		created := want.DeepCopy()
		if err := c.Create(ctx, created); err != nil {
			return err
		}
		// The TaintNodesByCondition admission plugin adds node.kubernetes.io/not-ready on
		// create; in a real cluster the node lifecycle controller lifts it once the kubelet
		// reports Ready. There is no kubelet here, so do its part.
		created.Spec.Taints = want.Spec.Taints
		if err := c.Update(ctx, created); err != nil {
			return err
		}
		existing = created
	case err != nil:
		return err
	default:
		existing.Labels = want.Labels
		existing.Spec.Unschedulable = want.Spec.Unschedulable
		existing.Spec.Taints = want.Spec.Taints
		if err := c.Update(ctx, existing); err != nil {
			return err
		}
	}
	existing.Status = want.Status
	return c.Status().Update(ctx, existing)
}

// StandardNodes run one runtime each, each in a pool of its own: a gVisor node (tainted, as
// sandbox pools usually are), a Kata node, a GPU node with the NVIDIA runtimes (and GPUs the
// scheduler can hand out: GPU Pods accumulate over the suite) and a general node with runc
// only.
func StandardNodes() []NodeSpec {
	return []NodeSpec{
		SandboxNode("sandbox-1"),
		{Name: "kata-1", Labels: map[string]string{KataLabel: "true", PoolLabel: "kata"}, Handlers: []string{"runc", "kata-qemu"}},
		{Name: "gpu-1", Labels: map[string]string{GPULabel: "true", PoolLabel: "gpu"}, Handlers: []string{"runc", "nvidia", "runsc-nvidia"}, GPUs: 1000},
		GeneralNode("general-1"),
	}
}

// SandboxNode is a node of the sandbox pool: it runs gVisor (runsc) besides runc and is
// tainted so that only Pods with the gvisor class's toleration land on it.
func SandboxNode(name string) NodeSpec {
	return NodeSpec{Name: name, Labels: map[string]string{GVisorLabel: "true", PoolLabel: "sandbox"}, Handlers: []string{"runc", "runsc"},
		Taints: []corev1.Taint{{Key: GVisorLabel, Value: "true", Effect: corev1.TaintEffectNoSchedule}}}
}

// GeneralNode is a node of the general pool: runc only.
func GeneralNode(name string) NodeSpec {
	return NodeSpec{Name: name, Labels: map[string]string{PoolLabel: "general"}, Handlers: []string{"runc"}}
}

// ApplyClasses creates or replaces RuntimeClasses.
func ApplyClasses(ctx context.Context, c client.Client, classes []*nodev1.RuntimeClass) error {
	for _, rc := range classes {
		rc = rc.DeepCopy()
		existing := &nodev1.RuntimeClass{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(rc), existing); err == nil {
			if err := c.Delete(ctx, existing); err != nil {
				return err
			}
		}
		if err := c.Create(ctx, rc); err != nil {
			return err
		}
	}
	return nil
}

// EnsureNamespace creates a Namespace with labels (or updates its labels).
func EnsureNamespace(ctx context.Context, c client.Client, name string, labels map[string]string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	err := c.Create(ctx, ns)
	if apierrors.IsAlreadyExists(err) {
		existing := &corev1.Namespace{}
		if err := c.Get(ctx, client.ObjectKey{Name: name}, existing); err != nil {
			return err
		}
		if existing.Labels == nil {
			existing.Labels = map[string]string{}
		}
		for k, v := range labels {
			existing.Labels[k] = v
		}
		return c.Update(ctx, existing)
	}
	return err
}

// Pod returns a minimal Pod.
func Pod(namespace, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/app:1.0"}}},
	}
}
