# Unit tests of the default policy's traits from Dynamic Resource Allocation claims and of its
# warnings about runtimeguard.io/ labels it does not know (runtimeguard.rego, data.yaml).
#
#   bin/opa test policies/
#
# Inputs are built as webhook/policy/input.go and claims.go build them: input.pod.resourceClaims
# holds each of spec.resourceClaims resolved by Go.
package runtimeguard_traits_test

import data.runtimeguard

class(handler) := {
	"handler": handler, "nodeSelector": null, "tolerations": null, "overhead": null,
	"available": true, "known": true, "source": "status", "reason": "1 of 1 nodes can run it",
}

cluster := {"nodes": 1, "runtimeClasses": {
	"gvisor": class("runsc"),
	"kata": class("kata-qemu"),
	"nvidia": class("nvidia"),
	"gvisor-nvidia": class("runsc-nvidia"),
}}

# make(ns, ns_labels, pod): pod holds the fields that differ from a plain Pod.
make(ns, ns_labels, pod) := {
	"operation": "CREATE",
	"namespace": {"name": ns, "labels": ns_labels, "annotations": {}},
	"pod": object.union(
		{
			"generateName": "app-", "namespace": ns, "labels": {}, "annotations": {},
			"runtimeClassName": "", "nodeSelector": {},
			"hostNetwork": false, "hostPID": false, "hostIPC": false,
			"containers": [{"name": "app", "image": "registry.example.com/app:1", "privileged": false, "extendedResources": {}}],
			"initContainers": [], "resourceClaims": [],
		},
		pod,
	),
	"cluster": cluster,
}

claim(name, source, classes) := {"name": name, "source": source, "deviceClasses": classes, "resolved": true, "reason": ""}

unresolved(name, source, reason) := {"name": name, "source": source, "deviceClasses": [], "resolved": false, "reason": reason}

with_claims(claims) := {"resourceClaims": claims}

# ---------------------------------------------------------------------------------------------
# Traits from resource claims

test_claim_template_requesting_gpu_class_gives_gpu_trait if {
	d := runtimeguard.decision with input as make("ml", {}, with_claims([claim("gpu", `ResourceClaimTemplate "single-gpu"`, ["gpu.nvidia.com"])]))
	d.traits == {"gpu": {`resource claim "gpu" (ResourceClaimTemplate "single-gpu") requests device class gpu.nvidia.com`}}
	d.class == "nvidia"
	d.warn == set()
	d.reasons == [
		`trait gpu: resource claim "gpu" (ResourceClaimTemplate "single-gpu") requests device class gpu.nvidia.com`,
		"requires a GPU runtime",
		`cheapest available class that provides a GPU runtime: "nvidia"`,
	]
}

test_shared_claim_in_untrusted_namespace_gets_sandboxed_gpu_class if {
	d := runtimeguard.decision with input as make(
		"tenant-a", {"runtimeguard.io/tenancy": "untrusted"},
		with_claims([claim("shared", `ResourceClaim "team-gpu"`, ["example.com/fpga", "gpu.nvidia.com"])]),
	)
	d.requirements == {"isolation": 1, "gpu": true}
	d.class == "gvisor-nvidia"
}

test_claim_of_another_device_class_gives_no_trait if {
	d := runtimeguard.decision with input as make("ml", {}, with_claims([claim("fpga", `ResourceClaimTemplate "fpga"`, ["fpga.example.com"])]))
	d.traits == {}
	d.class == ""
	d.warn == set()
}

test_device_classes_come_from_data if {
	traits := object.union(data.config.traits, {"gpu": object.union(data.config.traits.gpu, {"device_classes": ["gpu.amd.com"]})})
	inp := make("ml", {}, with_claims([claim("gpu", `ResourceClaimTemplate "amd"`, ["gpu.amd.com"])]))
	d := runtimeguard.decision with input as inp with data.config.traits as traits
	d.class == "nvidia"
	nvidia := runtimeguard.decision with input as make("ml", {}, with_claims([claim("gpu", `ResourceClaimTemplate "nv"`, ["gpu.nvidia.com"])]))
		with data.config.traits as traits
	nvidia.traits == {}
}

test_unresolved_claim_is_a_warning_not_a_trait if {
	reason := `ResourceClaimTemplate "single-gpu" not found in namespace "ml"; create it before the Pod`
	d := runtimeguard.decision with input as make("ml", {}, with_claims([unresolved("gpu", `ResourceClaimTemplate "single-gpu"`, reason)]))
	d.traits == {}
	d.class == ""
	d.deny == set()
	d.warn == {`resource claim "gpu" of the pod in namespace "ml" is not resolved: ResourceClaimTemplate "single-gpu" not found in namespace "ml"; create it before the Pod; until it is, runtimeguard cannot tell whether it requests device class gpu.nvidia.com and decides without it`}
}

test_unresolved_claim_is_not_warned_when_no_trait_reads_device_classes if {
	traits := {"gpu": {"extended_resources": ["nvidia.com/gpu"], "requires": {"gpu": true}}}
	inp := make("ml", {}, with_claims([unresolved("gpu", "", "spec.resourceClaims[0] sets neither resourceClaimName nor resourceClaimTemplateName; set exactly one")]))
	d := runtimeguard.decision with input as inp with data.config.traits as traits
	d.warn == set()
}

test_input_without_resource_claims_is_decided if {
	# A custom caller may build input.pod without the key.
	d := runtimeguard.decision with input as make("ml", {}, {"resourceClaims": null})
	d.traits == {}
	d.class == ""
}

# ---------------------------------------------------------------------------------------------
# runtimeguard.io/ labels the policy does not know

test_unknown_pod_label_value_is_warned_with_the_known_values if {
	d := runtimeguard.decision with input as make("default", {}, {"labels": {"runtimeguard.io/workload": "Untrusted"}})
	d.traits == {}
	d.warn == {"pod label runtimeguard.io/workload=Untrusted has no effect: runtimeguard knows the values financial, gpu, trusted, untrusted (case-sensitive); fix the value or remove the label"}
}

test_unknown_namespace_label_value_is_warned_naming_the_namespace if {
	d := runtimeguard.decision with input as make("shop", {"runtimeguard.io/tenancy": "Financial", "runtimeguard.io/enforcement": "Warn"}, {})
	d.warn == {
		`namespace "shop" label runtimeguard.io/tenancy=Financial has no effect: runtimeguard knows the values financial, trusted, untrusted (case-sensitive); fix the value or remove the label`,
		`namespace "shop" label runtimeguard.io/enforcement=Warn has no effect: runtimeguard knows the values enforce, warn (case-sensitive); fix the value or remove the label`,
	}
}

test_unknown_namespace_label_key_is_warned_with_the_known_keys if {
	d := runtimeguard.decision with input as make("shop", {"runtimeguard.io/tenency": "untrusted"}, {})
	d.traits == {}
	d.warn == {`namespace "shop" label runtimeguard.io/tenency=untrusted has no effect: runtimeguard reads no such label on namespaces (it reads runtimeguard.io/enforcement, runtimeguard.io/ignore, runtimeguard.io/tenancy); fix the key or remove the label`}
}

test_namespace_label_on_a_pod_is_warned_to_move if {
	d := runtimeguard.decision with input as make("default", {}, {"labels": {"runtimeguard.io/tenancy": "untrusted"}})
	d.warn == {"pod label runtimeguard.io/tenancy=untrusted has no effect: runtimeguard reads runtimeguard.io/tenancy on namespaces, not on pods; move the label or remove it"}
}

test_unknown_pod_label_key_without_pod_labels_in_data_lists_none if {
	traits := {"untrusted": {"namespace_labels": {"runtimeguard.io/tenancy": "untrusted"}, "requires": {"isolation": 1}}}
	d := runtimeguard.decision with input as make("default", {}, {"labels": {"runtimeguard.io/team": "a"}})
		with data.config.traits as traits
		with data.config.no_trait_labels as {}
	d.warn == {"pod label runtimeguard.io/team=a has no effect: runtimeguard reads no such label on pods (it reads none); fix the key or remove the label"}
}

test_known_labels_and_other_prefixes_are_not_warned if {
	d := runtimeguard.decision with input as make(
		"internal",
		{
			"runtimeguard.io/tenancy": "trusted", "runtimeguard.io/enforcement": "warn",
			"runtimeguard.io/ignore": "false", "sandbox.runtimeguard.io/gvisor": "x",
		},
		{"labels": {"runtimeguard.io/workload": "gpu", "app.kubernetes.io/name": "web", "example.com/runtimeguard.io/x": "y"}},
	)
	d.warn == set()
	d.class == "nvidia"
}

test_custom_policy_can_make_a_label_known if {
	known := {"runtimeguard.io/team": {"a"}}
	d := runtimeguard.decision with input as make("default", {}, {"labels": {"runtimeguard.io/team": "a"}})
		with runtimeguard.known_pod_labels as known
	d.warn == set()
}
