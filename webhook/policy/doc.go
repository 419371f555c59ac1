// Package policy evaluates runtimeguard's Rego policies. It knows nothing of HTTP or admission
// responses: it takes a Pod (the fields policies may read), the Pod's Namespace and a cluster
// snapshot, and returns a Decision.
//
// Cost is the design constraint: every Pod create waits on this twice (mutate, validate). So
// the Pod is decoded into only the declared fields (Pod), the Rego input is built directly as
// an OPA value (no JSON round trip), the cluster part of the input is built once per cluster
// generation, and decisions are cached by their input and invalidated by generation counters.
package policy
