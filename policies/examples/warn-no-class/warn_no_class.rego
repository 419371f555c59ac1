# Example: warnings for Pods left on the node's default runtime
# (policies/examples/warn-no-class/README.md).
#
# Warnings do not block anything: the validating webhook returns them to the client (kubectl
# prints them) and they stay visible in `runtimeguard eval`. Two rules:
#   - a Pod that gets no runtime class in a namespace that carries none of the labels the traits
#     of data.config.traits look for: nobody has decided how much isolation it needs;
#   - a Pod that names a runtime class data.config.classes does not describe: runtimeguard counts
#     it as isolation 0 without GPU, which may not be what its authors think.
# Inert without data.config.warn_no_class (see warn_no_class_data.yaml).
package runtimeguard

warn contains msg if {
	config := data.config.warn_no_class
	not input.namespace.name in object.get(config, "exempt_namespaces", [])
	not has_requirement
	named_class == ""
	chosen_class == ""
	count(no_class_namespace_labels) == 0
	msg := sprintf(
		"namespace %q has no %s label, so this pod runs on the node's default runtime without a sandbox; label the namespace (%s) or set spec.runtimeClassName",
		[input.namespace.name, concat(" or ", no_class_label_keys), concat(", ", no_class_label_choices)],
	)
}

warn contains msg if {
	is_object(data.config.warn_no_class)
	named_class != ""
	not class_by_name[named_class]
	msg := sprintf(
		"runtime class %q is not described in data.config.classes, so runtimeguard counts it as isolation 0 without a GPU runtime",
		[named_class],
	)
}

# Helpers are prefixed no_class_: every module of package runtimeguard shares one namespace.

# The keys of the namespace labels that traits look for, e.g. runtimeguard.io/tenancy.
no_class_label_keys := sort({key | some def in data.config.traits; some key, _ in def.namespace_labels})

no_class_label_choices := sort({sprintf("%s=%s", [key, value]) |
	some def in data.config.traits
	some key, value in def.namespace_labels
})

# The namespace's labels among no_class_label_keys, whatever their value.
no_class_namespace_labels := {key | some key in no_class_label_keys; input.namespace.labels[key]}
