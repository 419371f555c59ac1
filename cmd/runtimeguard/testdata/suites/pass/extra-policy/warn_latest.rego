# A policy directory that only adds to the default policy: the suite loads it with
# defaultPolicy: true.
package runtimeguard

warn contains sprintf("container %q uses the :latest tag", [c.name]) if {
	some c in all_containers
	endswith(c.image, ":latest")
}
