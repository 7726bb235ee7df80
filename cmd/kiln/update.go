package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/container"
	"github.com/kiln-build/kiln/runtime"
)

func newUpdateCmd(g *globalOptions) *cobra.Command {
	var memory, memorySwap, cpusetCPUs, cpusetMems, restart string
	var cpus float64
	var pidsLimit int64
	var cpuShares uint64
	c := &cobra.Command{
		Use:   "update [--memory SIZE] [--memory-swap SIZE] [--cpus N] [--cpu-shares N] [--cpuset-cpus LIST] [--cpuset-mems LIST] [--pids-limit N] [--restart POLICY] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers",
		Long: "Update configuration of one or more containers: the cgroup limits of a running one at once\n" +
			"(through the OCI runtime's update) and in its record, so a restart or a later start keeps them.\n" +
			"0 lifts a limit (--pids-limit -1 too, as docker). --restart changes the restart policy the\n" +
			"container's monitor applies from its next exit (not for a container run with --rm).",
		Args: argsRange(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ch container.ResourceChange
			fl := cmd.Flags()
			if fl.Changed("memory") {
				n, err := parseMemory("--memory", memory)
				if err != nil {
					return usageError{err}
				}
				ch.Memory = &n
			}
			if fl.Changed("memory-swap") {
				n := int64(-1)
				if memorySwap != "-1" {
					var err error
					if n, err = parseMemory("--memory-swap", memorySwap); err != nil {
						return usageError{err}
					}
				}
				ch.MemorySwap = &n
			}
			if fl.Changed("cpus") {
				if cpus < 0 {
					return usageError{fmt.Errorf("invalid --cpus %g: the CPU limit must not be negative", cpus)}
				}
				ch.CPUs = &cpus
			}
			if fl.Changed("pids-limit") {
				n := max(pidsLimit, 0) // docker's -1 is unlimited, kiln's 0
				ch.PidsLimit = &n
			}
			if fl.Changed("cpu-shares") {
				if cpuShares == 0 {
					cpuShares = 1024 // the default weight: the runtime cannot unset it
				}
				ch.CPUShares = &cpuShares
			}
			for _, c := range []struct {
				name string
				v    string
				dst  **string
			}{{"cpuset-cpus", cpusetCPUs, &ch.CpusetCPUs}, {"cpuset-mems", cpusetMems, &ch.CpusetMems}} {
				if !fl.Changed(c.name) {
					continue
				}
				if c.v == "" {
					return usageError{fmt.Errorf("--%s needs a list such as 0-1: to allow them all, list them all", c.name)}
				}
				*c.dst = &c.v
			}
			if fl.Changed("restart") {
				p, err := container.ParseRestartPolicy(restart)
				if err != nil {
					return usageError{err}
				}
				ch.Restart = &p
			}
			if ch == (container.ResourceChange{}) {
				return usageError{errors.New("you must provide one or more flags when using this command: --memory, --memory-swap, --cpus, --cpu-shares, --cpuset-cpus, --cpuset-mems, --pids-limit or --restart")}
			}
			return eachContainer(cmd, g, args, func(cs *container.Store, _ *runtime.Runtime, c *container.Container) error {
				return cs.Update(cmd.Context(), c, ch)
			})
		},
	}
	f := c.Flags()
	f.StringVarP(&memory, "memory", "m", "", "memory limit, e.g. 64m or 1g (0: none)")
	f.StringVar(&memorySwap, "memory-swap", "", "memory plus swap, e.g. 1g; -1: unlimited swap")
	f.Float64Var(&cpus, "cpus", 0, "CPU limit in cores, e.g. 0.5 (0: none)")
	f.Int64Var(&pidsLimit, "pids-limit", 0, "maximum number of processes (0 or -1: unlimited)")
	f.Uint64VarP(&cpuShares, "cpu-shares", "c", 0, "relative CPU weight against other containers (0: back to the default 1024)")
	f.StringVar(&cpusetCPUs, "cpuset-cpus", "", "CPUs the container may use, e.g. 0-2,4")
	f.StringVar(&cpusetMems, "cpuset-mems", "", "memory nodes (NUMA) the container may allocate on, e.g. 0-1")
	f.StringVar(&restart, "restart", "", "restart policy: no, on-failure[:max-retries], always or unless-stopped")
	return c
}
