package main

import (
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/container"
	"github.com/kiln-build/kiln/runtime"
)

func newRmCmd(g *globalOptions) *cobra.Command {
	var force, volumes bool
	c := &cobra.Command{
		Use:   "rm [-f] CONTAINER [CONTAINER...]",
		Short: "Remove containers",
		Long:  "Remove each container's directory, log and filesystem changes. -f kills a running one first;\n-v removes its anonymous volumes (named ones stay).",
		Args:  argsRange(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(cmd, g, args, func(cs *container.Store, rt *runtime.Runtime, c *container.Container) error {
				if err := cs.Remove(cmd.Context(), rt, c, force); err != nil {
					return err
				}
				if volumes {
					return cs.RemoveAnonymousVolumes(cmd.Context(), c)
				}
				return nil
			})
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "kill and remove a running container")
	c.Flags().BoolVarP(&volumes, "volumes", "v", false, "remove the container's anonymous volumes too")
	return c
}
