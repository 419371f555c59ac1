// Package suite is the format and runner of `runtimeguard test`: declarative policy test suites
// (*.suite.yaml) whose cases go through the same webhook.Pipeline as serve and eval.
package suite
