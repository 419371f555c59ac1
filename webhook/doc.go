// Package webhook holds runtimeguard's two admission handlers (mutate: inject the required
// RuntimeClass; validate: reject Pods whose class the policy or the cluster cannot honour), the
// offline simulation `eval` uses, metrics, and the `serve` wiring.
//
// Both handlers share one Admitter, so the mutating and validating paths (and `eval`) always
// agree on exemptions, enforcement and the policy decision.
package webhook
