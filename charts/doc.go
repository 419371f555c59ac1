// Package charts holds the Helm charts of runtimeguard and, in its tests, the checks that
// render them with the pinned Helm binary (bin/helm, built by `e2e/tools/build.sh helm`)
// and assert on the typed Kubernetes objects they produce.
package charts
