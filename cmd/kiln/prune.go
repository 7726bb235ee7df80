package main

import (
	"fmt"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
)

type pruneOptions struct {
	all         bool
	keepStorage string
	dryRun      bool
}

func newPruneCmd(g *globalOptions) *cobra.Command {
	o := &pruneOptions{}
	c := &cobra.Command{
		Use:   "prune [--all] [--keep-storage SIZE] [--dry-run]",
		Short: "Remove unreferenced blobs, snapshots and build cache",
		Long: "Remove blobs and unpacked snapshots that no tagged image and no build cache entry uses.\n" +
			"--all drops the whole build cache too; --keep-storage drops the least recently used cache\n" +
			"entries until the cache alone fits in SIZE. Fails without deleting anything while another\n" +
			"kiln process uses the store.",
		Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := cache.GCOptions{All: o.all, DryRun: o.dryRun}
			var err error
			if opts.KeepStorage, err = keepStorage(o.keepStorage); err != nil {
				return err
			}
			st, err := runGC(cmd, g, opts)
			if err != nil {
				return fmt.Errorf("prune: %w", err)
			}
			verb := "Deleted"
			if o.dryRun {
				verb = "Would delete"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %d blobs, %d snapshots, %d cache entries\nTotal reclaimed space: %s\n",
				verb, st.Blobs, st.Snapshots, st.CacheRecords, humanSize(st.Bytes))
			return nil
		},
	}
	c.Flags().BoolVarP(&o.all, "all", "a", false, "remove the whole build cache as well")
	c.Flags().StringVar(&o.keepStorage, "keep-storage", "", "keep at most this much build cache (e.g. 5g)")
	c.Flags().BoolVar(&o.dryRun, "dry-run", false, "only report what would be removed")
	return c
}

// keepStorage reads a --keep-storage size; "" is no limit.
func keepStorage(v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := units.RAMInBytes(v)
	if err != nil || n <= 0 {
		return 0, usageError{fmt.Errorf("invalid --keep-storage %q: use a size such as 10g", v)}
	}
	return n, nil
}
