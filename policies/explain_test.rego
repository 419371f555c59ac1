# Tests of data.runtimeguard.explain (explain.rego) with the default policy and its data:
#
#   bin/opa test policies/runtimeguard.rego policies/explain.rego policies/explain_test.rego policies/data.yaml
package explain_test

import data.runtimeguard

class(handler, selector, available) := {
	"handler": handler,
	"nodeSelector": selector,
	"tolerations": null,
	"overhead": null,
	"available": available,
	"known": true,
	"source": "status",
	"reason": sprintf("handler %q: available=%v (1 of 3 nodes)", [handler, available]),
}

classes := {
	"gvisor": class("runsc", {"sandbox.runtimeguard.io/gvisor": "true"}, true),
	"kata": class("kata-qemu", {"katacontainers.io/kata-runtime": "true"}, true),
	"nvidia": class("nvidia", {"nvidia.com/gpu.present": "true"}, true),
	"gvisor-nvidia": class("runsc-nvidia", {"nvidia.com/gpu.present": "true"}, true),
	"runc": class("runc", null, true),
}

make(ns_labels, pod, runtime_classes) := {
	"operation": "CREATE",
	"namespace": {"name": "team", "labels": ns_labels, "annotations": {}},
	"pod": object.union(
		{
			"generateName": "app-", "namespace": "team", "labels": {}, "annotations": {},
			"runtimeClassName": "", "nodeSelector": {},
			"hostNetwork": false, "hostPID": false, "hostIPC": false,
			"containers": [{"name": "app", "image": "registry.example.com/app:1", "privileged": false, "extendedResources": {}}],
			"initContainers": [],
		},
		pod,
	),
	"cluster": {"nodes": 3, "runtimeClasses": runtime_classes},
}

untrusted := {"runtimeguard.io/tenancy": "untrusted"}

gpu_pod := {"containers": [{"name": "train", "image": "nvcr.io/nvidia/pytorch:24.01-py3", "privileged": false, "extendedResources": {"nvidia.com/gpu": 1}}]}

verdicts(e) := {c.name: c.verdict | some c in e.classes}

order(e) := [c.name | some c in e.classes]

by_name(e, name) := c if {
	some c in e.classes
	c.name == name
}

test_untrusted_gpu_pod_traced_class_by_class if {
	e := runtimeguard.explain with input as make(untrusted, gpu_pod, classes)
	e.traits == {
		"gpu": {"sources": [`container "train" requests nvidia.com/gpu`], "needs": "a GPU runtime"},
		"untrusted": {"sources": [`namespace "team" is runtimeguard.io/tenancy=untrusted`], "needs": "isolation >= 1"},
	}
	e.requirements == {"isolation": 1, "gpu": true}
	e.chosen_class == "gvisor-nvidia"
	e.named_class == ""
	e.override == null

	# Price order: no GPU first, then isolation, then the data's order; then unlisted classes.
	order(e) == ["gvisor", "kata", "nvidia", "gvisor-nvidia", "kata-nvidia-gpu", "runc"]
	verdicts(e) == {
		"gvisor": "skipped: no GPU, and the pod needs a GPU runtime",
		"kata": "skipped: no GPU, and the pod needs a GPU runtime",
		"nvidia": "skipped: isolation 0 is below the required 1",
		"gvisor-nvidia": "chosen",
		"kata-nvidia-gpu": "skipped: RuntimeClass not found in the cluster",
		"runc": "skipped: isolation 0 is below the required 1 (not listed in data.config.classes); no GPU, and the pod needs a GPU runtime",
	}
	by_name(e, "gvisor-nvidia") == {
		"name": "gvisor-nvidia", "listed": true, "isolation": 1, "gpu": true, "meets": true,
		"exists": true, "handler": "runsc-nvidia", "available": true,
		"availability_reason": `handler "runsc-nvidia": available=true (1 of 3 nodes)`,
		"conflicts": [], "verdict": "chosen",
	}
	by_name(e, "kata-nvidia-gpu").exists == false
	by_name(e, "kata-nvidia-gpu").availability_reason == "RuntimeClass not found in the cluster"
	by_name(e, "runc").listed == false
}

test_no_traits_needs_nothing if {
	e := runtimeguard.explain with input as make({}, {}, classes)
	e.traits == {}
	e.requirements == {"isolation": 0, "gpu": false}
	e.chosen_class == ""
	every _, v in verdicts(e) {
		v == "not needed"
	}
}

test_classes_after_the_choice_are_not_needed if {
	e := runtimeguard.explain with input as make(untrusted, {}, classes)
	verdicts(e).gvisor == "chosen"
	verdicts(e).kata == "not needed"
	verdicts(e).nvidia == "skipped: isolation 0 is below the required 1"
}

test_unavailable_class_says_why if {
	cls := object.union(classes, {"gvisor": class("runsc", {"sandbox.runtimeguard.io/gvisor": "true"}, false)})
	e := runtimeguard.explain with input as make(untrusted, {}, cls)
	by_name(e, "gvisor").available == false
	by_name(e, "gvisor").meets == true
	verdicts(e).gvisor == `skipped: not available: handler "runsc": available=false (1 of 3 nodes)`
	verdicts(e).kata == "chosen"
}

test_node_selector_conflict if {
	pod := {"nodeSelector": {"sandbox.runtimeguard.io/gvisor": "false"}}
	e := runtimeguard.explain with input as make(untrusted, pod, classes)
	by_name(e, "gvisor").conflicts == ["runtimeClass.scheduling.nodeSelector[sandbox.runtimeguard.io/gvisor] = true; pod.spec.nodeSelector[sandbox.runtimeguard.io/gvisor] = false"]
	verdicts(e).gvisor == "skipped: its scheduling.nodeSelector conflicts with the pod's nodeSelector (runtimeClass.scheduling.nodeSelector[sandbox.runtimeguard.io/gvisor] = true; pod.spec.nodeSelector[sandbox.runtimeguard.io/gvisor] = false)"
	verdicts(e).kata == "chosen"
}

test_named_class_is_reported if {
	e := runtimeguard.explain with input as make({"runtimeguard.io/tenancy": "financial"}, {"runtimeClassName": "gvisor"}, classes)
	e.named_class == "gvisor"
	e.chosen_class == "kata"
	verdicts(e).gvisor == "skipped: isolation 1 is below the required 2"
}

test_override_applied if {
	override := {"class": "kata", "source": "a test"}
	e := runtimeguard.explain with input as make(untrusted, {}, classes) with runtimeguard.class_override as override
	e.override == {"class": "kata", "source": "a test", "applied": true}
	verdicts(e).kata == "chosen"
	verdicts(e).gvisor == `skipped: a test asks for runtime class "kata" instead`
}

test_override_rejected if {
	override := {"class": "nvidia", "source": "a test"}
	e := runtimeguard.explain with input as make(untrusted, {}, classes) with runtimeguard.class_override as override
	e.override == {"class": "nvidia", "source": "a test", "applied": false}
	e.chosen_class == ""
	verdicts(e).nvidia == "skipped: isolation 0 is below the required 1"
	verdicts(e).gvisor == `skipped: a test asks for runtime class "nvidia" instead`
}

test_override_without_requirement if {
	override := {"class": "gvisor", "source": "a test"}
	e := runtimeguard.explain with input as make({}, {}, classes) with runtimeguard.class_override as override
	verdicts(e).gvisor == "chosen"
	verdicts(e).kata == "not needed"
}

# A trait may require nothing of the runtime (a label platform teams only want traced): explain
# says so, and the Pod has no requirement.
test_trait_that_requires_nothing if {
	traits := object.union(data.config.traits, {"audited": {"pod_labels": {"example.com/audited": "true"}, "requires": {}}})
	e := runtimeguard.explain with input as make({}, {"labels": {"example.com/audited": "true"}}, classes)
		with data.config.traits as traits
	e.traits == {"audited": {"sources": ["pod label example.com/audited=true"], "needs": "nothing"}}
	e.requirements == {"isolation": 0, "gpu": false}
	e.requirement_text == "none (no trait requires a sandboxed or GPU runtime)"
	e.chosen_class == ""
}

# Without a requirement, a class is still considered when an override names it: an override
# naming an unavailable class says why it was not applied.
test_override_without_requirement_naming_an_unavailable_class if {
	override := {"class": "kata", "source": "a test"}
	cls := object.union(classes, {"kata": class("kata-qemu", {"katacontainers.io/kata-runtime": "true"}, false)})
	e := runtimeguard.explain with input as make({}, {}, cls) with runtimeguard.class_override as override
	e.override.applied == false
	e.chosen_class == ""
	verdicts(e).kata == `skipped: not available: handler "kata-qemu": available=false (1 of 3 nodes)`
	verdicts(e).gvisor == "not needed"
}
