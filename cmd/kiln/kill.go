package main

import (
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/container"
	"github.com/kiln-build/kiln/runtime"
)

func newKillCmd(g *globalOptions) *cobra.Command {
	var signal string
	c := &cobra.Command{
		Use:   "kill [-s SIGNAL] CONTAINER [CONTAINER...]",
		Short: "Send a signal to running containers",
		Long:  "Send SIGNAL (default KILL) to each container's main process. KILL and the stop signal also keep\nthe restart policy from restarting the container.",
		Args:  argsRange(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sig, err := container.ParseSignal(signal)
			if err != nil {
				return usageError{err}
			}
			return eachContainer(cmd, g, args, func(cs *container.Store, rt *runtime.Runtime, c *container.Container) error {
				return cs.Kill(cmd.Context(), rt, c, sig)
			})
		},
	}
	c.Flags().StringVarP(&signal, "signal", "s", "KILL", "signal to send: a name (HUP, SIGTERM) or a number")
	return c
}
