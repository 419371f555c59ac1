# Example: team overrides (policies/examples/team-overrides/README.md).
#
# A Namespace annotation names the RuntimeClass injected into the namespace's Pods, through
# the default policy's class_override hook. The default policy still judges the class: it is
# injected only when it meets the Pod's requirements and can run the Pod; otherwise the Pod
# is denied unless it names a runtime class itself. Inert without
# data.config.team_overrides.annotation (see team_overrides_data.yaml).
#
# Package-level METADATA is the default policy's: a package may declare it only once.
package runtimeguard

# Helpers are prefixed team_override_: every module of package runtimeguard shares one namespace.
team_override_annotation := data.config.team_overrides.annotation

class_override := {
	"class": class,
	"source": sprintf("namespace %q annotation %s=%s", [input.namespace.name, team_override_annotation, class]),
} if {
	class := input.namespace.annotations[team_override_annotation]
	class != ""
}
