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

// Outcomes writes eval's table: one row per Pod, workload or skipped object, its warnings below
// it. A stream of Pods only keeps the POD column of Pod names; with other kinds the column is
// NAME and every row says its kind, as kubectl get does (deployment/ledger).
func Outcomes(w io.Writer, outcomes []webhook.Outcome) error {
	podsOnly := true
	for _, o := range outcomes {
		podsOnly = podsOnly && o.Kind == "Pod"
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if podsOnly {
		fmt.Fprintln(tw, "NAMESPACE\tPOD\tRESULT\tRUNTIMECLASS\tDETAIL")
	} else {
		fmt.Fprintln(tw, "NAMESPACE\tNAME\tRESULT\tRUNTIMECLASS\tDETAIL")
	}
	for _, o := range outcomes {
		result, detail := "allowed", strings.Join(o.Reasons, "; ")
		switch {
		case o.Skipped != "":
			result, detail = "skipped", o.Skipped
		case !o.Allowed:
			result, detail = "DENIED", o.Message
		case o.Mutated:
			result = "injected"
		}
		class, namespace, name := o.RuntimeClassName, o.Namespace, o.Name
		if class == "" {
			class = "-"
		}
		if namespace == "" {
			namespace = "-" // cluster-scoped (a Namespace, a Node)
		}
		if !podsOnly {
			name = strings.ToLower(o.Kind) + "/" + name
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", namespace, name, result, class, detail)
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
