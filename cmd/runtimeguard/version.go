package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/runtimeguard/runtimeguard/cmd/runtimeguard/internal/render"
	"github.com/runtimeguard/runtimeguard/version"
)

func newVersionCommand() *cobra.Command {
	var output render.Format
	cmd := &cobra.Command{
		Use:   "version [-o table|json|yaml]",
		Short: "Print the version, commit, Go and OPA versions of this build",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := version.Get()
			switch output {
			case render.FormatJSON:
				return render.JSON(cmd.OutOrStdout(), info)
			case render.FormatYAML:
				return render.YAMLDoc(cmd.OutOrStdout(), info)
			}
			return versionTable(cmd.OutOrStdout(), info)
		},
	}
	render.AddFormatFlag(cmd.Flags(), &output, "one object")
	return cmd
}

func versionTable(w io.Writer, info version.Info) error {
	commit := info.Commit
	if commit == "" {
		commit = "unknown"
	}
	_, err := fmt.Fprintf(w, "version:   %s\ncommit:    %s\ngo:        %s\nopa:       %s\nplatform:  %s\n",
		info.Version, commit, info.GoVersion, info.OPAVersion, info.Platform)
	return err
}

// versionLine is what --version prints: one line, like kubectl's and helm's short form.
func versionLine() string {
	info := version.Get()
	commit := info.Commit
	if commit == "" {
		commit = "unknown"
	}
	return fmt.Sprintf("runtimeguard %s (commit %s, %s, OPA %s, %s)\n", info.Version, commit, info.GoVersion, info.OPAVersion, info.Platform)
}
