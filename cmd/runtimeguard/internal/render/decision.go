package render

import (
	"fmt"
	"io"
	"strings"

	"github.com/runtimeguard/runtimeguard/webhook"
)

// decisionText writes what the two webhooks answered for the Pod.
func decisionText(w io.Writer, o webhook.Outcome) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("\nDecision\n")
	if o.Mutated {
		patches := make([]string, len(o.Patch))
		for i, raw := range o.Patch {
			patches[i] = string(raw)
		}
		p("  mutate:   injected runtime class %q; patch [%s]\n", o.RuntimeClassName, strings.Join(patches, ", "))
	} else {
		p("  mutate:   no patch\n")
	}
	if o.Allowed {
		p("  validate: allowed\n")
	} else {
		p("  validate: DENIED\n  message:  %s\n", o.Message)
	}
	class := o.RuntimeClassName
	if class == "" {
		class = "(none: the node's default runtime)"
	}
	p("  runtimeClassName: %s\n", class)
	list := func(name string, items []string) {
		if len(items) == 0 {
			return
		}
		p("  %s:\n", name)
		for _, it := range items {
			p("    - %s\n", it)
		}
	}
	list("reasons", o.Reasons)
	list("warnings", o.Warnings)
	if len(o.Warnings) == 0 {
		p("  warnings: none\n")
	}
}
