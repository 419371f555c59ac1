# METADATA
# title: runtimeguard default policy
# description: |
#   Maps namespace tenancy and workload traits to the RuntimeClass a Pod must use.
#   Traits and classes are data (data.config); this file only combines them.
package runtimeguard

# METADATA
# title: decision
# description: |
#   The document runtimeguard reads for every Pod CREATE (see policies/README.md). One rule per
#   key: each webhook evaluates only the keys it reads (the mutating one class and reasons).
# entrypoint: true
decision.class := chosen_class

decision.acceptable := acceptable

decision.deny := deny

decision.warn := warn

decision.reasons := reasons

decision.traits := trait_sources

decision.requirements := {"isolation": required_isolation, "gpu": required_gpu}

# No key of the Pod's nodeSelector is one a class selects: nothing to compare.
decision.conflicts := [] if {
	not pod_selects_class_keys
} else := selector_conflicts(named_class)

# trait_sources[trait] holds, for each trait the Pod has, where that trait came from.
trait_sources[trait] contains sprintf("namespace %q is %s=%s", [input.namespace.name, key, value]) if {
	some key, value in input.namespace.labels
	some trait in namespace_label_traits[key][value]
}

trait_sources[trait] contains sprintf("pod label %s=%s", [key, value]) if {
	some key, value in input.pod.labels
	some trait in pod_label_traits[key][value]
}

trait_sources[trait] contains sprintf("container %q requests %s", [c.name, resource]) if {
	some kind in ["containers", "initContainers"] # all_containers, without building it
	some c in input.pod[kind]
	some resource, n in c.extendedResources
	n > 0
	some trait in resource_traits[resource]
}

# Which traits a label or a resource gives, looked up from the Pod's side: a Pod has few
# labels under the keys the policy reads, so a miss walks those instead of every trait.
namespace_label_traits[key][value] contains trait if {
	some trait, def in data.config.traits
	some key, value in def.namespace_labels
}

pod_label_traits[key][value] contains trait if {
	some trait, def in data.config.traits
	some key, value in def.pod_labels
}

resource_traits[resource] contains trait if {
	some trait, def in data.config.traits
	some resource in def.extended_resources
}

# A resource claim gives a trait when it requests one of the trait's device_classes. Go resolved
# each claim to the device classes of its template or claim (input.pod.resourceClaims);
# unresolved ones are warned about (claim_warnings) rather than silently giving no trait.
trait_sources[trait] contains sprintf("resource claim %q (%s) requests device class %s", [claim.name, claim.source, class]) if {
	some claim in input.pod.resourceClaims
	claim.resolved == true
	some trait, def in data.config.traits
	some class in claim.deviceClasses
	class in def.device_classes
}

all_containers := array.concat(object.get(input.pod, "containers", []), object.get(input.pod, "initContainers", []))

trait_isolation(trait) := object.get(data.config.traits, [trait, "requires", "isolation"], 0)

trait_needs_gpu(trait) if data.config.traits[trait].requires.gpu == true

# Tables built from data alone. runtimeguard evaluates rules that read no input once per policy
# set (webhook/policy/precompute.go), so the rules a cache miss runs look values up in these
# instead of deriving them again.
trait_isolation_of := {trait: trait_isolation(trait) | some trait, _ in data.config.traits}

gpu_traits contains trait if {
	some trait, _ in data.config.traits
	trait_needs_gpu(trait)
}

required_isolation := max({trait_isolation_of[trait] | some trait, _ in trait_sources} | {0})

default required_gpu := false

required_gpu if {
	some trait, _ in trait_sources
	trait in gpu_traits
}

has_requirement if required_isolation > 0

has_requirement if required_gpu

# What each class provides; classes missing from data.config.classes provide nothing.
class_isolation(name) := object.get(class_by_name, [name, "isolation"], 0)

class_gpu(name) := object.get(class_by_name, [name, "gpu"], false)

class_by_name[c.name] := c if some c in data.config.classes

# meets_trait(name, trait): the class provides what that one trait needs.
meets_trait(name, trait) if {
	class_isolation(name) >= trait_isolation(trait)
	not trait_needs_gpu(trait)
}

meets_trait(name, trait) if {
	class_isolation(name) >= trait_isolation(trait)
	trait_needs_gpu(trait)
	class_gpu(name) == true
}

# meets(name): the class provides what every trait of the Pod needs (meets_trait for each),
# which comes down to the highest isolation needed and a GPU if any trait needs one.
meets(name) if {
	class_isolation(name) >= required_isolation
	class_gpu(name) == true
}

meets(name) if {
	class_isolation(name) >= required_isolation
	not required_gpu
}

# Candidates in price order: classes without a GPU first (a GPU class takes a GPU node), then
# lowest isolation, then the order of data.config.classes.
ranked := [entry[3] | some entry in sort([[gpu_rank(c.name), class_isolation(c.name), i, c.name] | some i, c in data.config.classes])]

gpu_rank(name) := 1 if class_gpu(name) == true

else := 0

# ranked_classes is ranked with what each class provides, for candidates.
ranked_classes := [{"name": name, "isolation": class_isolation(name), "gpu": class_gpu(name) == true} | some name in ranked]

# A class is a candidate when it meets the Pod's requirements (meets; false < true, so a class
# without a GPU meets a Pod that needs none).
candidates := candidates_for[required_isolation][required_gpu]

# candidates_for[isolation][gpu] lists the candidates for each requirement a Pod can have (the
# isolation levels the traits name, or 0, with or without a GPU): built from data alone, so a
# cache miss looks its list up instead of filtering the classes again.
candidates_for := {level: {gpu: [class.name | some class in ranked_classes; class.isolation >= level; class.gpu >= gpu] |
	some gpu in {false, true}
} |
	some level in ({0} | {isolation | some isolation in trait_isolation_of})
}

# selector_conflicts(name) lists the keys where a class's scheduling.nodeSelector contradicts
# the Pod's own nodeSelector. The API server would reject that merge, so such a class is never
# chosen, and a Pod naming it is denied (runtimeguard reads decision.conflicts for that).
selector_conflicts(name) := sort([{"key": key, "class_value": value, "pod_value": pod_value} |
	some key, value in input.cluster.runtimeClasses[name].nodeSelector
	pod_value := input.pod.nodeSelector[key]
	pod_value != value
])

# The same test without building the list: usable() asks it of every candidate.
conflicts_with_pod(name) if {
	some key, value in input.cluster.runtimeClasses[name].nodeSelector
	input.pod.nodeSelector[key] != value
}

# reach(name) says whether the class can run this Pod on a node the Pod can land on
# (input.placement, computed by runtimeguard from the Pod's nodeName, nodeSelector, required
# node affinity and tolerations plus the class's scheduling). Without it, the cluster-wide
# availability.
reach(name) := r if {
	r := input.placement.classes[name]
} else := object.get(input.cluster.runtimeClasses, name, {})

reach_detail(name) := object.get(reach(name), "detail", object.get(reach(name), "reason", ""))

usable(name) if {
	reach(name).available == true
	not conflicts_with_pod(name)
}

default placement_constraint := ""

placement_constraint := input.placement.constraint

usable_candidates := available_candidates_for[required_isolation][required_gpu] if {
	# The common case, in a few lookups: no placement of its own (input.placement.classes is
	# then the cluster-wide availability) and no nodeSelector key a class's
	# scheduling.nodeSelector also sets (no conflict possible), so the usable candidates are
	# the available ones.
	placement_constraint == ""
	not pod_selects_class_keys
} else := [name | some name in candidates; usable(name)]

# available_candidates_for is candidates_for with the classes available somewhere in the
# cluster. It reads only data and input.cluster, so runtimeguard evaluates it once per cluster
# change (webhook/policy/precompute.go), not on every cache miss.
available_candidates_for := {level: {gpu: [name | some name in names; input.cluster.runtimeClasses[name].available == true] |
	some gpu, names in by_gpu
} |
	some level, by_gpu in candidates_for
}

# class_selector_keys are the node label keys the RuntimeClasses' scheduling.nodeSelector set.
class_selector_keys contains key if {
	some rc in input.cluster.runtimeClasses
	some key, _ in rc.nodeSelector
}

pod_selects_class_keys if {
	some key, _ in input.pod.nodeSelector
	class_selector_keys[key]
}

# Hook for custom policies (see policies/examples/team-overrides): a module in package
# runtimeguard may define class_override as {"class": NAME, "source": TEXT}, source saying in
# words where the override comes from. When that class meets the Pod's requirements and is
# usable it is the class injected, requirement or not. When it is not, nothing is injected and
# a Pod that names no class is denied with the reason (override_rejected): an override never
# silently falls back. An override without a string "class" is ignored. The default policy
# defines no override, so the rules below first ask has_override: a cache miss then evaluates
# none of them.
class_override := value if {
	some value in []
}

has_override if is_string(class_override.class)

overridden if {
	meets(class_override.class)
	usable(class_override.class)
}

override_rejected if {
	is_string(class_override.class)
	not overridden
}

override_source := object.get(class_override, "source", "a class override")

default chosen_class := ""

chosen_class := class_override.class if {
	has_override
	overridden
}

# not has_override: neither overridden nor override_rejected.
chosen_class := usable_candidates[0] if {
	has_requirement
	not has_override
}

# Every class the cluster has is acceptable when nothing is required. Otherwise only described
# classes can be (an undescribed class provides nothing), and those are the candidates: this
# keeps a cache miss from evaluating meets() once per RuntimeClass in the cluster.
acceptable contains name if {
	not has_requirement
	some name, _ in input.cluster.runtimeClasses
}

acceptable contains name if some name in candidates

default named_class := ""

named_class := input.pod.runtimeClassName

# needs_text(trait) says what one trait needs, in the words users see in denials.
needs_text(trait) := sprintf("isolation >= %d and a GPU runtime", [trait_isolation(trait)]) if {
	trait_isolation(trait) > 0
	trait_needs_gpu(trait)
} else := "a GPU runtime" if {
	trait_needs_gpu(trait)
} else := sprintf("isolation >= %d", [trait_isolation(trait)])

unmet_because(name) := concat(" and ", [sprintf("%s, which needs %s", [source, needs_text(trait)]) |
	some trait, sources in trait_sources
	not meets_trait(name, trait)
	some source in sources
])

suggested_class := usable_candidates[0] if {
	count(usable_candidates) > 0
} else := candidates[0] if {
	count(candidates) > 0
}

suggestion := sprintf("runtime class %q or stronger", [suggested_class]) if {
	suggested_class
} else := "no runtime class in data.config.classes provides it"

fix := sprintf("remove spec.runtimeClassName to let runtimeguard choose, or set it to %q", [suggested_class]) if {
	suggested_class
} else := "describe a class that provides it in data.config.classes"

deny contains msg if {
	has_requirement
	named_class != ""
	not named_class in candidates # the classes that meet the requirement, already at hand
	msg := sprintf(
		"pod rejected: %s (%s); spec.runtimeClassName is %q; %s",
		[unmet_because(named_class), suggestion, named_class, fix],
	)
}

all_sources := [source | some _, sources in trait_sources; some source in sources]

# A Pod that names no class is denied when no class can serve it, or when an override cannot
# (unnamed_denials). Behind one rule, a Pod that names a class (what the validating webhook
# mostly sees, after the mutating one injected it) skips them at once.
deny contains msg if {
	named_class == ""
	some msg in unnamed_denials
}

unnamed_denials contains msg if {
	has_requirement
	not override_rejected
	count(usable_candidates) == 0
	placement_constraint == ""
	msg := sprintf(
		"pod rejected: %s, which needs %s, but no runtime class that provides it is available (%s); install the runtime on a node and make it advertise the handler, or create the RuntimeClass",
		[concat(" and ", all_sources), requirement_text, concat("; ", unavailable_details)],
	)
}

# The Pod's own placement (nodeName, nodeSelector, node affinity) leaves no node that runs a
# class providing what it needs, though the cluster may have such nodes elsewhere.
unnamed_denials contains msg if {
	has_requirement
	not override_rejected
	count(usable_candidates) == 0
	placement_constraint != ""
	msg := sprintf(
		"pod rejected: %s, which needs %s, but %s (%s); %s, or run one of those handlers there",
		[concat(" and ", all_sources), requirement_text, placement_problem, concat("; ", placement_details), input.placement.fix],
	)
}

# The classes that exist, judged on the Pod's nodes; a class missing from the cluster is noise
# next to "run one of those handlers there" (the message without placement lists it).
placement_details := [detail |
	some name in candidates
	input.cluster.runtimeClasses[name]
	detail := unavailable_detail(name)
] if {
	some name in candidates
	input.cluster.runtimeClasses[name]
} else := unavailable_details

placement_problem := sprintf("%s, none of which runs a class that provides it", [input.placement.nodes]) if {
	object.get(input.pod, "nodeName", "") == ""
} else := sprintf("the pod is bound to node %q (spec.nodeName), which runs no class that provides it", [input.pod.nodeName]) if {
	input.placement.count > 0
} else := input.placement.nodes

# Reached only when the mutating webhook did not run (not registered, or skipped): the Pod
# would otherwise slip through on the node's default runtime.
unnamed_denials contains msg if {
	has_requirement
	not override_rejected
	count(usable_candidates) > 0
	msg := sprintf(
		"pod rejected: %s, which needs %s; spec.runtimeClassName is not set; set it to %q (runtimeguard's mutating webhook does this when it is registered)",
		[concat(" and ", all_sources), requirement_text, chosen_class],
	)
}

unnamed_denials contains msg if {
	override_rejected
	msg := sprintf(
		"pod rejected: %s asks for runtime class %q, but %s; change the override, or name a runtime class in spec.runtimeClassName",
		[override_source, class_override.class, override_problem],
	)
}

override_problem := sprintf("%s (%s)", [unmet_because(class_override.class), suggestion]) if {
	not meets(class_override.class)
} else := sprintf("it cannot run this pod (%s)", [unavailable_reason(class_override.class)])

requirement_text := requirement_texts[required_isolation][required_gpu]

# requirement_texts[isolation][gpu] words each requirement a Pod can have (the same keys as
# candidates_for): built from data alone, so a cache miss looks its words up.
requirement_texts := {level: {gpu: requirement_words(level, gpu) | some gpu, _ in by_gpu} | some level, by_gpu in candidates_for}

requirement_words(level, gpu) := sprintf("isolation >= %d and a GPU runtime", [level]) if {
	level > 0
	gpu
} else := "a GPU runtime" if {
	gpu
} else := sprintf("isolation >= %d", [level])

unavailable_details := [detail | some name in candidates; detail := unavailable_detail(name)] if {
	count(candidates) > 0
} else := ["no class in data.config.classes provides it"]

# unavailable_detail(name) says why a class cannot serve the Pod, after the Pod's placement
# has been said (a denial lists the classes after it); unavailable_reason(name) says it whole.
unavailable_detail(name) := unavailable_why(name, reach_detail(name))

unavailable_reason(name) := unavailable_why(name, object.get(reach(name), "reason", ""))

unavailable_why(name, why) := sprintf("%s: RuntimeClass not found", [name]) if {
	not input.cluster.runtimeClasses[name]
} else := sprintf("%s: its scheduling.nodeSelector conflicts with the pod's nodeSelector", [name]) if {
	conflicts_with_pod(name)
} else := sprintf("%s: %s", [name, why])

# Custom policies add rules to deny and warn in package runtimeguard (see policies/examples/).

# A claim that cannot be resolved yet might request a trait's device class: say so instead of
# deciding without that trait in silence. Only when some trait reads device classes.
warn contains msg if {
	some claim in input.pod.resourceClaims # first: most Pods have no claims
	claim.resolved != true
	count(trait_device_classes) > 0
	msg := sprintf(
		"resource claim %q of the pod in namespace %q is not resolved: %s; until it is, runtimeguard cannot tell whether it requests device class %s and decides without it",
		[claim.name, input.pod.namespace, claim.reason, concat(" or ", sort(trait_device_classes))],
	)
}

trait_device_classes contains class if {
	some def in data.config.traits
	some class in def.device_classes
}

# Labels under runtimeguard.io/ only mean something with a key and value the policy knows: a typo
# (runtimeguard.io/workload=Untrusted, runtimeguard.io/tenency) would otherwise mean nothing,
# silently. Known are the traits' namespace_labels and pod_labels, data.config.no_trait_labels,
# and the product's own namespace labels (webhook/pipeline.go). A custom policy that reads a
# label of its own under runtimeguard.io/ adds it to known_namespace_labels or known_pod_labels.
known_namespace_labels["runtimeguard.io/ignore"] contains value if some value in {"true", "false"}

known_namespace_labels["runtimeguard.io/enforcement"] contains value if some value in {"enforce", "warn"}

known_namespace_labels[key] contains value if {
	some def in data.config.traits
	some key, value in def.namespace_labels
}

known_namespace_labels[key] contains value if {
	some key, values in data.config.no_trait_labels.namespace
	some value in values
}

known_pod_labels[key] contains value if {
	some def in data.config.traits
	some key, value in def.pod_labels
}

known_pod_labels[key] contains value if {
	some key, values in data.config.no_trait_labels.pod
	some value in values
}

warn contains msg if {
	some key, value in input.namespace.labels
	startswith(key, "runtimeguard.io/") # first: label_warning is dear, and most labels are not ours
	not known_namespace_labels[key][value] # and the labels that are ours are mostly right
	msg := label_warning(sprintf("namespace %q", [input.namespace.name]), key, value, known_namespace_labels, "namespaces", known_pod_labels, "pods")
}

warn contains msg if {
	some key, value in input.pod.labels
	startswith(key, "runtimeguard.io/") # first: label_warning is dear, and most labels are not ours
	not known_pod_labels[key][value] # and the labels that are ours are mostly right
	msg := label_warning("pod", key, value, known_pod_labels, "pods", known_namespace_labels, "namespaces")
}

# label_warning words what is wrong with label key=value on where; known are the labels read
# there (on kind), other those read on the other kind of object.
label_warning(where, key, value, known, kind, other, other_kind) := msg if {
	startswith(key, "runtimeguard.io/")
	known[key]
	not value in known[key]
	msg := sprintf(
		"%s label %s=%s has no effect: runtimeguard knows the values %s (case-sensitive); fix the value or remove the label",
		[where, key, value, concat(", ", sort(known[key]))],
	)
} else := msg if {
	startswith(key, "runtimeguard.io/")
	not known[key]
	other[key]
	msg := sprintf(
		"%s label %s=%s has no effect: runtimeguard reads %s on %s, not on %s; move the label or remove it",
		[where, key, value, key, other_kind, kind],
	)
} else := msg if {
	startswith(key, "runtimeguard.io/")
	not known[key]
	msg := sprintf(
		"%s label %s=%s has no effect: runtimeguard reads no such label on %s (it reads %s); fix the key or remove the label",
		[where, key, value, kind, label_keys_text(known)],
	)
}

label_keys_text(known) := concat(", ", sort(object.keys(known))) if count(known) > 0

else := "none"

# reasons explain the decision in order: traits, requirement, classes passed over, the choice.
reasons := array.concat(trait_reasons, decided_reasons)

# The common case in one lookup: the cheapest candidate was chosen, and by no override.
decided_reasons := cheapest_reasons[required_isolation][required_gpu][chosen_class] if {
	candidates[0] == chosen_class
	not has_override
} else := general_decided_reasons

general_decided_reasons := array.concat(array.concat(requirement_reasons, skipped_reasons), choice_reasons)

# cheapest_reasons[isolation][gpu][class] are general_decided_reasons for a requirement whose
# cheapest candidate is class: built from data alone, so a cache miss looks them up. Without a
# requirement no class is chosen (but by an override), so that one has no entry.
cheapest_reasons := {level: {gpu: {names[0]: [
	sprintf("requires %s", [requirement_texts[level][gpu]]),
	sprintf("cheapest available class that provides %s: %q", [requirement_texts[level][gpu], names[0]]),
]} |
	some gpu, names in by_gpu
	[level, gpu] != [0, false]
	count(names) > 0
} |
	some level, by_gpu in candidates_for
}

trait_reasons := sort([sprintf("trait %s: %s", [trait, source]) |
	some trait, sources in trait_sources
	some source in sources
])

requirement_reasons := [sprintf("requires %s", [requirement_text])] if has_requirement

else := ["no trait requires a sandboxed or GPU runtime"]

# Only classes cheaper than the choice are worth explaining (all of them when none was chosen):
# none when the cheapest candidate was chosen, as it mostly is.
skipped_reasons := [] if {
	candidates[0] == chosen_class
} else := [sprintf("skipped %s", [unavailable_reason(name)]) |
	some name in array.slice(candidates, 0, choice_index + 1)
	not name in usable_candidates # usable() again would re-derive each class's reach
] if {
	has_requirement
	not override_rejected
}

else := []

choice_index := i if {
	some i, name in candidates
	name == chosen_class
} else := count(candidates)

choice_reasons := [sprintf("class override by %s: %q", [override_source, chosen_class])] if {
	overridden
} else := [sprintf("class override by %s: %q cannot serve this pod, nothing injected", [override_source, class_override.class])] if {
	override_rejected
} else := [sprintf("cheapest available class that provides %s: %q", [requirement_text, chosen_class])] if {
	chosen_class != ""
} else := []
