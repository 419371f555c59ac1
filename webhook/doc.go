// Package webhook is runtimeguard's admission pipeline: one Pipeline runs every Pod CREATE
// through the same steps (ignore, exempt, build input, decide, product checks, respond) for
// the mutating webhook (inject the required RuntimeClass), the validating webhook (reject what
// the policy or the cluster cannot honour), and the offline commands (Simulate: eval, explain,
// test). It also serves the pipeline over HTTP (NewHandler) and holds the options every entry
// point shares. Process wiring (manager, informers, reloads, probes) is in webhook/serve.
package webhook
