package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/registry"
)

func newPushCmd(g *globalOptions) *cobra.Command {
	var compression string
	var quiet bool
	c := &cobra.Command{
		Use:   "push [--compression gzip|zstd|estargz] IMAGE [DESTINATION]",
		Short: "Push an image from the store to a registry",
		Long: "Push IMAGE to DESTINATION (default: IMAGE's own name). Blobs the registry has are not sent again,\n" +
			"layers go in parallel and the manifest last. --compression re-encodes layers stored otherwise.",
		Example: "  kiln push app localhost:5000/team/app:1.0",
		Args:    argsRange(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			dest := args[0]
			if len(args) == 2 {
				dest = args[1]
			}
			s, err := g.openStore()
			if err != nil {
				return err
			}
			defer s.Close()
			opts, err := g.registry.options()
			if err != nil {
				return err
			}
			if compression != "" {
				c, err := registry.ParseCompression(compression)
				if err != nil {
					return usageError{err}
				}
				opts = append(opts, registry.WithCompression(c))
			}
			if !quiet {
				opts = append(opts, registry.WithProgress(blobProgress(cmd.ErrOrStderr(), "Pushing")))
			}
			desc, err := registry.Push(cmd.Context(), s, args[0], dest, opts...)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: digest: %s size: %d\n", dest, desc.Digest, desc.Size)
			return nil
		},
	}
	c.Flags().StringVar(&compression, "compression", "", "layer encoding to push: gzip, zstd or estargz (default: as stored)")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "no per-layer progress")
	return c
}
