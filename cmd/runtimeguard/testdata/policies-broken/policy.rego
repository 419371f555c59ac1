package runtimeguard

decision := {"class": "", "deny": [], "warn": [], "reasons": []}

warn contains msg if {
	msg := sprintf("%s", [input.pod.labels.app]
}
