package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/registry"
)

func newLoadCmd(g *globalOptions) *cobra.Command {
	var input string
	c := &cobra.Command{
		Use:   "load [-i FILE]",
		Short: "Load images from a docker-archive or oci-archive",
		Long: "Load images from a tar archive written by `kiln save`, `docker save` or `skopeo copy`\n" +
			"(docker-archive or oci-archive, detected automatically). Without -i it reads standard input.",
		Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := g.openStore()
			if err != nil {
				return err
			}
			defer s.Close()
			in := cmd.InOrStdin()
			if input != "" {
				f, err := os.Open(input)
				if err != nil {
					return fmt.Errorf("load: %w", err)
				}
				defer f.Close()
				in = f
			}
			what := input
			if what == "" {
				what = "standard input"
			}
			loaded, err := registry.Load(cmd.Context(), s, in)
			if err != nil {
				return fmt.Errorf("load %s: %w", what, err)
			}
			for _, l := range loaded {
				if l.Name.IsZero() {
					fmt.Fprintf(cmd.OutOrStdout(), "Loaded image ID: %s\n", l.ID)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Loaded image: %s\n", l.Name.Short())
			}
			return nil
		},
	}
	c.Flags().StringVarP(&input, "input", "i", "", "read from this file instead of standard input")
	return c
}
