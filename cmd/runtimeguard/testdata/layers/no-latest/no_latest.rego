package runtimeguard

# A module layer: no :latest images in namespaces that need a sandbox.
deny contains msg if {
	required_isolation >= 1
	some c in all_containers
	endswith(c.image, ":latest")
	msg := sprintf("pod rejected: container %q runs a :latest image; pin a version", [c.name])
}
