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

// DataSchema is the JSON schema the data of the built-in policy must match, however it is
// layered (--policy-data, --policy-modules): checked when a set built on the built-in policy
// is loaded.
//
//go:embed data.schema.json
var DataSchema []byte
