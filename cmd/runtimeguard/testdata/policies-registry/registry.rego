# A one-file policy set: no class requirements, only a registry allowlist.
package runtimeguard

decision := {"class": "", "acceptable": [], "deny": deny, "warn": set(), "reasons": ["registry allowlist only"]}

deny contains msg if {
	some c in input.pod.containers
	not startswith(c.image, "registry.example.com/")
	msg := sprintf("pod rejected: container %q runs %q; images must come from registry.example.com", [c.name, c.image])
}
