package native

import (
	"path"
	"slices"

	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// Availability is each RuntimeClass's availability as the webhook sees it now, for Params.
func Availability(s *cluster.Snapshot) map[string]bool {
	out := make(map[string]bool, len(s.Classes))
	for name, c := range s.Classes {
		out[name] = c.Availability.Available
	}
	return out
}

// defaultModules are the default policy's own files (policies/embed.go).
var defaultModules = []string{"runtimeguard.rego", "explain.rego"}

// CustomModules lists set's Rego files beyond the default policy's: the native policies are
// generated from data alone, so these are not translated.
func CustomModules(set *policy.Set) []string {
	var custom []string
	for file := range set.Modules {
		if !slices.Contains(defaultModules, path.Base(file)) {
			custom = append(custom, file)
		}
	}
	slices.Sort(custom)
	return custom
}
