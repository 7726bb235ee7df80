package main

import (
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/build"
)

// platformFlag gives c a --platform flag, as docker's build, run and pull have; kiln accepts
// the host platform only and says so for any other before doing any work.
func platformFlag(c *cobra.Command) {
	var plat string
	c.Flags().StringVar(&plat, "platform", "", "target platform; only the host's ("+build.HostPlatform+") is supported")
	next := c.PreRunE
	c.PreRunE = func(cmd *cobra.Command, args []string) error {
		if err := build.CheckPlatform(plat); err != nil {
			return usageError{err} // a flag value kiln cannot honour: before any work
		}
		if next != nil {
			return next(cmd, args)
		}
		return nil
	}
}
