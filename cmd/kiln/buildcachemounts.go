package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	"github.com/spf13/cobra"
)

// newCacheCmd is `kiln cache`: the build cache's persistent parts.
func newCacheCmd(g *globalOptions) *cobra.Command {
	c := &cobra.Command{Use: "cache", Short: "Inspect the build cache", Args: argsRange(0, 0)}
	var prune bool
	var olderThan time.Duration
	mounts := &cobra.Command{
		Use:   "mounts [--prune [--older-than DURATION]]",
		Short: "List the RUN --mount=type=cache directories (id, size, last use, target), or remove them",
		Args:  argsRange(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := g.openStore()
			if err != nil {
				return err
			}
			defer s.Close()
			list, err := s.ListMounts()
			if err != nil {
				return err
			}
			now := time.Now()
			if prune {
				var freed int64
				n := 0
				for _, m := range list {
					if now.Sub(m.Used) < olderThan {
						continue
					}
					if err := s.RemoveMount(m.ID); err != nil {
						return err
					}
					freed += m.Size
					n++
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed %d cache mounts, %s\n", n, humanSize(freed))
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "ID\tSIZE\tLAST USED\tTARGET\tSHARING")
			for _, m := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s ago\t%s\t%s\n", m.ID, humanSize(m.Size), units.HumanDuration(now.Sub(m.Used)), m.Target, m.Sharing)
			}
			return tw.Flush()
		},
	}
	mounts.Flags().BoolVar(&prune, "prune", false, "remove the cache mounts (with --older-than, only those unused that long)")
	mounts.Flags().DurationVar(&olderThan, "older-than", 0, "with --prune: keep mounts used within this duration, e.g. 24h")
	c.AddCommand(mounts)
	return c
}
