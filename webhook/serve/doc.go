// Package serve is the `runtimeguard serve` process: the controller-runtime manager, the
// webhook server registering the pipeline's two faces, informers feeding the cluster view,
// policy directory reloads, API server probes, drain on shutdown, the inventory metrics, the
// served certificate's expiry (servingcert.go), and --failure-policy, which makes the webhook
// configurations fail closed only once this replica serves (failurepolicy.go).
// The offline commands never import it: they build the same webhook.Pipeline without a manager.
package serve
