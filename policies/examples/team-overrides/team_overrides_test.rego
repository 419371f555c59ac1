# Tests of the team-overrides example, with the default policy and its data:
#
#   bin/opa test policies/runtimeguard.rego policies/data.yaml policies/examples/team-overrides/
#
# The example's configuration is given with `with`, so the tests pass whether its data file is
# loaded at data.config (as above) or elsewhere (bin/opa test policies/ loads it under
# data.examples, where it is inert).
package team_overrides_test

import data.runtimeguard

config := {"annotation": "runtimeguard.io/runtime-class"}

class(handler, selector, available) := {
	"handler": handler,
	"nodeSelector": selector,
	"tolerations": null,
	"overhead": null,
	"available": available,
	"known": true,
	"source": "status",
	"reason": sprintf("handler %q: available=%v", [handler, available]),
}

cluster := {"nodes": 3, "runtimeClasses": {
	"gvisor": class("runsc", {"sandbox.runtimeguard.io/gvisor": "true"}, true),
	"kata": class("kata-qemu", {"katacontainers.io/kata-runtime": "true"}, true),
	"nvidia": class("nvidia", {"nvidia.com/gpu.present": "true"}, true),
	"gvisor-nvidia": class("runsc-nvidia", {"nvidia.com/gpu.present": "true"}, true),
	"runc": class("runc", null, true),
}}

# make(ns, labels, annotations, pod): pod holds the fields that differ from a plain Pod.
make(ns, labels, annotations, pod) := {
	"operation": "CREATE",
	"namespace": {"name": ns, "labels": labels, "annotations": annotations},
	"pod": object.union(
		{
			"generateName": "app-", "namespace": ns, "labels": {}, "annotations": {},
			"runtimeClassName": "", "nodeSelector": {},
			"hostNetwork": false, "hostPID": false, "hostIPC": false,
			"containers": [{"name": "app", "image": "registry.example.com/app:1", "privileged": false, "extendedResources": {}}],
			"initContainers": [],
		},
		pod,
	),
	"cluster": cluster,
}

wants(class) := {"runtimeguard.io/runtime-class": class}

untrusted := {"runtimeguard.io/tenancy": "untrusted"}

financial := {"runtimeguard.io/tenancy": "financial"}

gpu_pod := {"containers": [{"name": "train", "image": "nvcr.io/nvidia/pytorch:24.01-py3", "privileged": false, "extendedResources": {"nvidia.com/gpu": 1}}]}

decide(inp) := d if {
	d := runtimeguard.decision with input as inp with data.config.team_overrides as config
}

test_override_applies_without_requirement if {
	d := decide(make("research", {}, wants("gvisor"), {}))
	d.class == "gvisor"
	d.deny == set()
	d.reasons == [
		"no trait requires a sandboxed or GPU runtime",
		`class override by namespace "research" annotation runtimeguard.io/runtime-class=gvisor: "gvisor"`,
	]
}

test_override_replaces_the_cheapest_class if {
	d := decide(make("tenant-b", untrusted, wants("kata"), {}))
	d.class == "kata"
	d.reasons == [
		`trait untrusted: namespace "tenant-b" is runtimeguard.io/tenancy=untrusted`,
		"requires isolation >= 1",
		`class override by namespace "tenant-b" annotation runtimeguard.io/runtime-class=kata: "kata"`,
	]
}

test_override_that_is_the_cheapest_class_changes_nothing_but_the_reason if {
	d := decide(make("tenant-b", untrusted, wants("gvisor"), {}))
	d.class == "gvisor"
}

test_override_weaker_than_required_is_denied if {
	d := decide(make("legacy-payments", financial, wants("gvisor"), {}))
	d.class == ""
	d.deny == {`pod rejected: namespace "legacy-payments" annotation runtimeguard.io/runtime-class=gvisor asks for runtime class "gvisor", but namespace "legacy-payments" is runtimeguard.io/tenancy=financial, which needs isolation >= 2 (runtime class "kata" or stronger); change the override, or name a runtime class in spec.runtimeClassName`}
}

test_override_must_meet_every_trait if {
	# gvisor isolates but has no GPU: a GPU Pod in a gvisor namespace is denied, not sent to gvisor-nvidia.
	d := decide(make("research", {}, wants("gvisor"), gpu_pod))
	d.class == ""
	d.deny == {`pod rejected: namespace "research" annotation runtimeguard.io/runtime-class=gvisor asks for runtime class "gvisor", but container "train" requests nvidia.com/gpu, which needs a GPU runtime (runtime class "nvidia" or stronger); change the override, or name a runtime class in spec.runtimeClassName`}
}

test_override_to_a_missing_class_is_denied if {
	d := decide(make("research", {}, wants("kata-fc"), {}))
	d.class == ""
	d.deny == {`pod rejected: namespace "research" annotation runtimeguard.io/runtime-class=kata-fc asks for runtime class "kata-fc", but it cannot run this pod (kata-fc: RuntimeClass not found); change the override, or name a runtime class in spec.runtimeClassName`}
}

test_override_to_an_unavailable_class_is_denied if {
	unavailable := {"cluster": {"runtimeClasses": {"kata": {"available": false, "reason": "no node runs it"}}}}
	d := decide(object.union(make("tenant-b", untrusted, wants("kata"), {}), unavailable))
	d.class == ""
	d.deny == {`pod rejected: namespace "tenant-b" annotation runtimeguard.io/runtime-class=kata asks for runtime class "kata", but it cannot run this pod (kata: no node runs it); change the override, or name a runtime class in spec.runtimeClassName`}
}

test_pod_naming_a_class_is_judged_on_that_class_alone if {
	# The escape hatch for a Pod the override cannot serve.
	named := object.union(gpu_pod, {"runtimeClassName": "gvisor-nvidia"})
	decide(make("research", {}, wants("gvisor"), named)).deny == set()

	# And a Pod after injection (what the validating webhook sees) is allowed.
	decide(make("tenant-b", untrusted, wants("kata"), {"runtimeClassName": "kata"})).deny == set()

	# The default policy's own rules still apply to a named class.
	count(decide(make("legacy-payments", financial, wants("kata"), {"runtimeClassName": "gvisor"})).deny) == 1
}

test_empty_annotation_is_no_override if {
	d := decide(make("tenant-b", untrusted, wants(""), {}))
	d.class == "gvisor"
}

test_annotation_key_is_data if {
	d := runtimeguard.decision with input as make("research", {}, {"example.com/runtime": "kata"}, {})
		with data.config.team_overrides as {"annotation": "example.com/runtime"}
	d.class == "kata"
}

test_inert_without_configuration if {
	d := runtimeguard.decision with input as make("tenant-b", untrusted, wants("kata"), {})
		with data.config.team_overrides as {}
	d.class == "gvisor"
}
