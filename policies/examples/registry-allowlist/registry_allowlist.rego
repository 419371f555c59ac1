# Example: registry allow-list (policies/examples/registry-allowlist/README.md).
#
# A container image from outside the allow-list gives the Pod a trait (untrusted in the shipped
# data), exactly as a namespace label would: the default policy then requires and injects a
# sandbox. Init containers count too. Inert without data.config.registry_allowlist (see
# registry_allowlist_data.yaml).
package runtimeguard

# trait_sources is a multi-value rule, so this module adds sources to it; everything the default
# policy derives from traits (requirements, class, denials, reasons) follows.
trait_sources[trait] contains msg if {
	trait := data.config.registry_allowlist.trait
	some c in all_containers
	name := registry_full_name(c.image)
	not registry_allowed(name)
	msg := sprintf("container %q image %q is not from an allowed registry", [c.name, c.image])
}

# registry_allowed(name): an entry of the allow-list is a prefix of the image's full name, at a
# "/" boundary: "registry.example.com" allows registry.example.com/<anything>, and
# "docker.io/library" allows Docker Hub's official images, but neither allows
# "registry.example.com.evil.io/x" or "docker.io/library-fake/x".
registry_allowed(name) if {
	some entry in data.config.registry_allowlist.allowed
	startswith(name, registry_prefix(entry))
}

registry_prefix(entry) := entry if endswith(entry, "/")

else := concat("", [entry, "/"])

# registry_full_name(image) spells an image reference out the way the container runtime resolves
# it: a first component with a "." or ":", or equal to "localhost", is a registry host;
# otherwise the image is on Docker Hub (docker.io), under "library/" when it has a single
# component. index.docker.io is docker.io.
registry_full_name(image) := concat("/", ["docker.io", "library", image]) if {
	not contains(image, "/")
} else := concat("/", ["docker.io", image]) if {
	not registry_is_host(split(image, "/")[0])
} else := registry_docker_hub(array.slice(split(image, "/"), 1, count(image))) if {
	split(image, "/")[0] in {"docker.io", "index.docker.io"}
} else := image

registry_docker_hub(path) := concat("/", array.concat(["docker.io", "library"], path)) if {
	count(path) == 1
} else := concat("/", array.concat(["docker.io"], path))

registry_is_host(component) if contains(component, ".")

registry_is_host(component) if contains(component, ":")

registry_is_host("localhost")
