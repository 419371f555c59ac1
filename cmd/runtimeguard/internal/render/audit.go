package render

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/runtimeguard/runtimeguard/webhook/audit"
)

// Audit writes audit's table: one row per violating object, then what could not be decided or
// read.
func Audit(w io.Writer, r *audit.Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(r.Violations) == 0 {
		fmt.Fprintln(w, "No violations.")
	} else {
		fmt.Fprintln(tw, "NAMESPACE\tKIND\tNAME\tREASON\tRUNTIMECLASS\tENFORCEMENT\tMESSAGE")
		for _, v := range r.Violations {
			class := v.RuntimeClassName
			if class == "" {
				class = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Namespace, v.Kind, v.Name, v.Reason, class, v.Enforcement, v.Message())
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Undecided) > 0 {
		fmt.Fprintf(w, "\nCould not decide %d object(s):\n", len(r.Undecided))
		for _, u := range r.Undecided {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Namespace, u.Kind, u.Name, u.Error)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Unread) > 0 {
		fmt.Fprintf(w, "\nCould not read %d list(s); objects in them were not all audited:\n", len(r.Unread))
		for _, u := range r.Unread {
			fmt.Fprintf(w, "  %s (%d read): %s\n", u.Resource, u.Read, u.Error)
		}
	}
	return nil
}
