package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/container"
)

func newLogsCmd(g *globalOptions) *cobra.Command {
	var o container.LogOptions
	var tail, since, until string
	c := &cobra.Command{
		Use:   "logs [-f] [--tail N] [-t] [--since TIME] [--until TIME] CONTAINER",
		Short: "Print a container's output",
		Long: "Print what the container wrote to stdout and stderr (to kiln's stdout and stderr). Output is kept\n" +
			"in containers/<id>/log.json (docker's json-file format, 10 MiB x 2 files). -f follows new output\n" +
			"until the container stops.",
		Args: argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Tail = -1
			if tail != "all" {
				n, err := strconv.Atoi(tail)
				if err != nil {
					return usageError{fmt.Errorf("invalid --tail %q: use a number or all", tail)}
				}
				o.Tail = max(n, -1)
			}
			now := time.Now()
			for _, t := range []struct {
				v   string
				out *time.Time
			}{{since, &o.Since}, {until, &o.Until}} {
				if t.v == "" {
					continue
				}
				var err error
				if *t.out, err = parseTime(t.v, now); err != nil {
					return usageError{err}
				}
			}
			cs, err := g.openContainers()
			if err != nil {
				return err
			}
			c, err := cs.Get(args[0])
			if err != nil {
				return err
			}
			return c.Logs(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := c.Flags()
	f.BoolVarP(&o.Follow, "follow", "f", false, "follow new output until the container stops")
	f.StringVarP(&tail, "tail", "n", "all", "number of lines to show from the end, or all")
	f.BoolVarP(&o.Timestamps, "timestamps", "t", false, "prefix lines with their time (RFC 3339)")
	f.StringVar(&since, "since", "", "only lines since TIME: a duration back from now (10m), RFC 3339 or Unix seconds")
	f.StringVar(&until, "until", "", "only lines up to TIME (same forms as --since)")
	return c
}
