package render

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

// Inventory writes inventory's table and drift findings.
func Inventory(w io.Writer, inv *cluster.Inventory) error {
	fmt.Fprintf(w, "%d nodes, %d report status.runtimeHandlers\n\n", inv.Nodes, inv.Reporting)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUNTIMECLASS\tHANDLER\tGPU\tBY STATUS\tBY LABELS\tREADY\tSCHEDULABLE\tUSABLE\tAVAILABLE\tSOURCE")
	for _, c := range inv.Classes {
		available := yesNo(c.Availability.Available)
		if !c.Availability.Known {
			available += " (unknown)"
		}
		gpu := "-"
		if c.GPU {
			gpu = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", c.Name, c.Handler, gpu,
			c.AdvertisedByStatus, c.AdvertisedByLabels, c.Ready, c.Schedulable, c.Usable, available, c.Availability.Source)
	}
	if len(inv.Classes) == 0 {
		fmt.Fprintln(tw, "(no RuntimeClass)")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(inv.Findings) == 0 {
		fmt.Fprintln(w, "\nNo drift found.")
		return nil
	}
	findings := "findings"
	if len(inv.Findings) == 1 {
		findings = "finding"
	}
	fmt.Fprintf(w, "\n%d drift %s:\n", len(inv.Findings), findings)
	for _, f := range inv.Findings {
		fmt.Fprintf(w, "  %-22s %s\n", f.Kind, f.Message)
	}
	return nil
}
