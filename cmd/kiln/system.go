package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newSystemCmd(g *globalOptions) *cobra.Command {
	c := &cobra.Command{Use: "system", Short: "Inspect and prune the store", Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
	var format string
	df := &cobra.Command{
		Use:   "df",
		Short: "Show the store's disk usage by images, snapshots, build cache and volumes",
		Args:  argsRange(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := g.openStore()
			if err != nil {
				return err
			}
			defer s.Close()
			u, err := s.DiskUsage()
			if err != nil {
				return err
			}
			if format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(u)
			}
			if format != "table" {
				return usageError{fmt.Errorf("invalid --format %q: use table or json", format)}
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "TYPE\tCOUNT\tSIZE")
			fmt.Fprintf(tw, "Images\t%d\t%s\n", u.Images.Count, humanSize(u.Images.Size))
			fmt.Fprintf(tw, "Snapshots\t%d\t%s\n", u.Snapshots.Count, humanSize(u.Snapshots.Size))
			fmt.Fprintf(tw, "Build cache\t%d\t%s\n", u.Cache.Count, humanSize(u.Cache.Size))
			fmt.Fprintf(tw, "Local Volumes\t%d\t%s\n", u.Volumes.Count, humanSize(u.Volumes.Size))
			return tw.Flush()
		},
	}
	df.Flags().StringVar(&format, "format", "table", "output format: table or json")
	c.AddCommand(df, newSystemPruneCmd(g))
	return c
}
