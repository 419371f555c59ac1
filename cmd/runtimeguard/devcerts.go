package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/runtimeguard/runtimeguard/certs"
)

func newDevCertsCommand() *cobra.Command {
	var dir string
	var hosts []string
	var validity time.Duration
	cmd := &cobra.Command{
		Use:   "dev-certs --dir DIR [--host NAME|IP]...",
		Short: "Write a throwaway CA (ca.crt) and serving certificate (tls.crt, tls.key) for local trials",
		Long: `dev-certs is for local trials, demos and tests: in a cluster, use cert-manager or
serve --self-signed-certs instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := certs.WriteDevCerts(dir, hosts, validity); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s/ca.crt, %s/tls.crt and %s/tls.key for %v\n", dir, dir, dir, hosts)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "bin/dev-certs", "directory to write ca.crt, tls.crt and tls.key into")
	cmd.Flags().StringSliceVar(&hosts, "host", []string{"localhost", "127.0.0.1"}, "DNS names and IP addresses of the serving certificate")
	cmd.Flags().DurationVar(&validity, "validity", 30*24*time.Hour, "validity of the serving certificate")
	return cmd
}
