// Command runtimeguard is a Kubernetes admission webhook that decides which RuntimeClass each
// Pod runs under, from Rego policies. Subcommands: serve, eval.
package main

import (
	"errors"
	"fmt"
	"os"
)

func main() {
	err := newRootCommand().Execute()
	var exit exitCode
	switch {
	case err == nil:
	case errors.As(err, &exit):
		os.Exit(int(exit))
	default:
		fmt.Fprintln(os.Stderr, "runtimeguard:", err)
		os.Exit(2)
	}
}
