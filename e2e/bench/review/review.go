// Package review builds the AdmissionReview the benchmarks post and checks the answers.
//
// The Pod is what a Deployment in an untrusted tenant namespace sends through the API server:
// many labels and annotations, an app container and a sidecar with env vars, probes,
// resources and volume mounts, and the projected service-account volume the API server adds.
// Marshalled as an AdmissionReview it weighs about 7.2 KB. Its namespace is labelled
// runtimeguard.io/tenancy=untrusted, so the default policy requires isolation 1 and every
// server must answer with the patch that sets spec.runtimeClassName to gvisor.
package review

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Namespace is the untrusted tenant namespace the benchmark Pods are created in; the fixtures
// generator always creates it with TenancyLabel=untrusted.
const Namespace = "bench-untrusted"

// Tenancy label and value that make a namespace untrusted in policies/data.yaml.
const (
	TenancyLabel = "runtimeguard.io/tenancy"
	Untrusted    = "untrusted"
)

// ExpectedClass is the class every server must inject for the benchmark Pod.
const ExpectedClass = "gvisor"

// uidPlaceholder is replaced per request with UID(i).
const uidPlaceholder = "UIDUIDUI-UIDU-4UID-8UID-UIDUIDUIDUID"

func variant(i uint64) string {
	v := strconv.FormatUint(i%(1<<40), 36)
	return "0000000000"[:len(variantPlaceholder)-len(v)] + v
}

// variantPlaceholder is the value of the pod-template-hash label; unique mode replaces it per
// request, with the first container's name (containerPlaceholder): the container name is what
// makes every Pod a distinct policy input (a decision-cache miss), since a cache keyed on what
// the policy reads ignores pod-template-hash.
const variantPlaceholder = "7d9f8c6b5x"

// Pod returns the benchmark Pod.
func Pod() *corev1.Pod {
	env := func(prefix string, n int) []corev1.EnvVar {
		out := []corev1.EnvVar{
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}},
			{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}},
			{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "checkout-db"}, Key: "password"}}},
		}
		for i := 0; i < n; i++ {
			out = append(out, corev1.EnvVar{Name: fmt.Sprintf("%s_SETTING_%02d", prefix, i), Value: fmt.Sprintf("value-%02d-of-the-%s-configuration", i, prefix)})
		}
		return out
	}
	probe := func(path string, port int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intOrString(port), Scheme: corev1.URISchemeHTTP}},
			TimeoutSeconds:   1,
			PeriodSeconds:    10,
			SuccessThreshold: 1,
			FailureThreshold: 3,
		}
	}
	mounts := []corev1.VolumeMount{
		{Name: "config", MountPath: "/etc/checkout", ReadOnly: true},
		{Name: "tls", MountPath: "/etc/tls", ReadOnly: true},
		{Name: "cache", MountPath: "/var/cache/checkout"},
		{Name: "kube-api-access-x7k2p", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true},
	}
	container := func(name, image string, cpu, mem string, envPrefix string, envs int, port int32) corev1.Container {
		return corev1.Container{
			Name:  name,
			Image: image,
			Args:  []string{"--config=/etc/" + name + "/config.yaml", "--log-format=json"},
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: port, Protocol: corev1.ProtocolTCP}},
			Env:   env(envPrefix, envs),
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("512Mi")},
			},
			VolumeMounts:             mounts,
			LivenessProbe:            probe("/healthz", port),
			ReadinessProbe:           probe("/readyz", port),
			TerminationMessagePath:   "/dev/termination-log",
			TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			ImagePullPolicy:          corev1.PullIfNotPresent,
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(false),
				ReadOnlyRootFilesystem:   ptr.To(true),
				RunAsNonRoot:             ptr.To(true),
				RunAsUser:                ptr.To[int64](10001),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
		}
	}
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "checkout-7d9f8c6b5x-",
			Namespace:    Namespace,
			Labels: map[string]string{
				"app.kubernetes.io/name":              "checkout",
				"app.kubernetes.io/instance":          "checkout-prod",
				"app.kubernetes.io/version":           "2.14.3",
				"app.kubernetes.io/component":         "api",
				"app.kubernetes.io/part-of":           "storefront",
				"app.kubernetes.io/managed-by":        "Helm",
				"helm.sh/chart":                       "checkout-2.14.3",
				"pod-template-hash":                   variantPlaceholder,
				"security.istio.io/tlsMode":           "istio",
				"service.istio.io/canonical-name":     "checkout",
				"service.istio.io/canonical-revision": "2.14.3",
				"team":                                "payments-platform",
				"cost-center":                         "cc-4471",
			},
			Annotations: map[string]string{
				"checksum/config":                                "8f14e45fceea167a5a36dedd4bea2543c8a1b5a3f1e0d1c6e3b1e0a2b6b1c9d7",
				"checksum/secrets":                               "2c624232cdd221771294dfbb310aca000a0df6ac8b66b696d90ef06fdefb64a3",
				"kubectl.kubernetes.io/default-container":        "checkout",
				"kubectl.kubernetes.io/restartedAt":              "2025-02-27T08:41:12Z",
				"prometheus.io/scrape":                           "true",
				"prometheus.io/port":                             "9090",
				"prometheus.io/path":                             "/metrics",
				"cluster-autoscaler.kubernetes.io/safe-to-evict": "true",
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "checkout-7d9f8c6b5x",
				UID: "2b8c7a4e-91d5-4c0e-8f3b-6a1d9e2f4c7b", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "checkout-config"}, DefaultMode: ptr.To[int32](0o420)}}},
				{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "checkout-tls", DefaultMode: ptr.To[int32](0o420)}}},
				{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(resource.MustParse("256Mi"))}}},
				{Name: "kube-api-access-x7k2p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
					DefaultMode: ptr.To[int32](0o420),
					Sources: []corev1.VolumeProjection{
						{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{ExpirationSeconds: ptr.To[int64](3607), Path: "token"}},
						{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
							Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
						{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
							{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
					},
				}}},
			},
			Containers: []corev1.Container{
				container("checkout", "registry.example.com/storefront/checkout:2.14.3", "250m", "256Mi", "CHECKOUT", 8, 8080),
				container("log-shipper", "registry.example.com/platform/log-shipper:1.9.0", "50m", "64Mi", "SHIPPER", 3, 9091),
			},
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: ptr.To[int64](45),
			DNSPolicy:                     corev1.DNSClusterFirst,
			ServiceAccountName:            "checkout",
			DeprecatedServiceAccount:      "checkout",
			SecurityContext:               &corev1.PodSecurityContext{FSGroup: ptr.To[int64](10001), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			SchedulerName:                 corev1.DefaultSchedulerName,
			Tolerations: []corev1.Toleration{
				{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
				{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
			},
			TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
				MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone", WhenUnsatisfiable: corev1.ScheduleAnyway,
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "checkout"}},
			}},
			PriorityClassName:  "tenant-standard",
			Priority:           ptr.To[int32](1000),
			EnableServiceLinks: ptr.To(false),
			PreemptionPolicy:   ptr.To(corev1.PreemptLowerPriority),
		},
	}
}

// Template is a marshalled AdmissionReview with placeholders: the request uid, the
// pod-template-hash variant, the first container's name, and any Field of the template. Body
// fills them in without re-marshalling.
type Template struct {
	raw   []byte
	holes []hole // sorted by offset
	// ObjectSize is the length of the marshalled Pod with its placeholders.
	ObjectSize int
}

// hole is one occurrence of a placeholder in raw.
type hole struct {
	at, n int
	value func(i uint64, unique bool) string
}

// Field is a value that changes per request: every occurrence of Placeholder in the marshalled
// review is replaced with Value(i) for request i. Placeholders must be distinctive (no other
// text of the review contains them) and values need no JSON escaping.
type Field struct {
	Placeholder string
	Value       func(i uint64) string
}

// containerPlaceholder stands for the first container's name in a template; unique mode gives
// every request its own name (containers[].name is in the policy input, unlike most labels).
const containerPlaceholder = "ctr-name-placeholder"

// NewTemplate marshals the review of pod once. In unique mode the pod-template-hash variant
// and the first container's name change per request, so each Pod is a distinct policy input.
func NewTemplate(pod *corev1.Pod, fields ...Field) (*Template, error) {
	pod = pod.DeepCopy()
	var containerName string
	if len(pod.Spec.Containers) > 0 {
		containerName = pod.Spec.Containers[0].Name
		pod.Spec.Containers[0].Name = containerPlaceholder
	}
	object, err := json.Marshal(pod)
	if err != nil {
		return nil, err
	}
	ar := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:             uidPlaceholder,
			Kind:            metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:        metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			RequestKind:     &metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			RequestResource: &metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace:       pod.Namespace,
			Operation:       admissionv1.Create,
			UserInfo: authnUser("system:serviceaccount:kube-system:"+creator(pod),
				"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"),
			Object:  runtime.RawExtension{Raw: object},
			DryRun:  ptr.To(false),
			Options: runtime.RawExtension{Raw: []byte(`{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1"}`)},
		},
	}
	raw, err := json.Marshal(ar)
	if err != nil {
		return nil, err
	}
	t := &Template{raw: raw, ObjectSize: len(object)}
	add := func(placeholder string, value func(uint64, bool) string) int {
		at := indexAll(raw, []byte(placeholder))
		for _, a := range at {
			t.holes = append(t.holes, hole{at: a, n: len(placeholder), value: value})
		}
		return len(at)
	}
	if n := add(uidPlaceholder, func(i uint64, _ bool) string { return UID(i) }); n != 1 {
		return nil, fmt.Errorf("uid placeholder found %d times", n)
	}
	add(variantPlaceholder, func(i uint64, unique bool) string {
		if unique {
			return variant(i)
		}
		return variantPlaceholder
	})
	add(containerPlaceholder, func(i uint64, unique bool) string {
		if unique {
			return containerName + "-" + variant(i)
		}
		return containerName
	})
	for _, f := range fields {
		value := f.Value
		if add(f.Placeholder, func(i uint64, _ bool) string { return value(i) }) == 0 {
			return nil, fmt.Errorf("placeholder %q is not in the review", f.Placeholder)
		}
	}
	slices.SortFunc(t.holes, func(a, b hole) int { return a.at - b.at })
	for k := 1; k < len(t.holes); k++ {
		if prev := t.holes[k-1]; prev.at+prev.n > t.holes[k].at {
			return nil, fmt.Errorf("placeholders overlap at byte %d", t.holes[k].at)
		}
	}
	return t, nil
}

// Size is the length of the template (bodies differ by what the placeholders expand to).
func (t *Template) Size() int { return len(t.raw) }

// UID returns the uid of request i: UUID-shaped, unique per request.
func UID(i uint64) string {
	return fmt.Sprintf("b0b0b0b0-0000-4000-8000-%012x", i)
}

// Body writes request i's review into dst (reused) and returns it. unique replaces the
// pod-template-hash label (and the names that embed it) and the first container's name with
// per-request values.
func (t *Template) Body(dst []byte, i uint64, unique bool) []byte {
	dst = dst[:0]
	last := 0
	for _, h := range t.holes {
		dst = append(dst, t.raw[last:h.at]...)
		dst = append(dst, h.value(i, unique)...)
		last = h.at + h.n
	}
	return append(dst, t.raw[last:]...)
}

// creator is the service account of the controller that creates pod, from its owner.
func creator(pod *corev1.Pod) string {
	if len(pod.OwnerReferences) > 0 {
		switch pod.OwnerReferences[0].Kind {
		case "StatefulSet":
			return "statefulset-controller"
		case "Job":
			return "job-controller"
		case "DaemonSet":
			return "daemon-set-controller"
		}
	}
	return "replicaset-controller"
}

func indexAll(b, sub []byte) []int {
	var out []int
	for off := 0; ; {
		i := bytes.Index(b[off:], sub)
		if i < 0 {
			return out
		}
		out = append(out, off+i)
		off += i + len(sub)
	}
}

func authnUser(name string, groups ...string) (u authenticationv1.UserInfo) {
	u.Username = name
	u.UID = "5e7a1c2d-3b4f-4a6e-9c8d-1f2e3d4c5b6a"
	u.Groups = groups
	u.Extra = map[string]authenticationv1.ExtraValue{"authentication.kubernetes.io/credential-id": {"JTI=8c1d7e3a-2b4f-4e6a-9d8c-7f6e5d4c3b2a"}}
	return u
}

func intOrString(port int32) intstr.IntOrString { return intstr.FromInt32(port) }

// ExpectedPatch is the JSON patch every server must answer with, as JSON.
func ExpectedPatch(class string) []byte {
	b, _ := json.Marshal([]map[string]string{{"op": "add", "path": "/spec/runtimeClassName", "value": class}})
	return b
}

// Answer is the part of an AdmissionReview response the benchmark checks.
type Answer struct {
	Response *struct {
		UID       string            `json:"uid"`
		Allowed   bool              `json:"allowed"`
		Patch     string            `json:"patch"`
		PatchType *string           `json:"patchType"`
		Status    json.RawMessage   `json:"status"`
		Audit     map[string]string `json:"auditAnnotations"`
		Warnings  []string          `json:"warnings"`
	} `json:"response"`
}

// Verifier checks answers: allowed, the uid echoed, no warning, and the expected patch (or none).
type Verifier struct {
	class   string
	wantB64 string
	NoPatch bool // expect allowed without a patch (for exempt or no-requirement pods, and validation)
}

// NewVerifier expects the mutating answer that sets class ("" expects an allowed answer
// without patch).
func NewVerifier(class string) *Verifier {
	v := &Verifier{class: class, NoPatch: class == ""}
	if class != "" {
		v.wantB64 = base64.StdEncoding.EncodeToString(ExpectedPatch(class))
	}
	return v
}

// NewValidateVerifier expects the validating answer for a Pod that already names the class it
// needs: allowed, no patch, no warning.
func NewValidateVerifier() *Verifier { return &Verifier{NoPatch: true} }

// Verify checks one answer body for request uid.
func (v *Verifier) Verify(body []byte, uid string) error {
	var a Answer
	if err := json.Unmarshal(body, &a); err != nil {
		return fmt.Errorf("answer is not JSON: %w (%.200q)", err, body)
	}
	r := a.Response
	switch {
	case r == nil:
		return fmt.Errorf("answer has no response: %.300s", body)
	case r.UID != uid:
		return fmt.Errorf("answer uid %q, want %q", r.UID, uid)
	case !r.Allowed:
		return fmt.Errorf("not allowed: %.300s", r.Status)
	case len(r.Warnings) > 0:
		return fmt.Errorf("unexpected warnings %.300q", r.Warnings)
	}
	if v.NoPatch {
		if r.Patch != "" || r.PatchType != nil {
			return fmt.Errorf("unexpected patch %q (patchType %v)", r.Patch, r.PatchType)
		}
		return nil
	}
	if r.PatchType == nil || *r.PatchType != "JSONPatch" {
		return fmt.Errorf("patchType %v, want JSONPatch (status %.300s, audit annotations %.500v)", r.PatchType, r.Status, r.Audit)
	}
	if r.Patch == v.wantB64 {
		return nil
	}
	raw, err := base64.StdEncoding.DecodeString(r.Patch)
	if err != nil {
		return fmt.Errorf("patch is not base64: %w", err)
	}
	var ops []map[string]any
	if err := json.Unmarshal(raw, &ops); err != nil {
		return fmt.Errorf("patch is not a JSON patch: %w (%s)", err, raw)
	}
	if len(ops) != 1 || len(ops[0]) != 3 || ops[0]["op"] != "add" || ops[0]["path"] != "/spec/runtimeClassName" || ops[0]["value"] != v.class {
		return fmt.Errorf("patch %s, want %s", raw, ExpectedPatch(v.class))
	}
	return nil
}
