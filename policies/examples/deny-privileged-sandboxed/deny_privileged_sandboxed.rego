# Example: deny host privileges in sandboxes
# (policies/examples/deny-privileged-sandboxed/README.md).
#
# A Pod that runs under a sandboxed RuntimeClass (isolation >= data.config.sandbox_privileges.
# min_isolation) must not ask for host privileges: a privileged container, or the host's
# network, PID or IPC namespace. Inside gVisor or Kata they either do not work or hand back
# the host access the sandbox exists to take away. The class judged is the one the Pod names
# (what the validating webhook sees after injection) or, when it names none, the one the
# policy would inject. Inert without data.config.sandbox_privileges (see
# deny_privileged_sandboxed_data.yaml).
package runtimeguard

deny contains msg if {
	min_isolation := data.config.sandbox_privileges.min_isolation
	class := sandbox_class
	class_isolation(class) >= min_isolation
	count(sandbox_host_privileges) > 0
	msg := sprintf(
		"pod rejected: %s, but runtime class %q is a sandbox (isolation %d) and a sandboxed pod may not ask for host privileges; remove them, or run the pod without a sandboxed runtime class where no trait requires one",
		[concat(" and ", sort(sandbox_host_privileges)), class, class_isolation(class)],
	)
}

# Helpers are prefixed sandbox_: every module of package runtimeguard shares one namespace.
sandbox_class := named_class if {
	named_class != ""
} else := chosen_class if {
	chosen_class != ""
}

sandbox_host_privileges contains sprintf("container %q is privileged", [c.name]) if {
	some c in all_containers
	c.privileged == true
}

sandbox_host_privileges contains sprintf("spec.%s is true", [field]) if {
	some field in ["hostNetwork", "hostPID", "hostIPC"]
	input.pod[field] == true
}
