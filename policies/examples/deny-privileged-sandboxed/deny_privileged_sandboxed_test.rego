# Tests of the deny-privileged-sandboxed example, with the default policy and its data:
#
#   bin/opa test policies/runtimeguard.rego policies/data.yaml policies/examples/deny-privileged-sandboxed/
#
# The example's configuration is given with `with`, so the tests pass whether its data file is
# loaded at data.config (as above) or elsewhere (bin/opa test policies/ loads it under
# data.examples, where it is inert).
package deny_privileged_sandboxed_test

import data.runtimeguard

config := {"min_isolation": 1}

class(handler, selector) := {
	"handler": handler, "nodeSelector": selector, "tolerations": null, "overhead": null,
	"available": true, "known": true, "source": "status", "reason": "available",
}

cluster := {"nodes": 3, "runtimeClasses": {
	"gvisor": class("runsc", {"sandbox.runtimeguard.io/gvisor": "true"}),
	"kata": class("kata-qemu", {"katacontainers.io/kata-runtime": "true"}),
	"nvidia": class("nvidia", {"nvidia.com/gpu.present": "true"}),
	"gvisor-nvidia": class("runsc-nvidia", {"nvidia.com/gpu.present": "true"}),
	"runc": class("runc", null),
}}

ctr(name, privileged) := {"name": name, "image": "registry.example.com/app:1", "privileged": privileged, "extendedResources": {}}

make(ns, labels, pod) := {
	"operation": "CREATE",
	"namespace": {"name": ns, "labels": labels, "annotations": {}},
	"pod": object.union(
		{
			"generateName": "app-", "namespace": ns, "labels": {}, "annotations": {},
			"runtimeClassName": "", "nodeSelector": {},
			"hostNetwork": false, "hostPID": false, "hostIPC": false,
			"containers": [ctr("app", false)], "initContainers": [],
		},
		pod,
	),
	"cluster": cluster,
}

untrusted := {"runtimeguard.io/tenancy": "untrusted"}

financial := {"runtimeguard.io/tenancy": "financial"}

privileged := {"containers": [ctr("app", true)]}

deny(inp) := d if {
	d := runtimeguard.decision.deny with input as inp with data.config.sandbox_privileges as config
}

# The denials this example adds (the default policy's "not set" denial is there too when the
# Pod names no class: these inputs are what the mutating webhook sees).
sandbox_denials(inp) := {m | some m in deny(inp); contains(m, "may not ask for host privileges")}

test_privileged_pod_that_will_get_a_sandbox_is_denied if {
	sandbox_denials(make("tenant-a", untrusted, privileged)) == {`pod rejected: container "app" is privileged, but runtime class "gvisor" is a sandbox (isolation 1) and a sandboxed pod may not ask for host privileges; remove them, or run the pod without a sandboxed runtime class where no trait requires one`}
}

test_privileged_pod_that_names_a_sandbox_is_denied if {
	# What the validating webhook sees after injection, or a Pod that chose kata itself.
	deny(make("tenant-a", untrusted, object.union(privileged, {"runtimeClassName": "gvisor"}))) == {`pod rejected: container "app" is privileged, but runtime class "gvisor" is a sandbox (isolation 1) and a sandboxed pod may not ask for host privileges; remove them, or run the pod without a sandboxed runtime class where no trait requires one`}
	deny(make("default", {}, object.union(privileged, {"runtimeClassName": "kata"}))) == {`pod rejected: container "app" is privileged, but runtime class "kata" is a sandbox (isolation 2) and a sandboxed pod may not ask for host privileges; remove them, or run the pod without a sandboxed runtime class where no trait requires one`}
}

test_privileged_init_container_counts if {
	count(sandbox_denials(make("tenant-a", untrusted, {"initContainers": [ctr("setup", true)]}))) == 1
}

test_host_namespaces_are_listed_with_privileged_containers if {
	pod := {
		"runtimeClassName": "kata",
		"hostNetwork": true, "hostPID": true, "hostIPC": true,
		"containers": [ctr("b", true), ctr("a", true), ctr("c", false)],
	}
	deny(make("payments", financial, pod)) == {`pod rejected: container "a" is privileged and container "b" is privileged and spec.hostIPC is true and spec.hostNetwork is true and spec.hostPID is true, but runtime class "kata" is a sandbox (isolation 2) and a sandboxed pod may not ask for host privileges; remove them, or run the pod without a sandboxed runtime class where no trait requires one`}
}

test_unsandboxed_pods_may_be_privileged if {
	# No class at all: the node's default runtime.
	deny(make("default", {}, object.union(privileged, {"hostNetwork": true}))) == set()

	# A class of isolation 0, known (nvidia) or not described in data (runc).
	gpu := {"containers": [{"name": "train", "image": "nvcr.io/nvidia/pytorch:24.01-py3", "privileged": true, "extendedResources": {"nvidia.com/gpu": 1}}]}
	sandbox_denials(make("ml", {}, gpu)) == set()
	deny(make("default", {}, object.union(privileged, {"runtimeClassName": "runc"}))) == set()
}

test_sandboxed_pods_without_host_privileges_are_allowed if {
	deny(make("tenant-a", untrusted, {"runtimeClassName": "gvisor"})) == set()
}

test_min_isolation_is_data if {
	inp := make("tenant-a", untrusted, object.union(privileged, {"runtimeClassName": "gvisor"}))
	runtimeguard.decision.deny == set() with input as inp with data.config.sandbox_privileges as {"min_isolation": 2}

	inp2 := make("payments", financial, object.union(privileged, {"runtimeClassName": "kata"}))
	count(runtimeguard.decision.deny) == 1 with input as inp2 with data.config.sandbox_privileges as {"min_isolation": 2}
}

test_inert_without_configuration if {
	inp := make("tenant-a", untrusted, object.union(privileged, {"runtimeClassName": "gvisor"}))
	runtimeguard.decision.deny == set() with input as inp with data.config.sandbox_privileges as {}
}
