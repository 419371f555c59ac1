# Tests of the registry-allowlist example, with the default policy and its data:
#
#   bin/opa test policies/runtimeguard.rego policies/data.yaml policies/examples/registry-allowlist/
#
# The example's configuration is given with `with`, so the tests pass whether its data file is
# loaded at data.config (as above) or elsewhere (bin/opa test policies/ loads it under
# data.examples, where it is inert).
package registry_allowlist_test

import data.runtimeguard

config := {
	"trait": "untrusted",
	"allowed": ["registry.example.com", "nvcr.io/nvidia", "docker.io/library"],
}

class(handler, selector) := {
	"handler": handler, "nodeSelector": selector, "tolerations": null, "overhead": null,
	"available": true, "known": true, "source": "status", "reason": "available",
}

cluster := {"nodes": 3, "runtimeClasses": {
	"gvisor": class("runsc", {"sandbox.runtimeguard.io/gvisor": "true"}),
	"kata": class("kata-qemu", {"katacontainers.io/kata-runtime": "true"}),
	"nvidia": class("nvidia", {"nvidia.com/gpu.present": "true"}),
	"gvisor-nvidia": class("runsc-nvidia", {"nvidia.com/gpu.present": "true"}),
}}

ctr(name, image) := {"name": name, "image": image, "privileged": false, "extendedResources": {}}

make(ns, labels, pod) := {
	"operation": "CREATE",
	"namespace": {"name": ns, "labels": labels, "annotations": {}},
	"pod": object.union(
		{
			"generateName": "app-", "namespace": ns, "labels": {}, "annotations": {},
			"runtimeClassName": "", "nodeSelector": {},
			"hostNetwork": false, "hostPID": false, "hostIPC": false,
			"containers": [], "initContainers": [],
		},
		pod,
	),
	"cluster": cluster,
}

with_image(image) := make("default", {}, {"containers": [ctr("app", image)]})

decide(inp) := d if {
	d := runtimeguard.decision with input as inp with data.config.registry_allowlist as config
}

full_name(image) := n if {
	n := runtimeguard.registry_full_name(image)
}

test_full_names if {
	full_name("nginx") == "docker.io/library/nginx"
	full_name("nginx:1.27") == "docker.io/library/nginx:1.27"
	full_name("nginx@sha256:0123") == "docker.io/library/nginx@sha256:0123"
	full_name("bitnami/redis:7") == "docker.io/bitnami/redis:7"
	full_name("docker.io/nginx") == "docker.io/library/nginx"
	full_name("index.docker.io/nginx") == "docker.io/library/nginx"
	full_name("index.docker.io/bitnami/redis") == "docker.io/bitnami/redis"
	full_name("registry.example.com/team/app:1") == "registry.example.com/team/app:1"
	full_name("localhost/app") == "localhost/app"
	full_name("registry:5000/app") == "registry:5000/app"
	full_name("nvcr.io/nvidia/pytorch:24.01-py3") == "nvcr.io/nvidia/pytorch:24.01-py3"
}

test_allowed_images_add_no_trait if {
	every image in [
		"nginx:1.27",
		"docker.io/library/busybox",
		"registry.example.com/payments/ledger:3.2",
		"nvcr.io/nvidia/pytorch:24.01-py3",
	] {
		d := decide(with_image(image))
		d.traits == {}
		d.class == ""
	}
}

test_image_outside_the_allowlist_is_untrusted if {
	d := decide(with_image("ghcr.io/acme/tool:2.1"))
	d.traits == {"untrusted": {`container "app" image "ghcr.io/acme/tool:2.1" is not from an allowed registry`}}
	d.requirements == {"isolation": 1, "gpu": false}
	d.class == "gvisor"
	d.reasons == [
		`trait untrusted: container "app" image "ghcr.io/acme/tool:2.1" is not from an allowed registry`,
		"requires isolation >= 1",
		`cheapest available class that provides isolation >= 1: "gvisor"`,
	]
}

test_prefixes_match_at_a_slash if {
	every image in [
		"bitnami/redis:7", # docker.io/bitnami, not docker.io/library
		"registry.example.com.evil.io/app:1",
		"nvcr.io/nvidia-lookalike/pytorch:1",
		"nvcr.io/partner/model:1",
		"localhost:5000/app",
	] {
		decide(with_image(image)).class == "gvisor"
	}
}

test_init_containers_count if {
	d := decide(make("default", {}, {
		"initContainers": [ctr("migrate", "ghcr.io/acme/migrate:1")],
		"containers": [ctr("app", "registry.example.com/app:1")],
	}))
	d.traits == {"untrusted": {`container "migrate" image "ghcr.io/acme/migrate:1" is not from an allowed registry`}}
	d.class == "gvisor"
}

test_every_offending_container_is_a_source if {
	d := decide(make("default", {}, {"containers": [ctr("a", "quay.io/a/a:1"), ctr("b", "ghcr.io/b/b:1"), ctr("c", "nginx")]}))
	d.traits == {"untrusted": {
		`container "a" image "quay.io/a/a:1" is not from an allowed registry`,
		`container "b" image "ghcr.io/b/b:1" is not from an allowed registry`,
	}}
}

test_combines_with_other_traits if {
	gpu_pod := {"containers": [{"name": "train", "image": "ghcr.io/someone/llm:latest", "privileged": false, "extendedResources": {"nvidia.com/gpu": 1}}]}
	d := decide(make("ml", {}, gpu_pod))
	object.keys(d.traits) == {"gpu", "untrusted"}
	d.class == "gvisor-nvidia"

	d2 := decide(make("payments", {"runtimeguard.io/tenancy": "financial"}, {"containers": [ctr("app", "ghcr.io/acme/tool:2.1")]}))
	d2.class == "kata"
}

test_named_weaker_class_is_denied_naming_the_image if {
	d := decide(make("default", {}, {"runtimeClassName": "nvidia", "containers": [ctr("app", "quay.io/acme/app:1")]}))
	d.deny == {`pod rejected: container "app" image "quay.io/acme/app:1" is not from an allowed registry, which needs isolation >= 1 (runtime class "gvisor" or stronger); spec.runtimeClassName is "nvidia"; remove spec.runtimeClassName to let runtimeguard choose, or set it to "gvisor"`}
}

test_trait_is_data if {
	d := runtimeguard.decision with input as with_image("ghcr.io/acme/tool:2.1")
		with data.config.registry_allowlist as object.union(config, {"trait": "financial"})
	object.keys(d.traits) == {"financial"}
	d.class == "kata"
}

test_inert_without_configuration if {
	d := runtimeguard.decision with input as with_image("ghcr.io/acme/tool:2.1")
		with data.config.registry_allowlist as {}
	d.traits == {}
}

test_entries_may_end_with_a_slash if {
	d := runtimeguard.decision with input as with_image("ghcr.io/acme/tool:2.1")
		with data.config.registry_allowlist as {"trait": "untrusted", "allowed": ["ghcr.io/acme/"]}
	d.traits == {}

	d2 := runtimeguard.decision with input as with_image("ghcr.io/acme-fake/tool:2.1")
		with data.config.registry_allowlist as {"trait": "untrusted", "allowed": ["ghcr.io/acme/"]}
	object.keys(d2.traits) == {"untrusted"}
}
