# Tests of the warn-no-class example, with the default policy and its data:
#
#   bin/opa test policies/runtimeguard.rego policies/data.yaml policies/examples/warn-no-class/
#
# The example's configuration is given with `with`, so the tests pass whether its data file is
# loaded at data.config (as above) or elsewhere (bin/opa test policies/ loads it under
# data.examples, where it is inert).
package warn_no_class_test

import data.runtimeguard

config := {"exempt_namespaces": ["monitoring"]}

class(handler, selector) := {
	"handler": handler, "nodeSelector": selector, "tolerations": null, "overhead": null,
	"available": true, "known": true, "source": "status", "reason": "available",
}

cluster := {"nodes": 3, "runtimeClasses": {
	"gvisor": class("runsc", {"sandbox.runtimeguard.io/gvisor": "true"}),
	"kata": class("kata-qemu", {"katacontainers.io/kata-runtime": "true"}),
	"nvidia": class("nvidia", {"nvidia.com/gpu.present": "true"}),
	"wasm": class("wasmtime", null),
}}

make(ns, labels, pod) := {
	"operation": "CREATE",
	"namespace": {"name": ns, "labels": labels, "annotations": {}},
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

warnings(inp) := w if {
	w := runtimeguard.decision.warn with input as inp with data.config.warn_no_class as config
}

unlabelled_warning(ns) := sprintf(`namespace %q has no runtimeguard.io/tenancy label, so this pod runs on the node's default runtime without a sandbox; label the namespace (runtimeguard.io/tenancy=financial, runtimeguard.io/tenancy=untrusted) or set spec.runtimeClassName`, [ns])

test_pod_without_class_in_unlabelled_namespace_is_warned if {
	warnings(make("default", {}, {})) == {unlabelled_warning("default")}
}

test_warnings_do_not_deny if {
	d := runtimeguard.decision with input as make("default", {}, {}) with data.config.warn_no_class as config
	d.deny == set()
	count(d.warn) == 1
}

test_labelled_namespace_is_not_warned if {
	# Any value of the label counts: somebody decided.
	warnings(make("internal", {"runtimeguard.io/tenancy": "trusted"}, {})) == set()
}

test_pod_that_gets_a_class_is_not_warned if {
	# A pod-label trait, a GPU request: the policy injects a class.
	warnings(make("default", {}, {"labels": {"runtimeguard.io/workload": "untrusted"}})) == set()
	gpu := {"containers": [{"name": "train", "image": "nvcr.io/nvidia/pytorch:24.01-py3", "privileged": false, "extendedResources": {"nvidia.com/gpu": 1}}]}
	warnings(make("ml", {}, gpu)) == set()
}

test_pod_naming_a_described_class_is_not_warned if {
	warnings(make("default", {}, {"runtimeClassName": "gvisor"})) == set()
}

test_exempt_namespace_is_not_warned if {
	warnings(make("monitoring", {}, {})) == set()
}

test_pod_naming_an_undescribed_class_is_warned if {
	warnings(make("default", {}, {"runtimeClassName": "wasm"})) == {`runtime class "wasm" is not described in data.config.classes, so runtimeguard counts it as isolation 0 without a GPU runtime`}

	# Also in an exempt namespace: this one is about the class, not the namespace.
	count(warnings(make("monitoring", {}, {"runtimeClassName": "runc"}))) == 1
}

test_label_keys_come_from_the_traits if {
	traits := {"secret": {"namespace_labels": {"example.com/tier": "secret"}, "requires": {"isolation": 2}}}
	w := runtimeguard.decision.warn with input as make("default", {}, {})
		with data.config.warn_no_class as config
		with data.config.traits as traits
	w == {`namespace "default" has no example.com/tier label, so this pod runs on the node's default runtime without a sandbox; label the namespace (example.com/tier=secret) or set spec.runtimeClassName`}
}

test_inert_without_configuration if {
	every inp in [make("default", {}, {}), make("default", {}, {"runtimeClassName": "wasm"})] {
		runtimeguard.decision.warn == set() with input as inp with data.config as object.remove(data.config, ["warn_no_class"])
	}
}
