package policy

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/open-policy-agent/opa/v1/ast"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

// Pod holds the fields of a Pod that policies may read; everything else in the object is
// skipped while decoding. policies/README.md documents the resulting input.pod.
//
// metadata.name is deliberately absent: the API server generates names after mutating
// admission, so mutate and validate would see different inputs, and every Deployment replica
// would miss the decision cache.
type Pod struct {
	// APIVersion and Kind are the object's own type, which the webhook checks against
	// request.kind; they are not part of input.pod.
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		GenerateName string            `json:"generateName"`
		Namespace    string            `json:"namespace"`
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		RuntimeClassName *string           `json:"runtimeClassName"`
		NodeName         string            `json:"nodeName"`
		NodeSelector     map[string]string `json:"nodeSelector"`
		Affinity         *struct {
			NodeAffinity *struct {
				Required *corev1.NodeSelector `json:"requiredDuringSchedulingIgnoredDuringExecution"`
			} `json:"nodeAffinity"`
		} `json:"affinity"`
		Tolerations    []corev1.Toleration `json:"tolerations"`
		HostNetwork    bool                `json:"hostNetwork"`
		HostPID        bool                `json:"hostPID"`
		HostIPC        bool                `json:"hostIPC"`
		Containers     []Container         `json:"containers"`
		InitContainers []Container         `json:"initContainers"`
		// ResourceClaims are resolved against the cluster view before evaluation (claims.go).
		ResourceClaims []cluster.ClaimRef `json:"resourceClaims"`
	} `json:"spec"`
}

// Container holds the fields of a container that policies may read.
type Container struct {
	Name      string `json:"name"`
	Image     string `json:"image"`
	Resources struct {
		Requests ExtendedResources `json:"requests"`
		Limits   ExtendedResources `json:"limits"`
	} `json:"resources"`
	SecurityContext *struct {
		Privileged *bool `json:"privileged"`
	} `json:"securityContext"`
}

// Quantity is a resource quantity kept as text: only extended resources (names with a "/",
// such as nvidia.com/gpu) are ever parsed, so cpu and memory cost nothing.
type Quantity string

// UnmarshalJSONFrom accepts the string form the API server writes and plain numbers.
func (q *Quantity) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	kind := dec.PeekKind()
	if kind != '"' && kind != '0' {
		if err := dec.SkipValue(); err != nil {
			return err
		}
		// Name the JSON type, never the value: errors reach responses, audit annotations and logs.
		return &quantityError{kind: kindName(kind)}
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return err
	}
	*q = Quantity(tok.String())
	return nil
}

// quantityError says a resource quantity has the wrong JSON type.
type quantityError struct{ kind string }

func (e *quantityError) Error() string {
	return fmt.Sprintf("a resource quantity is %s, want a string or number", article(e.kind))
}

func article(kind string) string {
	if strings.IndexByte("aeiou", kind[0]) >= 0 {
		return "an " + kind
	}
	return "a " + kind
}

// RuntimeClassName returns spec.runtimeClassName, "" when unset.
func (p *Pod) RuntimeClassName() string {
	if p.Spec.RuntimeClassName == nil {
		return ""
	}
	return *p.Spec.RuntimeClassName
}

// Placement returns what the Pod asks of its Node: nodeName, nodeSelector, required node
// affinity and tolerations.
func (p *Pod) Placement() *cluster.Placement {
	pl := &cluster.Placement{NodeName: p.Spec.NodeName, NodeSelector: p.Spec.NodeSelector, Tolerations: p.Spec.Tolerations}
	if a := p.Spec.Affinity; a != nil && a.NodeAffinity != nil {
		pl.Affinity = a.NodeAffinity.Required
	}
	return pl
}

// extendedResources returns max(request, limit) of each extended resource, as an integer.
func (c *Container) extendedResources() (map[string]int64, error) {
	var out map[string]int64
	for _, list := range []map[string]Quantity{c.Resources.Requests, c.Resources.Limits} {
		for name, q := range list {
			if !strings.Contains(name, "/") {
				continue
			}
			parsed, err := resource.ParseQuantity(string(q))
			if err != nil {
				return nil, fmt.Errorf("container %q: resources %s: %w", c.Name, name, err)
			}
			if out == nil {
				out = map[string]int64{}
			}
			if v := parsed.Value(); v > out[name] {
				out[name] = v
			}
		}
	}
	return out, nil
}

var (
	keyOperation    = ast.StringTerm("operation")
	keyNamespace    = ast.StringTerm("namespace")
	keyPod          = ast.StringTerm("pod")
	keyCluster      = ast.StringTerm("cluster")
	keyName         = ast.StringTerm("name")
	keyLabels       = ast.StringTerm("labels")
	keyAnnotations  = ast.StringTerm("annotations")
	keyImage        = ast.StringTerm("image")
	keyPrivileged   = ast.StringTerm("privileged")
	keyExtended     = ast.StringTerm("extendedResources")
	keyContainers   = ast.StringTerm("containers")
	keyInit         = ast.StringTerm("initContainers")
	keyGenerateName = ast.StringTerm("generateName")
	keyRuntimeClass = ast.StringTerm("runtimeClassName")
	keyNodeSelector = ast.StringTerm("nodeSelector")
	keyHostNetwork  = ast.StringTerm("hostNetwork")
	keyHostPID      = ast.StringTerm("hostPID")
	keyHostIPC      = ast.StringTerm("hostIPC")
	keyNodeName     = ast.StringTerm("nodeName")
	keyPlacement    = ast.StringTerm("placement")
	keyConstraint   = ast.StringTerm("constraint")
	keyNodes        = ast.StringTerm("nodes")
	keyCount        = ast.StringTerm("count")
	keyFix          = ast.StringTerm("fix")
	keyClasses      = ast.StringTerm("classes")
	keyAvailable    = ast.StringTerm("available")
	keyKnown        = ast.StringTerm("known")
	keyDetail       = ast.StringTerm("detail")
)

func stringMapTerm(m map[string]string) *ast.Term {
	obj := ast.NewObjectWithCapacity(len(m))
	for k, v := range m {
		obj.Insert(ast.InternedTerm(k), ast.InternedTerm(v))
	}
	return ast.NewTerm(obj)
}

// namespaceTerm builds input.namespace, with the labels and annotations the policy reads.
func namespaceTerm(ns *cluster.Namespace, in *projected) *ast.Term {
	return ast.ObjectTerm(
		ast.Item(keyName, ast.InternedTerm(ns.Name)),
		ast.Item(keyLabels, stringMapTerm(in.nsLabels)),
		ast.Item(keyAnnotations, stringMapTerm(in.nsAnnotations)),
	)
}

// podTerm builds input.pod, with the labels and annotations the policy reads and the resolved
// resource claims.
func podTerm(p *Pod, in *projected) (*ast.Term, error) {
	containers, err := containersTerm(p.Spec.Containers)
	if err != nil {
		return nil, err
	}
	inits, err := containersTerm(p.Spec.InitContainers)
	if err != nil {
		return nil, err
	}
	return ast.ObjectTerm(
		ast.Item(keyGenerateName, ast.InternedTerm(in.generateName)),
		ast.Item(keyNamespace, ast.InternedTerm(p.Metadata.Namespace)),
		ast.Item(keyLabels, stringMapTerm(in.podLabels)),
		ast.Item(keyAnnotations, stringMapTerm(in.podAnnotations)),
		ast.Item(keyResourceClaims, claimsTerm(in.claims)),
		ast.Item(keyRuntimeClass, ast.InternedTerm(p.RuntimeClassName())),
		ast.Item(keyNodeName, ast.InternedTerm(p.Spec.NodeName)),
		ast.Item(keyNodeSelector, stringMapTerm(p.Spec.NodeSelector)),
		ast.Item(keyHostNetwork, ast.InternedTerm(p.Spec.HostNetwork)),
		ast.Item(keyHostPID, ast.InternedTerm(p.Spec.HostPID)),
		ast.Item(keyHostIPC, ast.InternedTerm(p.Spec.HostIPC)),
		ast.Item(keyContainers, containers),
		ast.Item(keyInit, inits),
	), nil
}

func containersTerm(cs []Container) (*ast.Term, error) {
	terms := make([]*ast.Term, len(cs))
	for i := range cs {
		c := &cs[i]
		extended, err := c.extendedResources()
		if err != nil {
			return nil, err
		}
		ext := ast.NewObjectWithCapacity(len(extended))
		for name, v := range extended {
			ext.Insert(ast.InternedTerm(name), ast.InternedTerm(v))
		}
		privileged := c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged
		terms[i] = ast.ObjectTerm(
			ast.Item(keyName, ast.InternedTerm(c.Name)),
			ast.Item(keyImage, ast.InternedTerm(c.Image)),
			ast.Item(keyPrivileged, ast.InternedTerm(privileged)),
			ast.Item(keyExtended, ast.NewTerm(ext)),
		)
	}
	return ast.ArrayTerm(terms...), nil
}

// placementTerm builds input.placement: where the Pod can run, per RuntimeClass.
func placementTerm(r *cluster.PodReach) *ast.Term {
	if r == nil {
		r = &cluster.PodReach{}
	}
	classes := ast.NewObjectWithCapacity(len(r.Classes))
	for name, c := range r.Classes {
		classes.Insert(ast.InternedTerm(name), ast.ObjectTerm(
			ast.Item(keyAvailable, ast.InternedTerm(c.Available)),
			ast.Item(keyKnown, ast.InternedTerm(c.Known)),
			ast.Item(keyNodes, ast.InternedTerm(c.Nodes)),
			ast.Item(keyDetail, ast.InternedTerm(c.Detail)),
			ast.Item(keyReason, ast.InternedTerm(c.Reason)),
		))
	}
	return ast.ObjectTerm(
		ast.Item(keyConstraint, ast.InternedTerm(r.Constraint)),
		ast.Item(keyNodes, ast.InternedTerm(r.Nodes)),
		ast.Item(keyCount, ast.InternedTerm(r.Count)),
		ast.Item(keyFix, ast.InternedTerm(r.Fix)),
		ast.Item(keyClasses, ast.NewTerm(classes)),
	)
}

// clusterTerm builds input.cluster from a snapshot: done once per snapshot generation.
func clusterTerm(s *cluster.Snapshot) (*ast.Term, error) {
	classes := make(map[string]any, len(s.Classes))
	for name, c := range s.Classes {
		classes[name] = map[string]any{
			"handler":      c.Handler,
			"nodeSelector": c.NodeSelector,
			"tolerations":  c.Tolerations,
			"overhead":     c.Overhead,
			"available":    c.Availability.Available,
			"known":        c.Availability.Known,
			"source":       c.Availability.Source,
			"reason":       c.Availability.Reason,
		}
	}
	// A JSON round trip gives the Kubernetes spelling of tolerations and quantities; it runs
	// once per cluster change, not per admission.
	b, err := json.Marshal(map[string]any{"runtimeClasses": classes, "nodes": s.Nodes})
	if err != nil {
		return nil, err
	}
	v, err := ast.ValueFromReader(strings.NewReader(string(b)))
	if err != nil {
		return nil, err
	}
	return ast.NewTerm(v), nil
}
