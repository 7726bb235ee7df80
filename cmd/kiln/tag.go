package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
)

func newTagCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE TARGET",
		Short: "Give an image another name",
		Args:  argsRange(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			target, err := cache.ParseName(args[1])
			if err != nil {
				return usageError{fmt.Errorf("invalid target %q: %w", args[1], err)}
			}
			if target.Digest() != "" {
				return usageError{fmt.Errorf("invalid target %q: a tag cannot be a digest", args[1])}
			}
			s, err := g.openStore()
			if err != nil {
				return err
			}
			defer s.Close()
			desc, _, err := s.Lookup(args[0])
			if errors.Is(err, cache.ErrNotFound) {
				return fmt.Errorf("no such image: %s", args[0])
			}
			if err != nil {
				return err
			}
			return s.Retag(cmd.Context(), target, desc)
		},
	}
}
