# Unit tests of the default policy (runtimeguard.rego) against its data (data.yaml).
#
#   bin/opa test policies/                     # every suite, default data loaded at data.config
#   bin/opa test --coverage --format=json policies/
#
# Inputs are built the way webhook/policy/input.go builds them: every field present, maps
# empty rather than missing, runtimeClassName "" when unset, cluster classes with the
# availability fields of webhook/cluster/availability.go (nodeSelector, tolerations and
# overhead are null when the RuntimeClass has none).
package runtimeguard_test

import data.runtimeguard

# ---------------------------------------------------------------------------------------------
# Fixtures

available_class(handler, selector) := {
	"handler": handler,
	"nodeSelector": selector,
	"tolerations": null,
	"overhead": null,
	"available": true,
	"known": true,
	"source": "status",
	"reason": sprintf("1 of 4 nodes can run handler %q (1 via status.runtimeHandlers, 0 via labels)", [handler]),
}

# unavailable turns an entry of cluster.runtimeClasses into one no usable node advertises.
unavailable(name) := object.union(cluster.runtimeClasses[name], {
	"available": false,
	"source": "none",
	"reason": sprintf("no Ready, schedulable node advertises handler %q (0 of 4 nodes)", [cluster.runtimeClasses[name].handler]),
})

# Every class data.yaml describes, plus runc and wasm that it does not describe.
cluster := {
	"nodes": 4,
	"runtimeClasses": {
		"gvisor": available_class("runsc", {"sandbox.runtimeguard.io/gvisor": "true"}),
		"kata": available_class("kata-qemu", {"katacontainers.io/kata-runtime": "true"}),
		"nvidia": available_class("nvidia", {"nvidia.com/gpu.present": "true"}),
		"gvisor-nvidia": available_class("runsc-nvidia", {"nvidia.com/gpu.present": "true"}),
		"kata-nvidia-gpu": available_class("kata-nvidia-gpu", {"nvidia.com/gpu.present": "true"}),
		"runc": available_class("runc", null),
		"wasm": available_class("wasmtime", null),
	},
}

# cluster_with replaces some runtimeClasses entries.
cluster_with(classes) := object.union(cluster, {"runtimeClasses": classes})

# cluster_without removes RuntimeClasses.
cluster_without(names) := {
	"nodes": cluster.nodes,
	"runtimeClasses": object.remove(cluster.runtimeClasses, names),
}

container(name, extended) := {
	"name": name,
	"image": "registry.example.com/app:1",
	"privileged": false,
	"extendedResources": extended,
}

base_pod(ns) := {
	"generateName": "app-",
	"namespace": ns,
	"labels": {},
	"annotations": {},
	"runtimeClassName": "",
	"nodeSelector": {},
	"hostNetwork": false,
	"hostPID": false,
	"hostIPC": false,
	"containers": [container("app", {})],
	"initContainers": [],
}

# make(ns, ns_labels, pod, c): pod holds the fields that differ from base_pod(ns).
make(ns, ns_labels, pod, c) := {
	"operation": "CREATE",
	"namespace": {"name": ns, "labels": ns_labels, "annotations": {}},
	"pod": object.union(base_pod(ns), pod),
	"cluster": c,
}

untrusted_ns := {"runtimeguard.io/tenancy": "untrusted"}

financial_ns := {"runtimeguard.io/tenancy": "financial"}

gpu := {"nvidia.com/gpu": 1}

in_default(pod) := make("default", {}, pod, cluster)

in_tenant(pod) := make("tenant-a", untrusted_ns, pod, cluster)

in_payments(pod) := make("payments", financial_ns, pod, cluster)

gpu_pod := {"containers": [container("train", gpu)]}

# ---------------------------------------------------------------------------------------------
# Decision shape: the fields and types webhook/policy/decision.go reads.

test_decision_has_the_documented_shape if {
	d := runtimeguard.decision with input as in_tenant({})
	object.keys(d) == {"class", "acceptable", "deny", "warn", "reasons", "traits", "requirements", "conflicts"}
	is_string(d.class)
	is_set(d.acceptable)
	is_set(d.deny)
	is_set(d.warn)
	is_array(d.reasons)
	is_object(d.traits)
	every _, sources in d.traits {
		is_set(sources)
		every s in sources {
			is_string(s)
		}
	}
	every r in d.reasons {
		is_string(r)
	}
	d.requirements == {"isolation": 1, "gpu": false}
	d.conflicts == []
}

test_decision_is_defined_for_a_pod_without_containers if {
	d := runtimeguard.decision with input as in_default({"containers": []})
	d.class == ""
	d.deny == set()
}

test_decision_tolerates_missing_container_lists if {
	inp := json.patch(in_tenant(gpu_pod), [{"op": "remove", "path": "/pod/initContainers"}])
	d := runtimeguard.decision with input as inp
	d.class == "gvisor-nvidia"
	inp2 := json.patch(in_tenant({}), [
		{"op": "remove", "path": "/pod/initContainers"},
		{"op": "remove", "path": "/pod/containers"},
	])
	d2 := runtimeguard.decision with input as inp2
	d2.class == "gvisor"
}

test_default_policy_has_no_warnings if {
	# Only the default data: example modules loaded next to this one stay inert.
	default_data := {"traits": data.config.traits, "classes": data.config.classes}
	every inp in [in_default({}), in_tenant(gpu_pod), in_payments({"runtimeClassName": "gvisor"})] {
		runtimeguard.decision.warn == set() with input as inp with data.config as default_data
	}
}

# ---------------------------------------------------------------------------------------------
# Traits: where each one comes from.

test_trait_untrusted_from_namespace_label if {
	d := runtimeguard.decision with input as in_tenant({})
	d.traits == {"untrusted": {`namespace "tenant-a" is runtimeguard.io/tenancy=untrusted`}}
}

test_trait_untrusted_from_pod_label if {
	d := runtimeguard.decision with input as in_default({"labels": {"runtimeguard.io/workload": "untrusted"}})
	d.traits == {"untrusted": {"pod label runtimeguard.io/workload=untrusted"}}
	d.class == "gvisor"
}

test_trait_financial_from_namespace_label if {
	d := runtimeguard.decision with input as in_payments({})
	d.traits == {"financial": {`namespace "payments" is runtimeguard.io/tenancy=financial`}}
}

test_trait_financial_from_pod_label if {
	d := runtimeguard.decision with input as in_default({"labels": {"runtimeguard.io/workload": "financial"}})
	d.traits == {"financial": {"pod label runtimeguard.io/workload=financial"}}
	d.class == "kata"
}

test_trait_gpu_from_pod_label if {
	d := runtimeguard.decision with input as in_default({"labels": {"runtimeguard.io/workload": "gpu"}})
	d.traits == {"gpu": {"pod label runtimeguard.io/workload=gpu"}}
	d.class == "nvidia"
}

test_trait_gpu_from_container_request if {
	d := runtimeguard.decision with input as in_default(gpu_pod)
	d.traits == {"gpu": {`container "train" requests nvidia.com/gpu`}}
}

test_trait_gpu_from_init_container_request if {
	d := runtimeguard.decision with input as in_default({"initContainers": [container("warmup", gpu)]})
	d.traits == {"gpu": {`container "warmup" requests nvidia.com/gpu`}}
	d.class == "nvidia"
}

test_trait_gpu_from_every_requesting_container if {
	d := runtimeguard.decision with input as in_default({
		"containers": [container("a", gpu), container("b", {"nvidia.com/gpu": 4}), container("c", {})],
		"initContainers": [container("i", gpu)],
	})
	d.traits == {"gpu": {
		`container "a" requests nvidia.com/gpu`,
		`container "b" requests nvidia.com/gpu`,
		`container "i" requests nvidia.com/gpu`,
	}}
}

test_zero_gpu_request_is_no_trait if {
	d := runtimeguard.decision with input as in_default({"containers": [container("app", {"nvidia.com/gpu": 0})]})
	d.traits == {}
	d.class == ""
}

test_other_extended_resources_are_no_trait if {
	d := runtimeguard.decision with input as in_default({"containers": [container("app", {"example.com/fpga": 1})]})
	d.traits == {}
}

test_other_label_values_are_no_trait if {
	d := runtimeguard.decision with input as make(
		"internal", {"runtimeguard.io/tenancy": "trusted"},
		{"labels": {"runtimeguard.io/workload": "batch"}}, cluster,
	)
	d.traits == {}
	d.requirements == {"isolation": 0, "gpu": false}
}

test_a_trait_lists_every_source if {
	d := runtimeguard.decision with input as in_tenant({"labels": {"runtimeguard.io/workload": "untrusted"}})
	d.traits == {"untrusted": {
		`namespace "tenant-a" is runtimeguard.io/tenancy=untrusted`,
		"pod label runtimeguard.io/workload=untrusted",
	}}
}

# ---------------------------------------------------------------------------------------------
# Requirements and the class chosen for a Pod that names none.

test_no_traits_no_requirement_no_class if {
	d := runtimeguard.decision with input as in_default({})
	d.traits == {}
	d.requirements == {"isolation": 0, "gpu": false}
	d.class == ""
	d.deny == set()
	d.reasons == ["no trait requires a sandboxed or GPU runtime"]
}

test_untrusted_gets_gvisor if {
	d := runtimeguard.decision with input as in_tenant({})
	d.requirements == {"isolation": 1, "gpu": false}
	d.class == "gvisor"
}

test_financial_gets_kata if {
	d := runtimeguard.decision with input as in_payments({})
	d.requirements == {"isolation": 2, "gpu": false}
	d.class == "kata"
}

test_financial_and_untrusted_gets_kata if {
	d := runtimeguard.decision with input as in_payments({"labels": {"runtimeguard.io/workload": "untrusted"}})
	object.keys(d.traits) == {"financial", "untrusted"}
	d.requirements == {"isolation": 2, "gpu": false}
	d.class == "kata"
}

test_gpu_gets_nvidia if {
	d := runtimeguard.decision with input as in_default(gpu_pod)
	d.requirements == {"isolation": 0, "gpu": true}
	d.class == "nvidia"
}

test_untrusted_gpu_gets_gvisor_nvidia if {
	d := runtimeguard.decision with input as in_tenant(gpu_pod)
	d.requirements == {"isolation": 1, "gpu": true}
	d.class == "gvisor-nvidia"
}

test_financial_gpu_gets_kata_nvidia_gpu if {
	d := runtimeguard.decision with input as in_payments(gpu_pod)
	d.requirements == {"isolation": 2, "gpu": true}
	d.class == "kata-nvidia-gpu"
}

test_fallback_untrusted_gets_kata_when_gvisor_unavailable if {
	d := runtimeguard.decision with input as make("tenant-a", untrusted_ns, {}, cluster_with({"gvisor": unavailable("gvisor")}))
	d.class == "kata"
	d.deny == {`pod rejected: namespace "tenant-a" is runtimeguard.io/tenancy=untrusted, which needs isolation >= 1; spec.runtimeClassName is not set; set it to "kata" (runtimeguard's mutating webhook does this when it is registered)`}
	`skipped gvisor: no Ready, schedulable node advertises handler "runsc" (0 of 4 nodes)` in d.reasons
}

test_fallback_when_runtimeclass_is_missing if {
	d := runtimeguard.decision with input as make("tenant-a", untrusted_ns, {}, cluster_without({"gvisor"}))
	d.class == "kata"
	"skipped gvisor: RuntimeClass not found" in d.reasons
}

test_fallback_untrusted_gpu_gets_kata_nvidia_gpu if {
	d := runtimeguard.decision with input as make("tenant-a", untrusted_ns, gpu_pod, cluster_without({"gvisor-nvidia"}))
	d.class == "kata-nvidia-gpu"
}

test_class_conflicting_with_pod_node_selector_is_skipped if {
	d := runtimeguard.decision with input as in_tenant({"nodeSelector": {"sandbox.runtimeguard.io/gvisor": "false"}})
	d.class == "kata"
	"skipped gvisor: its scheduling.nodeSelector conflicts with the pod's nodeSelector" in d.reasons
}

# The validating webhook words the denial of a named class from decision.conflicts.
test_named_class_conflicting_with_pod_node_selector_lists_each_key if {
	d := runtimeguard.decision with input as in_tenant({
		"runtimeClassName": "gvisor",
		"nodeSelector": {"sandbox.runtimeguard.io/gvisor": "false", "topology.kubernetes.io/zone": "a"},
	})
	d.conflicts == [{"key": "sandbox.runtimeguard.io/gvisor", "class_value": "true", "pod_value": "false"}]
}

test_pod_node_selector_that_agrees_is_no_conflict if {
	d := runtimeguard.decision with input as in_tenant({"nodeSelector": {
		"sandbox.runtimeguard.io/gvisor": "true",
		"topology.kubernetes.io/zone": "a",
	}})
	d.class == "gvisor"
}

# usable_candidates takes a shortcut (available_candidates_for, evaluated once per cluster
# change) when the Pod has no placement of its own (placement.constraint "") and sets no node
# label a class's nodeSelector sets. It must list exactly what the general rule lists, shortcut taken or not.
no_placement := {"constraint": "", "nodes": "", "count": 0, "fix": "", "classes": {}}

# What Go sends for a Pod that asks nothing of its node: every class's cluster-wide reach.
unconstrained(inp) := object.union(inp, {"placement": object.union(no_placement, {"classes": {name: {
	"available": rc.available,
	"known": rc.known,
	"nodes": 1,
	"detail": rc.reason,
	"reason": rc.reason,
} |
	some name, rc in inp.cluster.runtimeClasses
}})})

test_usable_candidates_shortcut_agrees_with_the_general_rule if {
	inputs := [
		in_tenant({}),
		in_tenant({"nodeSelector": {"kubernetes.io/os": "linux"}}),
		in_tenant(gpu_pod),
		in_payments({}),
		make("tenant-a", untrusted_ns, {}, cluster_with({"gvisor": unavailable("gvisor")})),
		make("tenant-a", untrusted_ns, gpu_pod, cluster_without({"gvisor-nvidia"})),
		in_tenant({"nodeSelector": {"sandbox.runtimeguard.io/gvisor": "false"}}), # no shortcut
		in_tenant({"nodeSelector": {"sandbox.runtimeguard.io/gvisor": "true"}}), # no shortcut
	]
	every inp in inputs {
		every with_placement in [object.union(inp, {"placement": no_placement}), unconstrained(inp)] {
			fast := runtimeguard.usable_candidates with input as with_placement
			general := [name | some name in runtimeguard.candidates; runtimeguard.usable(name)] with input as with_placement
			fast == general
			count(general) > 0
		}
	}
}

test_usable_candidates_shortcut_skips_unavailable_classes if {
	inp := make("tenant-a", untrusted_ns, {}, cluster_with({"gvisor": unavailable("gvisor")}))
	with_placement := unconstrained(inp)
	runtimeguard.available_candidates_for[1][false] == ["kata", "gvisor-nvidia", "kata-nvidia-gpu"] with input as with_placement
	runtimeguard.usable_candidates == ["kata", "gvisor-nvidia", "kata-nvidia-gpu"] with input as with_placement
	not runtimeguard.pod_selects_class_keys with input as with_placement
}

test_usable_candidates_shortcut_is_not_taken_when_the_pod_selects_a_class_key if {
	inp := in_tenant({"nodeSelector": {"sandbox.runtimeguard.io/gvisor": "false"}})
	with_placement := object.union(inp, {"placement": no_placement})
	runtimeguard.pod_selects_class_keys with input as with_placement
	runtimeguard.usable_candidates == ["kata", "gvisor-nvidia", "kata-nvidia-gpu"] with input as with_placement
}

# decided_reasons looks the reasons up (cheapest_reasons) when the cheapest candidate was
# chosen. For every requirement they must read exactly what the general rule builds.
test_cheapest_reasons_agree_with_the_general_rule if {
	count(runtimeguard.cheapest_reasons) > 0
	every level, by_gpu in runtimeguard.cheapest_reasons {
		every gpu, by_class in by_gpu {
			every class, looked_up in by_class {
				general := runtimeguard.general_decided_reasons with runtimeguard.required_isolation as level
					with runtimeguard.required_gpu as gpu
					with runtimeguard.chosen_class as class
					with input as in_tenant({})
				looked_up == general
			}
		}
	}
}

test_reasons_take_the_general_rule_when_a_cheaper_class_is_skipped if {
	inp := make("tenant-a", untrusted_ns, {}, cluster_with({"gvisor": unavailable("gvisor")}))
	reasons := runtimeguard.reasons with input as inp
	some r in reasons
	startswith(r, "skipped gvisor")
	runtimeguard.decided_reasons == runtimeguard.general_decided_reasons with input as inp
}

test_class_without_node_selector_never_conflicts if {
	# runc and wasm have nodeSelector null, as Go sends a RuntimeClass without scheduling.
	d := runtimeguard.decision with input as in_tenant({"nodeSelector": {"kubernetes.io/arch": "arm64"}})
		with data.config.classes as [{"name": "wasm", "isolation": 1, "gpu": false}]
	d.class == "wasm"
}

test_equal_isolation_prefers_data_order if {
	# Among GPU classes, gvisor-nvidia (isolation 1) comes before kata-nvidia-gpu (2).
	d := runtimeguard.decision with input as in_tenant(gpu_pod)
	d.class == "gvisor-nvidia"

	# Among equal isolation, the first listed wins.
	classes := [
		{"name": "kata", "isolation": 1, "gpu": false},
		{"name": "gvisor", "isolation": 1, "gpu": false},
	]
	d2 := runtimeguard.decision with input as in_tenant({}) with data.config.classes as classes
	d2.class == "kata"
}

# ---------------------------------------------------------------------------------------------
# No available class: class "" and a denial naming the trait source and every class's reason.

test_no_available_class_denies_with_every_reason if {
	c := cluster_with({
		"kata": unavailable("kata"),
		"gvisor-nvidia": unavailable("gvisor-nvidia"),
		"kata-nvidia-gpu": unavailable("kata-nvidia-gpu"),
	})
	c2 := {"nodes": c.nodes, "runtimeClasses": object.remove(c.runtimeClasses, ["gvisor"])}
	d := runtimeguard.decision with input as make("tenant-a", untrusted_ns, {}, c2)
	d.class == ""
	d.deny == {concat("", [
		`pod rejected: namespace "tenant-a" is runtimeguard.io/tenancy=untrusted, which needs isolation >= 1, `,
		"but no runtime class that provides it is available (",
		"gvisor: RuntimeClass not found; ",
		`kata: no Ready, schedulable node advertises handler "kata-qemu" (0 of 4 nodes); `,
		`gvisor-nvidia: no Ready, schedulable node advertises handler "runsc-nvidia" (0 of 4 nodes); `,
		`kata-nvidia-gpu: no Ready, schedulable node advertises handler "kata-nvidia-gpu" (0 of 4 nodes)`,
		"); install the runtime on a node and make it advertise the handler, or create the RuntimeClass",
	])}
	d.reasons == [
		`trait untrusted: namespace "tenant-a" is runtimeguard.io/tenancy=untrusted`,
		"requires isolation >= 1",
		"skipped gvisor: RuntimeClass not found",
		`skipped kata: no Ready, schedulable node advertises handler "kata-qemu" (0 of 4 nodes)`,
		`skipped gvisor-nvidia: no Ready, schedulable node advertises handler "runsc-nvidia" (0 of 4 nodes)`,
		`skipped kata-nvidia-gpu: no Ready, schedulable node advertises handler "kata-nvidia-gpu" (0 of 4 nodes)`,
	]
}

test_no_available_gpu_class_names_conflicts_and_every_source if {
	# Every GPU class selects nvidia.com/gpu.present=true; the Pod asks for other nodes.
	d := runtimeguard.decision with input as in_default({
		"labels": {"runtimeguard.io/workload": "gpu"},
		"nodeSelector": {"nvidia.com/gpu.present": "false"},
		"containers": [container("train", gpu)],
	})
	d.class == ""
	d.deny == {concat("", [
		`pod rejected: container "train" requests nvidia.com/gpu and pod label runtimeguard.io/workload=gpu, `,
		"which needs a GPU runtime, but no runtime class that provides it is available (",
		"nvidia: its scheduling.nodeSelector conflicts with the pod's nodeSelector; ",
		"gvisor-nvidia: its scheduling.nodeSelector conflicts with the pod's nodeSelector; ",
		"kata-nvidia-gpu: its scheduling.nodeSelector conflicts with the pod's nodeSelector",
		"); install the runtime on a node and make it advertise the handler, or create the RuntimeClass",
	])}
}

test_requirement_no_class_in_data_provides if {
	traits := {"secret": {"namespace_labels": {"tier": "secret"}, "requires": {"isolation": 3}}}
	d := runtimeguard.decision with input as make("vault", {"tier": "secret"}, {}, cluster)
		with data.config.traits as traits
	d.class == ""
	d.acceptable == set()
	d.deny == {concat("", [
		`pod rejected: namespace "vault" is tier=secret, which needs isolation >= 3, `,
		"but no runtime class that provides it is available (no class in data.config.classes provides it); ",
		"install the runtime on a node and make it advertise the handler, or create the RuntimeClass",
	])}
}

# ---------------------------------------------------------------------------------------------
# A Pod that names its class (or got it from the mutating webhook).

test_named_class_meeting_requirement_is_allowed if {
	d := runtimeguard.decision with input as in_tenant({"runtimeClassName": "gvisor"})
	d.deny == set()
}

test_named_stronger_class_is_allowed if {
	d := runtimeguard.decision with input as in_tenant({"runtimeClassName": "kata"})
	d.deny == set()
	d.class == "gvisor" # what would be injected; Go injects only when the Pod names no class
}

test_named_gpu_class_with_more_isolation_is_allowed if {
	d := runtimeguard.decision with input as in_default({"runtimeClassName": "kata-nvidia-gpu", "containers": [container("train", gpu)]})
	d.deny == set()
}

test_named_weaker_class_is_denied_with_exact_message if {
	d := runtimeguard.decision with input as in_payments({"runtimeClassName": "gvisor"})
	d.deny == {`pod rejected: namespace "payments" is runtimeguard.io/tenancy=financial, which needs isolation >= 2 (runtime class "kata" or stronger); spec.runtimeClassName is "gvisor"; remove spec.runtimeClassName to let runtimeguard choose, or set it to "kata"`}
}

test_named_class_without_gpu_is_denied if {
	d := runtimeguard.decision with input as in_tenant({"runtimeClassName": "gvisor", "containers": [container("train", gpu)]})
	d.deny == {`pod rejected: container "train" requests nvidia.com/gpu, which needs a GPU runtime (runtime class "gvisor-nvidia" or stronger); spec.runtimeClassName is "gvisor"; remove spec.runtimeClassName to let runtimeguard choose, or set it to "gvisor-nvidia"`}
}

test_named_class_lists_every_unmet_source if {
	d := runtimeguard.decision with input as in_payments({
		"runtimeClassName": "nvidia",
		"labels": {"runtimeguard.io/workload": "untrusted"},
		"containers": [container("train", gpu)],
	})
	d.deny == {concat("", [
		`pod rejected: namespace "payments" is runtimeguard.io/tenancy=financial, which needs isolation >= 2 and `,
		"pod label runtimeguard.io/workload=untrusted, which needs isolation >= 1 ",
		`(runtime class "kata-nvidia-gpu" or stronger); spec.runtimeClassName is "nvidia"; `,
		`remove spec.runtimeClassName to let runtimeguard choose, or set it to "kata-nvidia-gpu"`,
	])}
}

test_named_class_message_for_trait_needing_isolation_and_gpu if {
	traits := {"secure-gpu": {"pod_labels": {"workload": "secure-gpu"}, "requires": {"isolation": 2, "gpu": true}}}
	d := runtimeguard.decision with input as in_default({"runtimeClassName": "nvidia", "labels": {"workload": "secure-gpu"}})
		with data.config.traits as traits
	d.requirements == {"isolation": 2, "gpu": true}
	d.deny == {`pod rejected: pod label workload=secure-gpu, which needs isolation >= 2 and a GPU runtime (runtime class "kata-nvidia-gpu" or stronger); spec.runtimeClassName is "nvidia"; remove spec.runtimeClassName to let runtimeguard choose, or set it to "kata-nvidia-gpu"`}
	"requires isolation >= 2 and a GPU runtime" in d.reasons
}

test_named_class_suggests_a_class_even_when_none_is_available if {
	c := cluster_with({"kata": unavailable("kata"), "kata-nvidia-gpu": unavailable("kata-nvidia-gpu")})
	d := runtimeguard.decision with input as make("payments", financial_ns, {"runtimeClassName": "gvisor"}, c)
	d.deny == {`pod rejected: namespace "payments" is runtimeguard.io/tenancy=financial, which needs isolation >= 2 (runtime class "kata" or stronger); spec.runtimeClassName is "gvisor"; remove spec.runtimeClassName to let runtimeguard choose, or set it to "kata"`}
}

test_named_class_when_no_class_in_data_provides if {
	traits := {"secret": {"namespace_labels": {"tier": "secret"}, "requires": {"isolation": 3}}}
	d := runtimeguard.decision with input as make("vault", {"tier": "secret"}, {"runtimeClassName": "kata"}, cluster)
		with data.config.traits as traits
	d.deny == {`pod rejected: namespace "vault" is tier=secret, which needs isolation >= 3 (no runtime class in data.config.classes provides it); spec.runtimeClassName is "kata"; describe a class that provides it in data.config.classes`}
}

test_unknown_class_allowed_without_requirement if {
	every class in ["runc", "wasm", "not-in-the-cluster-either"] {
		runtimeguard.decision.deny == set() with input as in_default({"runtimeClassName": class})
	}
}

test_unknown_class_counts_as_isolation_0_without_gpu if {
	d := runtimeguard.decision with input as in_tenant({"runtimeClassName": "runc"})
	d.deny == {`pod rejected: namespace "tenant-a" is runtimeguard.io/tenancy=untrusted, which needs isolation >= 1 (runtime class "gvisor" or stronger); spec.runtimeClassName is "runc"; remove spec.runtimeClassName to let runtimeguard choose, or set it to "gvisor"`}

	d2 := runtimeguard.decision with input as in_default({"runtimeClassName": "wasm", "containers": [container("train", gpu)]})
	d2.deny == {`pod rejected: container "train" requests nvidia.com/gpu, which needs a GPU runtime (runtime class "nvidia" or stronger); spec.runtimeClassName is "wasm"; remove spec.runtimeClassName to let runtimeguard choose, or set it to "nvidia"`}
}

test_pod_without_class_but_requirement_is_denied_as_not_set if {
	# The validating webhook sees this only when the mutating webhook did not run.
	d := runtimeguard.decision with input as in_tenant(gpu_pod)
	d.class == "gvisor-nvidia"
	d.deny == {`pod rejected: container "train" requests nvidia.com/gpu and namespace "tenant-a" is runtimeguard.io/tenancy=untrusted, which needs isolation >= 1 and a GPU runtime; spec.runtimeClassName is not set; set it to "gvisor-nvidia" (runtimeguard's mutating webhook does this when it is registered)`}
}

test_pod_without_class_and_without_requirement_is_not_denied if {
	runtimeguard.decision.deny == set() with input as in_default({"labels": {"app": "web"}})
}

# ---------------------------------------------------------------------------------------------
# acceptable: every class, in the cluster or in data, that meets the requirements.

test_acceptable_without_requirement_is_every_class if {
	d := runtimeguard.decision with input as in_default({})
	d.acceptable == {"gvisor", "kata", "nvidia", "gvisor-nvidia", "kata-nvidia-gpu", "runc", "wasm"}
}

test_acceptable_for_untrusted if {
	d := runtimeguard.decision with input as in_tenant({})
	d.acceptable == {"gvisor", "kata", "gvisor-nvidia", "kata-nvidia-gpu"}
}

test_acceptable_for_financial if {
	d := runtimeguard.decision with input as in_payments({})
	d.acceptable == {"kata", "kata-nvidia-gpu"}
}

test_acceptable_for_gpu if {
	d := runtimeguard.decision with input as in_default(gpu_pod)
	d.acceptable == {"nvidia", "gvisor-nvidia", "kata-nvidia-gpu"}
}

test_acceptable_ignores_availability_and_includes_classes_missing_from_the_cluster if {
	c := cluster_with({"kata": unavailable("kata")})
	c2 := {"nodes": c.nodes, "runtimeClasses": object.remove(c.runtimeClasses, ["kata-nvidia-gpu"])}
	d := runtimeguard.decision with input as make("payments", financial_ns, {}, c2)
	d.acceptable == {"kata", "kata-nvidia-gpu"}
}

# ---------------------------------------------------------------------------------------------
# reasons: traits (sorted), requirement, classes passed over (only those cheaper than the
# choice), the choice.

test_reasons_order if {
	c := cluster_with({"gvisor-nvidia": unavailable("gvisor-nvidia")})
	d := runtimeguard.decision with input as make("tenant-a", untrusted_ns, {"containers": [container("train", gpu)]}, c)
	d.class == "kata-nvidia-gpu"
	d.reasons == [
		`trait gpu: container "train" requests nvidia.com/gpu`,
		`trait untrusted: namespace "tenant-a" is runtimeguard.io/tenancy=untrusted`,
		"requires isolation >= 1 and a GPU runtime",
		`skipped gvisor-nvidia: no Ready, schedulable node advertises handler "runsc-nvidia" (0 of 4 nodes)`,
		`cheapest available class that provides isolation >= 1 and a GPU runtime: "kata-nvidia-gpu"`,
	]
}

test_reasons_skip_only_classes_cheaper_than_the_choice if {
	c := cluster_with({"kata": unavailable("kata"), "gvisor-nvidia": unavailable("gvisor-nvidia")})
	d := runtimeguard.decision with input as make("tenant-a", untrusted_ns, {}, c)
	d.class == "gvisor"
	d.reasons == [
		`trait untrusted: namespace "tenant-a" is runtimeguard.io/tenancy=untrusted`,
		"requires isolation >= 1",
		`cheapest available class that provides isolation >= 1: "gvisor"`,
	]
}

test_reasons_for_gpu_only if {
	d := runtimeguard.decision with input as in_default(gpu_pod)
	d.reasons == [
		`trait gpu: container "train" requests nvidia.com/gpu`,
		"requires a GPU runtime",
		`cheapest available class that provides a GPU runtime: "nvidia"`,
	]
}

test_reasons_for_isolation_only if {
	d := runtimeguard.decision with input as in_payments({})
	d.reasons == [
		`trait financial: namespace "payments" is runtimeguard.io/tenancy=financial`,
		"requires isolation >= 2",
		`cheapest available class that provides isolation >= 2: "kata"`,
	]
}

# ---------------------------------------------------------------------------------------------
# Traits and classes are data: the Rego only combines them.

test_classes_are_data if {
	# With wasm described as a sandbox, untrusted Pods get wasm (it is in the cluster).
	classes := [{"name": "wasm", "isolation": 1, "gpu": false}]
	d := runtimeguard.decision with input as in_tenant({}) with data.config.classes as classes
	d.class == "wasm"
	d.acceptable == {"wasm"}

	# Without any class description, even gvisor counts as isolation 0.
	d2 := runtimeguard.decision with input as in_tenant({"runtimeClassName": "gvisor"}) with data.config.classes as []
	d2.class == ""
	count(d2.deny) == 1
}

test_traits_are_data if {
	traits := {"batch": {
		"namespace_labels": {"team": "batch"},
		"pod_labels": {"batch": "yes"},
		"extended_resources": ["example.com/fpga"],
		"requires": {"isolation": 2},
	}}
	d := runtimeguard.decision with input as make(
		"batch", {"team": "batch"},
		{"labels": {"batch": "yes"}, "containers": [container("c", {"example.com/fpga": 1})]}, cluster,
	)
		with data.config.traits as traits
	d.traits == {"batch": {`namespace "batch" is team=batch`, "pod label batch=yes", `container "c" requests example.com/fpga`}}
	d.class == "kata"

	# The default traits are gone: a tenancy label means nothing now.
	d2 := runtimeguard.decision with input as in_tenant({}) with data.config.traits as traits
	d2.traits == {}
}

test_trait_without_requirement_is_listed_but_requires_nothing if {
	traits := {"labelled": {"pod_labels": {"team": "a"}}}
	d := runtimeguard.decision with input as in_default({"labels": {"team": "a"}}) with data.config.traits as traits
	d.traits == {"labelled": {"pod label team=a"}}
	d.requirements == {"isolation": 0, "gpu": false}
	d.class == ""
	d.deny == set()
}

test_class_without_isolation_field_counts_as_isolation_0 if {
	classes := [{"name": "nvidia", "gpu": true}]
	d := runtimeguard.decision with input as in_default(gpu_pod) with data.config.classes as classes
	d.class == "nvidia"
	d.acceptable == {"nvidia"}
}

test_shipped_data_describes_the_documented_classes if {
	{c.name | some c in data.config.classes} == {"gvisor", "kata", "nvidia", "gvisor-nvidia", "kata-nvidia-gpu"}
	object.keys(data.config.traits) == {"untrusted", "financial", "gpu"}
}

test_pods_without_gpu_prefer_classes_without_gpu if {
	# gvisor-nvidia has less isolation than kata but takes a GPU node: kata comes first.
	c := cluster_with({"gvisor": unavailable("gvisor"), "kata": unavailable("kata")})
	d := runtimeguard.decision with input as make("tenant-a", untrusted_ns, {}, c)
	d.class == "gvisor-nvidia"
	d.reasons == [
		`trait untrusted: namespace "tenant-a" is runtimeguard.io/tenancy=untrusted`,
		"requires isolation >= 1",
		`skipped gvisor: no Ready, schedulable node advertises handler "runsc" (0 of 4 nodes)`,
		`skipped kata: no Ready, schedulable node advertises handler "kata-qemu" (0 of 4 nodes)`,
		`cheapest available class that provides isolation >= 1: "gvisor-nvidia"`,
	]
}

# ---------------------------------------------------------------------------------------------
# class_override: the hook custom policies use to pick the injected class
# (policies/examples/team-overrides).

override(class) := {"class": class, "source": "test override"}

test_default_policy_defines_no_override if {
	not runtimeguard.class_override with input as in_tenant({})
}

test_class_override_meeting_requirements_is_chosen if {
	d := runtimeguard.decision with input as in_tenant({}) with runtimeguard.class_override as override("kata")
	d.class == "kata"
	d.reasons == [
		`trait untrusted: namespace "tenant-a" is runtimeguard.io/tenancy=untrusted`,
		"requires isolation >= 1",
		`class override by test override: "kata"`,
	]
	d.deny == {`pod rejected: namespace "tenant-a" is runtimeguard.io/tenancy=untrusted, which needs isolation >= 1; spec.runtimeClassName is not set; set it to "kata" (runtimeguard's mutating webhook does this when it is registered)`}
}

# The override picks the class the policy would pick anyway: the reasons still say who chose.
test_class_override_of_the_cheapest_class_is_named_as_an_override if {
	d := runtimeguard.decision with input as in_tenant({}) with runtimeguard.class_override as override("gvisor")
	d.class == "gvisor"
	d.reasons[count(d.reasons) - 1] == `class override by test override: "gvisor"`
}

test_class_override_applies_without_requirement if {
	d := runtimeguard.decision with input as in_default({}) with runtimeguard.class_override as override("wasm")
	d.class == "wasm"
	d.deny == set()
	d.reasons == ["no trait requires a sandboxed or GPU runtime", `class override by test override: "wasm"`]
}

test_class_override_not_meeting_requirements_is_denied if {
	d := runtimeguard.decision with input as in_payments({}) with runtimeguard.class_override as override("gvisor")
	d.class == ""
	d.deny == {`pod rejected: test override asks for runtime class "gvisor", but namespace "payments" is runtimeguard.io/tenancy=financial, which needs isolation >= 2 (runtime class "kata" or stronger); change the override, or name a runtime class in spec.runtimeClassName`}
	d.reasons == [
		`trait financial: namespace "payments" is runtimeguard.io/tenancy=financial`,
		"requires isolation >= 2",
		`class override by test override: "gvisor" cannot serve this pod, nothing injected`,
	]

	# A Pod that names a class itself is judged on that class alone.
	d2 := runtimeguard.decision with input as in_payments({"runtimeClassName": "kata"})
		with runtimeguard.class_override as override("gvisor")
	d2.deny == set()
}

test_class_override_not_usable_is_denied if {
	c := cluster_with({"kata": unavailable("kata")})
	d := runtimeguard.decision with input as make("tenant-a", untrusted_ns, {}, c)
		with runtimeguard.class_override as override("kata")
	d.class == ""
	d.deny == {`pod rejected: test override asks for runtime class "kata", but it cannot run this pod (kata: no Ready, schedulable node advertises handler "kata-qemu" (0 of 4 nodes)); change the override, or name a runtime class in spec.runtimeClassName`}

	d2 := runtimeguard.decision with input as in_tenant({"nodeSelector": {"katacontainers.io/kata-runtime": "false"}})
		with runtimeguard.class_override as override("kata")
	d2.class == ""
	d2.deny == {`pod rejected: test override asks for runtime class "kata", but it cannot run this pod (kata: its scheduling.nodeSelector conflicts with the pod's nodeSelector); change the override, or name a runtime class in spec.runtimeClassName`}

	# Without a requirement too: the override never silently falls back to the node's default.
	d3 := runtimeguard.decision with input as in_default({}) with runtimeguard.class_override as override("missing")
	d3.class == ""
	d3.deny == {`pod rejected: test override asks for runtime class "missing", but it cannot run this pod (missing: RuntimeClass not found); change the override, or name a runtime class in spec.runtimeClassName`}
}

test_malformed_class_override_is_ignored if {
	every bad in ["kata", {"source": "no class"}, {"class": 2, "source": "a number"}] {
		d := runtimeguard.decision with input as in_tenant({}) with runtimeguard.class_override as bad
		d.class == "gvisor"
		not `class override by no class: "gvisor"` in d.reasons
	}
}

test_class_override_without_source_is_named_generically if {
	d := runtimeguard.decision with input as in_tenant({}) with runtimeguard.class_override as {"class": "kata"}
	d.class == "kata"
	`class override by a class override: "kata"` in d.reasons
}

test_trait_missing_from_data_requires_nothing if {
	# A custom module may add a source for a trait data.config.traits does not describe.
	d := runtimeguard.decision with input as in_default({}) with runtimeguard.trait_sources as {"undescribed": {"a custom rule"}}
	d.requirements == {"isolation": 0, "gpu": false}
	d.class == ""
	d.deny == set()
	d.acceptable == {"gvisor", "kata", "nvidia", "gvisor-nvidia", "kata-nvidia-gpu", "runc", "wasm"}
}

# ---------------------------------------------------------------------------------------------
# Placement: input.placement says, per class, whether the Pod can reach a node that runs it
# (webhook/cluster/placement.go). The cluster-wide availability is only the fallback.

reach_entry(available, detail, reason) := {"available": available, "known": true, "nodes": 0, "detail": detail, "reason": reason}

# general_pool: the Pod's nodeSelector leaves 2 nodes that run only runc.
general_pool := {
	"constraint": "nodeSelector pool=general",
	"nodes": "nodeSelector pool=general matches 2 Ready nodes",
	"count": 2,
	"fix": "remove or widen the pod's nodeSelector",
	"classes": object.union(
		{name: entry |
			some name, c in cluster.runtimeClasses
			detail := sprintf("handler %q on 0 of them", [c.handler])
			entry := reach_entry(false, detail, sprintf("nodeSelector pool=general matches 2 Ready nodes; %s", [detail]))
		},
		{"runc": reach_entry(true, `handler "runc" on 2 of them`, "r")},
	),
}

placed(review, placement) := object.union(review, {"placement": placement})

test_placement_unreachable_everywhere_denies_naming_the_constraint if {
	d := runtimeguard.decision with input as placed(in_tenant({"nodeSelector": {"pool": "general"}}), general_pool)
	d.class == ""
	d.deny == {concat("", [
		`pod rejected: namespace "tenant-a" is runtimeguard.io/tenancy=untrusted, which needs isolation >= 1, but nodeSelector pool=general matches 2 Ready nodes, `,
		`none of which runs a class that provides it (gvisor: handler "runsc" on 0 of them; kata: handler "kata-qemu" on 0 of them; `,
		`gvisor-nvidia: handler "runsc-nvidia" on 0 of them; kata-nvidia-gpu: handler "kata-nvidia-gpu" on 0 of them); `,
		`remove or widen the pod's nodeSelector, or run one of those handlers there`,
	])}
}

test_placement_falls_back_to_the_reachable_class if {
	p := object.union(general_pool, {"classes": object.union(general_pool.classes, {"kata": reach_entry(true, "x", "y")})})
	d := runtimeguard.decision with input as placed(in_tenant({"nodeSelector": {"pool": "general"}}), p)
	d.class == "kata"
	`skipped gvisor: nodeSelector pool=general matches 2 Ready nodes; handler "runsc" on 0 of them` in d.reasons
}

test_placement_bound_pod_names_its_node if {
	p := object.union(general_pool, {"constraint": `spec.nodeName "general-1"`, "nodes": `spec.nodeName "general-1"`, "count": 1, "fix": "bind the pod to a node that runs the handler"})
	d := runtimeguard.decision with input as placed(in_tenant({"nodeName": "general-1"}), p)
	some msg in d.deny
	contains(msg, `but the pod is bound to node "general-1" (spec.nodeName), which runs no class that provides it (gvisor: handler "runsc" on 0 of them;`)
}

test_placement_bound_to_a_missing_node_says_so if {
	p := object.union(general_pool, {"constraint": `spec.nodeName "ghost"`, "nodes": `spec.nodeName "ghost" is not a Node in the cluster`, "count": 0})
	d := runtimeguard.decision with input as placed(in_tenant({"nodeName": "ghost"}), p)
	some msg in d.deny
	contains(msg, `isolation >= 1, but spec.nodeName "ghost" is not a Node in the cluster (gvisor:`)
}

test_placement_without_requirement_is_untouched if {
	d := runtimeguard.decision with input as placed(in_default({"nodeSelector": {"pool": "general"}}), general_pool)
	d.class == ""
	d.deny == set()
}

test_without_placement_the_cluster_availability_decides if {
	d := runtimeguard.decision with input as make("tenant-a", untrusted_ns, {}, cluster_with({"gvisor": unavailable("gvisor")}))
	d.class == "kata"
}

test_placement_leaves_out_missing_runtime_classes if {
	p := object.union(general_pool, {"classes": object.remove(general_pool.classes, ["kata"])})
	d := runtimeguard.decision with input as placed(make("tenant-a", untrusted_ns, {"nodeSelector": {"pool": "general"}}, cluster_without(["kata"])), p)
	some msg in d.deny
	contains(msg, `(gvisor: handler "runsc" on 0 of them; gvisor-nvidia:`)
	not contains(msg, "kata:")
}

test_placement_with_no_class_in_the_cluster_lists_them_missing if {
	d := runtimeguard.decision with input as placed(
		make("tenant-a", untrusted_ns, {"nodeSelector": {"pool": "general"}}, cluster_without(["gvisor", "kata", "gvisor-nvidia", "kata-nvidia-gpu"])),
		general_pool,
	)
	some msg in d.deny
	contains(msg, "(gvisor: RuntimeClass not found; kata: RuntimeClass not found")
}
