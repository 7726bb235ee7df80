package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
)

func newRmiCmd(g *globalOptions) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "rmi [-f] NAME|ID...",
		Short: "Remove image tags, and the data no other image or cache entry uses",
		Long: "Remove image tags. Given an image ID, remove every tag of that image (with -f when there are\n" +
			"several), or the image itself when it has none (a dangling image, <none> in kiln images). The\n" +
			"last tag of an image a container uses stays unless -f, which removes the tag and keeps the\n" +
			"data until the container is removed. Blobs and snapshots that nothing references any\n" +
			"more are deleted right away when no other kiln process is using the store, and otherwise by the\n" +
			"next `kiln prune`.",
		Args: argsRange(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openStore()
			if err != nil {
				return err
			}
			var failed []string
			for _, ref := range args {
				rm, err := s.RemoveImage(cmd.Context(), ref, force)
				if err != nil {
					failed = append(failed, err.Error())
					continue
				}
				for _, n := range rm.Untagged {
					fmt.Fprintf(cmd.OutOrStdout(), "Untagged: %s\n", n.Short())
				}
				if rm.Deleted.Hex != "" {
					fmt.Fprintf(cmd.OutOrStdout(), "Deleted: %s\n", rm.Deleted)
				}
			}
			if err := s.Close(); err != nil {
				return err
			}
			sweep(cmd, g)
			if len(failed) > 0 {
				return errors.New(strings.Join(failed, "\nkiln: "))
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "remove all tags of an image ID even when it has several, or one a container uses")
	return c
}

// sweep deletes what no tag or cache record references, if no other kiln process holds the store.
func sweep(cmd *cobra.Command, g *globalOptions) {
	s, err := cache.OpenExclusive(g.storeRoot())
	if err != nil {
		return // busy: `kiln prune` will collect it
	}
	defer s.Close()
	st, err := s.GC(cmd.Context(), cache.GCOptions{})
	if err == nil && st.Blobs > 0 && g.debug {
		fmt.Fprintf(cmd.ErrOrStderr(), "deleted %d blobs, %d snapshots (%s)\n", st.Blobs, st.Snapshots, humanSize(st.Bytes))
	}
}
