// Package serve is the `runtimeguard serve` process: the controller-runtime manager, the
// webhook server registering the pipeline's two faces, informers feeding the cluster view,
// policy directory reloads, API server probes, drain on shutdown, and the inventory metrics.
// The offline commands never import it: they build the same webhook.Pipeline without a manager.
package serve
