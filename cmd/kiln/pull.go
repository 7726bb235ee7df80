package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/registry"
)

func newPullCmd(g *globalOptions) *cobra.Command {
	var quiet bool
	c := &cobra.Command{
		Use:   "pull [-q] NAME[:TAG|@DIGEST]",
		Short: "Pull an image from a registry into the store",
		Long: "Pull an image (the host's platform from a multi-platform index). Layers already in the store are\n" +
			"not fetched again; every blob is checked against its digest before it is stored, so an interrupted\n" +
			"pull leaves no broken image and the next one resumes.",
		Example: "  kiln pull localhost:5000/busybox:latest",
		Args:    argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openStore()
			if err != nil {
				return err
			}
			defer s.Close()
			opts, err := g.registry.options()
			if err != nil {
				return err
			}
			if !quiet {
				opts = append(opts, registry.WithProgress(blobProgress(cmd.ErrOrStderr(), "Pulling")))
			}
			desc, err := registry.Pull(cmd.Context(), s, args[0], opts...)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Digest: %s\n", desc.Digest)
			fmt.Fprintln(cmd.OutOrStdout(), args[0])
			return nil
		},
	}
	platformFlag(c)
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the name")
	return c
}
