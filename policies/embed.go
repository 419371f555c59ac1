// Package policies holds runtimeguard's default Rego policy and its data, embedded into the
// binary so `serve` and `eval` work without a policy directory.
package policies

import "embed"

// FS holds the default policy: *.rego modules and data.yaml. Tests (*_test.rego) are embedded
// too so `opa test` and the loader see the same tree; the loader skips them.
//
//go:embed *.rego data.yaml
var FS embed.FS

// TraceSource is explain.rego: the decision traced class by class, which explain and
// eval --trace add to policy sets that lack it.
//
//go:embed explain.rego
var TraceSource []byte
