package main

import (
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/container"
	"github.com/kiln-build/kiln/runtime"
)

func newStartCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "start CONTAINER [CONTAINER...]",
		Short: "Start stopped containers in the background",
		Long:  "Start each container again under a detached monitor, with its filesystem as it was left.",
		Args:  argsRange(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(cmd, g, args, func(cs *container.Store, rt *runtime.Runtime, c *container.Container) error {
				return startContainer(cmd, g, cs, rt, c)
			})
		},
	}
}

// startContainer spawns a monitor unless the container runs already, first cleaning up what a
// killed monitor left behind.
func startContainer(cmd *cobra.Command, g *globalOptions, cs *container.Store, rt *runtime.Runtime, c *container.Container) error {
	st, err := c.State()
	if err != nil || st.Running() {
		return err
	}
	if st.MonitorLost {
		if err := cs.Stop(cmd.Context(), rt, c, 0); err != nil {
			return err
		}
	}
	return cs.Spawn(cmd.Context(), c, monitorArgv(g, c.ID))
}
