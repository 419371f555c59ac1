package cluster

import (
	"context"
	"fmt"
	"sort"
	"sync"

	resourcev1 "k8s.io/api/resource/v1"
)

// Kinds a Pod's spec.resourceClaims[] entry can point at.
const (
	KindResourceClaimTemplate = "ResourceClaimTemplate"
	KindResourceClaim         = "ResourceClaim"
)

// maxClaimGets bounds the live GETs one resolution makes on cache misses: the mutating webhook
// sees a Pod before the API server validates it, and a Pod may list thousands of claims.
const maxClaimGets = 4

// ClaimRef is one entry of a Pod's spec.resourceClaims, as decoded from the admission request.
type ClaimRef struct {
	Name                      string  `json:"name"`
	ResourceClaimName         *string `json:"resourceClaimName"`
	ResourceClaimTemplateName *string `json:"resourceClaimTemplateName"`
}

// ResolvedClaim is a Pod's claim with the device classes it requests, as input.pod.resourceClaims
// shows it (policies/README.md).
type ResolvedClaim struct {
	// Name is spec.resourceClaims[].name.
	Name string
	// Source names what the claim comes from, e.g. `ResourceClaimTemplate "gpu"`; "" when the
	// entry names nothing.
	Source string
	// DeviceClasses are the device class names the template or claim requests, sorted.
	DeviceClasses []string
	// Resolved is false when the template or claim is not known (yet); Reason then says what is
	// missing and how to fix it.
	Resolved bool
	Reason   string
}

// ClaimGetter reads the device classes of a ResourceClaimTemplate or ResourceClaim (kind) from
// the API server on a cache miss; found is false when it does not exist.
type ClaimGetter func(ctx context.Context, kind, namespace, name string) (classes []string, found bool, err error)

// Claims holds the device class names requested by every ResourceClaimTemplate and
// ResourceClaim (Dynamic Resource Allocation), keyed by namespace/name: all a trait reads of
// them. It is not part of the Snapshot: resolved claims become part of input.pod, which keys
// the decision cache, so claim events need not invalidate every cached decision. The zero
// value is empty and ready to use; safe for concurrent use.
type Claims struct {
	mu        sync.RWMutex
	templates map[string][]string
	claims    map[string][]string
	// unavailable, when set, says why runtimeguard cannot see claims at all.
	unavailable string
	getter      ClaimGetter
}

// Claims returns the view's store of ResourceClaimTemplates and ResourceClaims.
func (v *View) Claims() *Claims { return &v.claims }

func claimKey(namespace, name string) string { return namespace + "/" + name }

// DeviceClasses returns the sorted, distinct device class names a claim spec requests:
// spec.devices.requests[].exactly.deviceClassName and firstAvailable[].deviceClassName. Any
// alternative of firstAvailable counts: the Pod may be given that device.
func DeviceClasses(spec *resourcev1.ResourceClaimSpec) []string {
	seen := map[string]bool{}
	for _, r := range spec.Devices.Requests {
		if r.Exactly != nil && r.Exactly.DeviceClassName != "" {
			seen[r.Exactly.DeviceClassName] = true
		}
		for _, sub := range r.FirstAvailable {
			if sub.DeviceClassName != "" {
				seen[sub.DeviceClassName] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// UpsertTemplate adds or updates a ResourceClaimTemplate.
func (c *Claims) UpsertTemplate(t *resourcev1.ResourceClaimTemplate) {
	classes := DeviceClasses(&t.Spec.Spec)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.templates == nil {
		c.templates = map[string][]string{}
	}
	c.templates[claimKey(t.Namespace, t.Name)] = classes
}

// DeleteTemplate removes a ResourceClaimTemplate.
func (c *Claims) DeleteTemplate(namespace, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.templates, claimKey(namespace, name))
}

// UpsertClaim adds or updates a ResourceClaim.
func (c *Claims) UpsertClaim(rc *resourcev1.ResourceClaim) {
	classes := DeviceClasses(&rc.Spec)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.claims == nil {
		c.claims = map[string][]string{}
	}
	c.claims[claimKey(rc.Namespace, rc.Name)] = classes
}

// DeleteClaim removes a ResourceClaim.
func (c *Claims) DeleteClaim(namespace, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.claims, claimKey(namespace, name))
}

// SetUnavailable records why claims cannot be seen at all (for example the API server does not
// serve resource.k8s.io/v1); every claim then resolves to unresolved with that reason.
func (c *Claims) SetUnavailable(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unavailable = reason
}

// SetGetter sets the getter asked on a cache miss (informers may lag behind a template created
// a moment before its Pods). Default: none, a miss is unresolved.
func (c *Claims) SetGetter(g ClaimGetter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.getter = g
}

// Resolve looks up the device classes of each of a Pod's claims in namespace. It never fails:
// what cannot be resolved is returned with Resolved false and a Reason naming the claim, the
// namespace, what is missing and the fix. A nil store resolves nothing.
func (c *Claims) Resolve(ctx context.Context, namespace string, refs []ClaimRef) []ResolvedClaim {
	if len(refs) == 0 {
		return nil
	}
	out := make([]ResolvedClaim, len(refs))
	gets := 0
	for i, ref := range refs {
		r := &out[i]
		r.Name = ref.Name
		kind, name, problem := refTarget(i, ref)
		if problem != "" {
			r.Reason = problem
			continue
		}
		r.Source = fmt.Sprintf("%s %q", kind, name)
		if c == nil {
			r.Reason = fmt.Sprintf("runtimeguard has no view of %ss", kind)
			continue
		}
		classes, found, unavailable, getter := c.lookup(kind, namespace, name)
		switch {
		case found:
			r.DeviceClasses, r.Resolved = classes, true
			continue
		case unavailable != "":
			r.Reason = fmt.Sprintf("%s %q in namespace %q cannot be read: %s", kind, name, namespace, unavailable)
			continue
		case getter != nil && gets < maxClaimGets:
			gets++
			classes, found, err := getter(ctx, kind, namespace, name)
			if err != nil {
				r.Reason = fmt.Sprintf("reading %s %q in namespace %q: %v", kind, name, namespace, err)
				continue
			}
			if found {
				r.DeviceClasses, r.Resolved = classes, true
				continue
			}
		}
		r.Reason = fmt.Sprintf("%s %q not found in namespace %q; create it before the Pod", kind, name, namespace)
	}
	return out
}

func (c *Claims) lookup(kind, namespace, name string) (classes []string, found bool, unavailable string, getter ClaimGetter) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	m := c.claims
	if kind == KindResourceClaimTemplate {
		m = c.templates
	}
	classes, found = m[claimKey(namespace, name)]
	return classes, found, c.unavailable, c.getter
}

// refTarget says what entry i of spec.resourceClaims points at, or why it points at nothing.
// The API server rejects such entries after mutating admission; until then they are named.
func refTarget(i int, ref ClaimRef) (kind, name, problem string) {
	claim := ref.ResourceClaimName != nil && *ref.ResourceClaimName != ""
	template := ref.ResourceClaimTemplateName != nil && *ref.ResourceClaimTemplateName != ""
	switch {
	case claim && template:
		return "", "", fmt.Sprintf("spec.resourceClaims[%d] sets both resourceClaimName and resourceClaimTemplateName; set exactly one", i)
	case claim:
		return KindResourceClaim, *ref.ResourceClaimName, ""
	case template:
		return KindResourceClaimTemplate, *ref.ResourceClaimTemplateName, ""
	}
	return "", "", fmt.Sprintf("spec.resourceClaims[%d] sets neither resourceClaimName nor resourceClaimTemplateName; set exactly one", i)
}
