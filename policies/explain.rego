# The decision, traced class by class, for `runtimeguard explain` and `runtimeguard eval --trace`.
# Admission never evaluates this document: it reads data.runtimeguard.decision only. It reuses
# the default policy's rules (trait_sources, ranked, meets, usable, chosen_class, class_override),
# so it explains whatever the loaded modules of package runtimeguard decide.
#
# Package-level METADATA is the default policy's: a package may declare it only once.
package runtimeguard

# explain.classes lists every class in the policy's price order (ranked), then the RuntimeClasses
# of the cluster that data.config.classes does not list (they provide isolation 0 and no GPU).
# Each class's verdict is "chosen", "skipped: <why>" or "not needed" (the Pod needs no class, or
# a cheaper class was chosen).
explain := {
	"traits": explain_traits,
	"requirements": {"isolation": required_isolation, "gpu": required_gpu},
	"requirement_text": explain_requirement_text,
	"named_class": named_class,
	"chosen_class": chosen_class,
	"override": explain_override,
	"placement": explain_placement,
	"classes": [explain_class(name) | some name in explain_order],
}

# explain_placement is the narrowing step: the nodes the Pod's own constraints leave, before any
# class (null when the Pod asks nothing of its node).
explain_placement := {"constraint": placement_constraint, "nodes": input.placement.nodes} if {
	placement_constraint != ""
} else := null

# Helpers are prefixed explain_: every module of package runtimeguard shares one namespace.
explain_traits[trait] := {
	"sources": sort([source | some source in sources]),
	"needs": explain_needs(trait),
} if {
	some trait, sources in trait_sources
}

# The words of the denials (needs_text, requirement_text), with a word for "nothing".
explain_needs(trait) := "nothing" if {
	trait_isolation(trait) == 0
	not trait_needs_gpu(trait)
} else := needs_text(trait)

explain_requirement_text := requirement_text if has_requirement

else := "none (no trait requires a sandboxed or GPU runtime)"

explain_order := array.concat(ranked, explain_unlisted)

explain_unlisted := sort([name |
	some name, _ in input.cluster.runtimeClasses
	not class_by_name[name]
])

explain_class(name) := {
	"name": name,
	"listed": explain_listed(name),
	"isolation": class_isolation(name),
	"gpu": class_gpu(name),
	"meets": explain_meets(name),
	"exists": explain_exists(name),
	"handler": object.get(input.cluster.runtimeClasses, [name, "handler"], ""),
	"available": object.get(reach(name), "available", false),
	"availability_reason": explain_availability_reason(name),
	"conflicts": explain_conflicts(name),
	"verdict": explain_verdict(name),
}

explain_listed(name) if class_by_name[name]

else := false

explain_meets(name) if meets(name)

else := false

explain_exists(name) if input.cluster.runtimeClasses[name]

else := false

# Availability is for this Pod, on the nodes explain_placement leaves (input.placement).
explain_availability_reason(name) := reach_detail(name) if {
	input.cluster.runtimeClasses[name]
} else := "RuntimeClass not found in the cluster"

explain_conflicts(name) := [sprintf(
	"runtimeClass.scheduling.nodeSelector[%s] = %s; pod.spec.nodeSelector[%s] = %s",
	[c.key, c.class_value, c.key, c.pod_value],
) |
	some c in selector_conflicts(name)
]

# explain_skip_reasons(name) says, in order, everything that keeps a class from serving the Pod:
# what it lacks, then whether it can run anywhere, then conflicts with the Pod's nodeSelector.
explain_skip_reasons(name) := array.concat(
	array.concat(explain_isolation_reason(name), explain_gpu_reason(name)),
	array.concat(explain_unavailable_reason(name), explain_conflict_reason(name)),
)

explain_isolation_reason(name) := [sprintf("isolation %d is below the required %d%s", [
	class_isolation(name),
	required_isolation,
	explain_unlisted_note(name),
])] if {
	class_isolation(name) < required_isolation
} else := []

explain_unlisted_note(name) := " (not listed in data.config.classes)" if {
	not class_by_name[name]
} else := ""

explain_gpu_reason(name) := ["no GPU, and the pod needs a GPU runtime"] if {
	required_gpu
	class_gpu(name) != true
} else := []

explain_unavailable_reason(name) := ["RuntimeClass not found in the cluster"] if {
	not input.cluster.runtimeClasses[name]
} else := [sprintf("not available: %s", [reach_detail(name)])] if {
	reach(name).available != true
	not conflicts_with_pod(name) # the conflict says why, and better
} else := []

explain_conflict_reason(name) := [sprintf(
	"its scheduling.nodeSelector conflicts with the pod's nodeSelector (%s)",
	[concat(", ", explain_conflicts(name))],
)] if {
	count(explain_conflicts(name)) > 0
} else := []

# A class is considered when the Pod has a requirement, or when an override names it.
explain_considered(_) if has_requirement

explain_considered(name) if name == class_override.class

explain_verdict(name) := "chosen" if {
	name == chosen_class
} else := sprintf("skipped: %s", [concat("; ", explain_skip_reasons(name))]) if {
	explain_considered(name)
	count(explain_skip_reasons(name)) > 0
} else := sprintf("skipped: does not meet the pod's requirements (%s)", [requirement_text]) if {
	explain_considered(name)
	not meets(name)
} else := sprintf("skipped: %s asks for runtime class %q instead", [override_source, class_override.class]) if {
	has_requirement
	is_string(class_override.class)
} else := "not needed"

explain_override := {
	"class": class_override.class,
	"source": override_source,
	"applied": explain_override_applied,
} if {
	is_string(class_override.class)
} else := null

default explain_override_applied := false

explain_override_applied if overridden
