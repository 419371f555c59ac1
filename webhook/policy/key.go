package policy

import (
	"context"
	"encoding/binary"
	"slices"
	"strings"
	"sync"

	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

// projected is one request as the policy may read it: labels and annotations cut to what
// data.config.reads declares, resource claims resolved against the cluster view. The cache key
// and the Rego input are both built from it, so they cannot disagree.
type projected struct {
	nsLabels, nsAnnotations, podLabels, podAnnotations map[string]string
	generateName                                       string
	claims                                             []cluster.ResolvedClaim
}

// project cuts req to what the policy reads. Claims are resolved here, before the decision
// cache is consulted: they are part of the key, so a template created later gives a new key
// instead of a stale decision, and claim events need not move the cluster generation.
func (r *Reads) project(ctx context.Context, req Request) projected {
	generateName := ""
	if r.PodGenerateName {
		generateName = req.Pod.Metadata.GenerateName
	}
	return projected{
		generateName:   generateName,
		nsLabels:       r.NamespaceLabels.Filter(req.Namespace.Labels),
		nsAnnotations:  r.NamespaceAnnotations.Filter(req.Namespace.Annotations),
		podLabels:      r.PodLabels.Filter(req.Pod.Metadata.Labels),
		podAnnotations: r.PodAnnotations.Filter(req.Pod.Metadata.Annotations),
		claims:         req.Claims.Resolve(ctx, req.Pod.Metadata.Namespace, req.Pod.Spec.ResourceClaims),
	}
}

// keyBuffers recycles key buffers: a key is built for every admission, cache hit or not.
var keyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// cacheKey appends to b the decision cache key of req: every field of the input the policy can
// read except the cluster part (the cache's generation stands for that), length-prefixed so no
// two inputs share a key. Building it costs a few hundred nanoseconds where building the Rego
// input costs microseconds, so a cache hit never builds the input.
func cacheKey(b []byte, req Request, in *projected) []byte {
	k := keyWriter(b)
	k.str(req.Operation)
	k.str(req.Namespace.Name)
	k.strMap(in.nsLabels)
	k.strMap(in.nsAnnotations)
	p := req.Pod
	k.str(in.generateName)
	k.str(p.Metadata.Namespace)
	k.strMap(in.podLabels)
	k.strMap(in.podAnnotations)
	k.str(p.RuntimeClassName())
	k.str(p.Spec.NodeName)
	k.strMap(p.Spec.NodeSelector)
	k.flags(p.Spec.HostNetwork, p.Spec.HostPID, p.Spec.HostIPC)
	k.containers(p.Spec.Containers)
	k.containers(p.Spec.InitContainers)
	k.num(len(in.claims))
	for _, c := range in.claims {
		k.str(c.Name)
		k.str(c.Source)
		k.num(len(c.DeviceClasses))
		for _, dc := range c.DeviceClasses {
			k.str(dc)
		}
		k.flags(c.Resolved)
		k.str(c.Reason)
	}
	k.reach(req.Reach, req.Cluster)
	return k
}

type keyWriter []byte

func (k *keyWriter) str(s string) {
	*k = binary.AppendUvarint(*k, uint64(len(s)))
	*k = append(*k, s...)
}

func (k *keyWriter) num(n int) { *k = binary.AppendVarint(*k, int64(n)) }

func (k *keyWriter) flags(bs ...bool) {
	var f byte
	for i, b := range bs {
		if b {
			f |= 1 << i
		}
	}
	*k = append(*k, f)
}

// strMap writes m in key order; nil and empty are the same, as they are to the policy.
func (k *keyWriter) strMap(m map[string]string) {
	k.num(len(m))
	if len(m) == 0 {
		return
	}
	var buf [16]string
	keys := buf[:0]
	for key := range m {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	for _, key := range keys {
		k.str(key)
		k.str(m[key])
	}
}

// containers writes what containersTerm reads: name, image, privileged and the extended
// resources (names with a "/"), as written: "1" and "1000m" are different keys for the same
// input, which costs at most a miss.
func (k *keyWriter) containers(cs []Container) {
	k.num(len(cs))
	for i := range cs {
		c := &cs[i]
		k.str(c.Name)
		k.str(c.Image)
		k.flags(c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged)
		k.extended(c.Resources.Requests)
		k.extended(c.Resources.Limits)
	}
}

func (k *keyWriter) extended(m map[string]Quantity) {
	var buf [8]string
	names := buf[:0]
	for name := range m {
		if strings.Contains(name, "/") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	k.num(len(names))
	for _, name := range names {
		k.str(name)
		k.str(string(m[name]))
	}
}

// reach writes input.placement. A Pod that asks nothing of its Node gets the snapshot's own
// reach, which the cache generation already stands for, so only that is written.
func (k *keyWriter) reach(r *cluster.PodReach, snap *cluster.Snapshot) {
	switch {
	case r == nil:
		*k = append(*k, 'N')
		return
	case snap != nil && r == snap.Unconstrained():
		*k = append(*k, 'U')
		return
	}
	*k = append(*k, 'R')
	k.str(r.Constraint)
	k.str(r.Nodes)
	k.num(r.Count)
	k.str(r.Fix)
	var buf [16]string
	names := buf[:0]
	for name := range r.Classes {
		names = append(names, name)
	}
	slices.Sort(names)
	k.num(len(names))
	for _, name := range names {
		c := r.Classes[name]
		k.str(name)
		k.flags(c.Available, c.Known)
		k.num(c.Nodes)
		k.str(c.Detail)
		k.str(c.Reason)
	}
}
