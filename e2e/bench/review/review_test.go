package review

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
)

func decode(t *testing.T, body []byte) (*admissionv1.AdmissionRequest, *corev1.Pod) {
	t.Helper()
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &ar); err != nil {
		t.Fatalf("body is not an AdmissionReview: %v", err)
	}
	var pod corev1.Pod
	if err := json.Unmarshal(ar.Request.Object.Raw, &pod); err != nil {
		t.Fatalf("request.object is not a Pod: %v", err)
	}
	return ar.Request, &pod
}

func TestUniquePodsDifferInWhatThePolicyReads(t *testing.T) {
	tmpl, err := NewTemplate(Pod())
	if err != nil {
		t.Fatal(err)
	}
	req, shared := decode(t, tmpl.Body(nil, 5, false))
	if req.UID != "b0b0b0b0-0000-4000-8000-000000000005" || shared.Spec.Containers[0].Name != "checkout" || shared.Labels["pod-template-hash"] != variantPlaceholder {
		t.Errorf("shared body: uid %s, container %q, pod-template-hash %q", req.UID, shared.Spec.Containers[0].Name, shared.Labels["pod-template-hash"])
	}
	names := map[string]bool{}
	for i := uint64(1); i <= 3; i++ {
		_, pod := decode(t, tmpl.Body(nil, i, true))
		name := pod.Spec.Containers[0].Name
		if !strings.HasPrefix(name, "checkout-") || names[name] || pod.Labels["pod-template-hash"] == variantPlaceholder {
			t.Errorf("unique body %d: container %q (seen: %v), pod-template-hash %q", i, name, names, pod.Labels["pod-template-hash"])
		}
		names[name] = true
		if pod.Spec.Containers[1].Name != "log-shipper" {
			t.Errorf("unique body %d renamed the sidecar: %q", i, pod.Spec.Containers[1].Name)
		}
	}
}

func TestRealisticMix(t *testing.T) {
	vs, err := Mix("realistic", 100)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, v := range vs {
		count[v.Name]++
		if v.Class != ExpectedClass || v.Validate {
			t.Errorf("%s: class %q, validate %v", v.Name, v.Class, v.Validate)
		}
	}
	if len(vs) != 20 || count["deployment"] != 14 || count["statefulset"] != 3 || count["job"] != 3 {
		t.Fatalf("mix realistic: %v over %d turns, want 14 deployment, 3 statefulset, 3 job", count, len(vs))
	}
	byName := map[string]Variant{}
	for _, v := range vs {
		byName[v.Name] = v
	}
	uids := map[string]bool{}
	for _, i := range []uint64{7, 8, 123456} {
		n := strconv.FormatUint(i, 10)
		req, pod := decode(t, byName["statefulset"].Template.Body(nil, i, false))
		if pod.Name != "web-"+n || pod.GenerateName != "" || pod.Labels["statefulset.kubernetes.io/pod-name"] != "web-"+n ||
			pod.Labels["apps.kubernetes.io/pod-index"] != n || pod.Labels["controller-revision-hash"] == "" ||
			pod.OwnerReferences[0].Kind != "StatefulSet" || req.UserInfo.Username != "system:serviceaccount:kube-system:statefulset-controller" {
			t.Errorf("statefulset Pod %d: name %q, labels %v, owner %v, user %s", i, pod.Name, pod.Labels, pod.OwnerReferences, req.UserInfo.Username)
		}
		req, pod = decode(t, byName["job"].Template.Body(nil, i, false))
		uid, job, index := pod.Labels["batch.kubernetes.io/controller-uid"], pod.Labels["batch.kubernetes.io/job-name"], pod.Labels["batch.kubernetes.io/job-completion-index"]
		_, hash := pod.Labels["pod-template-hash"]
		if hash || len(uid) != 36 || uids[uid] || pod.Labels["controller-uid"] != uid || pod.Labels["job-name"] != job ||
			pod.GenerateName != job+"-"+index+"-" || pod.Annotations["batch.kubernetes.io/job-completion-index"] != index ||
			pod.OwnerReferences[0].Kind != "Job" || string(pod.OwnerReferences[0].UID) != uid || pod.OwnerReferences[0].Name != job ||
			req.UserInfo.Username != "system:serviceaccount:kube-system:job-controller" {
			t.Errorf("job Pod %d: generateName %q, labels %v, annotations %v, owner %v", i, pod.GenerateName, pod.Labels, pod.Annotations, pod.OwnerReferences)
		}
		uids[uid] = true
		if pod.Namespace != Namespace || pod.Spec.RuntimeClassName != nil {
			t.Errorf("job Pod %d: namespace %q, runtimeClassName %v", i, pod.Namespace, pod.Spec.RuntimeClassName)
		}
	}
}

func TestValidateMixPodsNameTheirClass(t *testing.T) {
	vs, err := ValidateMix("realistic", 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		_, pod := decode(t, v.Template.Body(nil, 3, true))
		if !v.Validate || pod.Spec.RuntimeClassName == nil || *pod.Spec.RuntimeClassName != v.Class {
			t.Errorf("%s: validate %v, runtimeClassName %v, want %q", v.Name, v.Validate, pod.Spec.RuntimeClassName, v.Class)
		}
	}
	if _, err := ValidateMix("pool", 100); err == nil || !strings.Contains(err.Error(), "would deny") {
		t.Errorf("ValidateMix(pool) = %v, want a refusal: its general-pool Pod gets no class", err)
	}
}

func TestVerifierIsExact(t *testing.T) {
	const uid = "u1"
	answer := func(extra string) []byte {
		return []byte(`{"response":{"uid":"u1","allowed":true` + extra + `}}`)
	}
	patch := `,"patchType":"JSONPatch","patch":"W3sib3AiOiJhZGQiLCJwYXRoIjoiL3NwZWMvcnVudGltZUNsYXNzTmFtZSIsInZhbHVlIjoiZ3Zpc29yIn1d"`
	for _, c := range []struct {
		name   string
		v      *Verifier
		answer []byte
		ok     bool
	}{
		{"the gvisor patch", NewVerifier("gvisor"), answer(patch), true},
		{"the gvisor patch where kata is expected", NewVerifier("kata"), answer(patch), false},
		{"no patch where one is expected", NewVerifier("gvisor"), answer(""), false},
		{"a warning", NewVerifier("gvisor"), answer(patch + `,"warnings":["x"]`), false},
		{"validation allowed", NewValidateVerifier(), answer(""), true},
		{"validation with a patch", NewValidateVerifier(), answer(patch), false},
		{"validation with a warning", NewValidateVerifier(), answer(`,"warnings":["x"]`), false},
		{"validation denied", NewValidateVerifier(), []byte(`{"response":{"uid":"u1","allowed":false}}`), false},
		{"another uid", NewValidateVerifier(), []byte(`{"response":{"uid":"u2","allowed":true}}`), false},
	} {
		if err := c.v.Verify(c.answer, uid); (err == nil) != c.ok {
			t.Errorf("%s: Verify = %v, want ok=%v", c.name, err, c.ok)
		}
	}
}
