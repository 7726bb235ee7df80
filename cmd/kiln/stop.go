package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/container"
	"github.com/kiln-build/kiln/runtime"
)

func newStopCmd(g *globalOptions) *cobra.Command {
	var timeout int
	c := &cobra.Command{
		Use:   "stop [-t SECONDS] CONTAINER [CONTAINER...]",
		Short: "Stop running containers",
		Long: "Send each container its stop signal (the image's STOPSIGNAL, else SIGTERM), then SIGKILL after\n" +
			"-t seconds. A stopped container is not restarted by its restart policy.",
		Args: argsRange(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout < 0 {
				return usageError{fmt.Errorf("invalid -t %d: the timeout must not be negative", timeout)}
			}
			return eachContainer(cmd, g, args, func(cs *container.Store, rt *runtime.Runtime, c *container.Container) error {
				return cs.Stop(cmd.Context(), rt, c, c.StopTimeoutOr(givenTimeout(cmd, timeout)))
			})
		},
	}
	c.Flags().IntVarP(&timeout, "time", "t", 10, "seconds to wait before killing the container (unset: the container's --stop-timeout if it has one)")
	return c
}

// givenTimeout is -t when the command line sets it: otherwise the container's own default applies.
func givenTimeout(cmd *cobra.Command, seconds int) *time.Duration {
	if !cmd.Flags().Changed("time") {
		return nil
	}
	d := time.Duration(seconds) * time.Second
	return &d
}
