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
			"several). Blobs and snapshots that nothing references any more are deleted right away when no\n" +
			"other kiln process is using the store, and otherwise by the next `kiln prune`.",
		Args: argsRange(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openStore()
			if err != nil {
				return err
			}
			var failed []string
			for _, ref := range args {
				names, err := untag(cmd, s, ref, force)
				if err != nil {
					failed = append(failed, err.Error())
					continue
				}
				for _, n := range names {
					fmt.Fprintf(cmd.OutOrStdout(), "Untagged: %s\n", n.Short())
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
	c.Flags().BoolVarP(&force, "force", "f", false, "remove all tags of an image ID even when it has several")
	return c
}

// untag removes ref's tag, or every tag of the image when ref is an ID or digest.
func untag(cmd *cobra.Command, s *cache.Store, ref string, force bool) ([]cache.Name, error) {
	desc, name, err := s.Lookup(ref)
	if errors.Is(err, cache.ErrNotFound) {
		return nil, fmt.Errorf("no such image: %s", ref)
	}
	if err != nil {
		return nil, err
	}
	byTag := false
	if n, perr := cache.ParseName(ref); perr == nil && n.String() == name.String() && n.Digest() == "" {
		byTag = true
	}
	targets := []cache.Name{name}
	if !byTag {
		tagged, err := s.List()
		if err != nil {
			return nil, err
		}
		targets = nil
		for _, t := range tagged {
			if t.Descriptor.Digest == desc.Digest {
				targets = append(targets, t.Name)
			}
		}
		if len(targets) > 1 && !force {
			return nil, fmt.Errorf("image %s is referenced by %d tags: remove them by name, or use -f", ref, len(targets))
		}
	}
	for _, n := range targets {
		if err := s.Untag(cmd.Context(), n); err != nil && !errors.Is(err, cache.ErrNotFound) {
			return nil, fmt.Errorf("untag %s: %w", n.Short(), err)
		}
	}
	return targets, nil
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
