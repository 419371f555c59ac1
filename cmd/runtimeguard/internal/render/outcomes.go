package render

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/runtimeguard/runtimeguard/webhook"
)

// JSONLines writes one JSON object per value and line.
func JSONLines[T any](w io.Writer, values []T) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, v := range values {
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	return nil
}

// JSON writes v as indented JSON.
func JSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Outcomes writes eval's table: one row per Pod, its warnings below it.
func Outcomes(w io.Writer, outcomes []webhook.Outcome) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tPOD\tRESULT\tRUNTIMECLASS\tDETAIL")
	for _, o := range outcomes {
		result, detail := "allowed", strings.Join(o.Reasons, "; ")
		switch {
		case !o.Allowed:
			result, detail = "DENIED", o.Message
		case o.Mutated:
			result = "injected"
		}
		class := o.RuntimeClassName
		if class == "" {
			class = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", o.Namespace, o.Name, result, class, detail)
		for _, warning := range o.Warnings {
			fmt.Fprintf(tw, "\t\t\t\twarning: %s\n", warning)
		}
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
