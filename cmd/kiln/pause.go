package main

import (
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/container"
	"github.com/kiln-build/kiln/runtime"
)

func newPauseCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "pause CONTAINER [CONTAINER...]",
		Short: "Pause all processes within one or more containers",
		Long: "Pause all processes within one or more containers: the cgroup freezer stops them until\n" +
			"`kiln unpause` thaws them. A paused container still counts as running: `kiln stop` and `kiln kill` thaw it to deliver\nthe signal.",
		Args: argsRange(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(cmd, g, args, func(cs *container.Store, _ *runtime.Runtime, c *container.Container) error {
				return cs.Pause(cmd.Context(), c)
			})
		},
	}
}

func newUnpauseCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "unpause CONTAINER [CONTAINER...]",
		Short: "Unpause all processes within one or more containers",
		Long:  "Thaw every process of each container `kiln pause` froze.",
		Args:  argsRange(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(cmd, g, args, func(cs *container.Store, _ *runtime.Runtime, c *container.Container) error {
				return cs.Unpause(cmd.Context(), c)
			})
		},
	}
}
