package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/container"
	"github.com/kiln-build/kiln/runtime"
)

func newRestartCmd(g *globalOptions) *cobra.Command {
	var timeout int
	c := &cobra.Command{
		Use:   "restart [-t SECONDS] CONTAINER [CONTAINER...]",
		Short: "Stop and start containers again",
		Args:  argsRange(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout < 0 {
				return usageError{fmt.Errorf("invalid -t %d: the timeout must not be negative", timeout)}
			}
			return eachContainer(cmd, g, args, func(cs *container.Store, rt *runtime.Runtime, c *container.Container) error {
				if err := cs.Stop(cmd.Context(), rt, c, c.StopTimeoutOr(givenTimeout(cmd, timeout))); err != nil {
					return err
				}
				return startContainer(cmd, g, cs, rt, c, false)
			})
		},
	}
	c.Flags().IntVarP(&timeout, "time", "t", 10, "seconds to wait for the stop before killing the container (unset: the container's --stop-timeout if it has one)")
	return c
}
