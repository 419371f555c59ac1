package main

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestGenerateNative(t *testing.T) {
	code, stdout, stderr := runCLI(t, "generate", "native", "--webhook-namespace", "runtimeguard", "--cluster", "../../policies/examples/cluster/cluster.yaml")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	var kinds []string
	for _, doc := range strings.Split(stdout, "\n---\n") {
		var obj struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
			Data map[string]string `json:"data"`
		}
		if err := yaml.UnmarshalStrict([]byte(doc), &obj); err != nil && !strings.Contains(err.Error(), "unknown field") {
			t.Fatalf("document %q: %v", doc, err)
		}
		kinds = append(kinds, obj.Kind+"/"+obj.Metadata.Name)
		if obj.Kind == "ConfigMap" {
			// The example cluster runs gvisor, kata, nvidia and gvisor-nvidia; it has no
			// kata-nvidia-gpu RuntimeClass.
			if obj.Metadata.Namespace != "runtimeguard" || obj.Data["gvisor"] != "true" || obj.Data["kata"] != "true" || obj.Data["kata-nvidia-gpu"] != "" {
				t.Errorf("parameter ConfigMap %s/%s data %v", obj.Metadata.Namespace, obj.Metadata.Name, obj.Data)
			}
		}
	}
	want := "ValidatingAdmissionPolicy/runtimeguard-pods ValidatingAdmissionPolicyBinding/runtimeguard-pods-enforce ValidatingAdmissionPolicyBinding/runtimeguard-pods-warn ValidatingAdmissionPolicy/runtimeguard-workloads ValidatingAdmissionPolicyBinding/runtimeguard-workloads-enforce ValidatingAdmissionPolicyBinding/runtimeguard-workloads-warn MutatingAdmissionPolicy/runtimeguard-pods MutatingAdmissionPolicyBinding/runtimeguard-pods ConfigMap/runtimeguard-native-params"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("objects\n%s\nwant\n%s", got, want)
	}
	wantInOrder(t, stderr, []string{"do not do what the webhook does here", "placement:", "trait gpu: device_classes (gpu.nvidia.com) are not read"})
}

func TestGenerateNativeNeedsTheWebhookNamespace(t *testing.T) {
	code, _, stderr := runCLI(t, "generate", "native")
	if code != 2 || !strings.Contains(stderr, "give --webhook-namespace") {
		t.Errorf("exit %d, stderr %q; want 2 and the flag named", code, stderr)
	}
}

func TestGenerateNativeListsCustomModules(t *testing.T) {
	code, _, stderr := runCLI(t, "generate", "native", "--webhook-namespace", "rg", "--policy-modules", "../../policies/examples/registry-allowlist")
	if code != 0 || !strings.Contains(stderr, "custom policy ") || !strings.Contains(stderr, "registry_allowlist.rego") {
		t.Errorf("exit %d, stderr %q; want the custom module listed", code, stderr)
	}
}

func TestTestNative(t *testing.T) {
	code, stdout, stderr := runCLI(t, "test", "--native", "../../policies/default.suite.yaml")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	wantInOrder(t, stdout, []string{
		"NATIVE DIFFERS (explained)", "because placement",
		"native policies: 0 unexplained differences, ",
	})
}
