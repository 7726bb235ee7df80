package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/container"
)

// monitorCmdName is the hidden verb `kiln run -d` and `kiln start` re-execute kiln with.
const monitorCmdName = "__monitor"

// monitorArgv is the command line of a detached monitor for container id.
func monitorArgv(g *globalOptions, id string) []string {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	root := g.storeRoot()
	if abs, err := filepath.Abs(root); err == nil {
		root = abs // the monitor runs in "/"
	}
	argv := []string{exe, "--root", root}
	if g.runtime != "" {
		argv = append(argv, "--runtime", g.runtime) // the monitor runs the container with the same runtime
	}
	return append(argv, monitorCmdName, id)
}

func newMonitorCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:    monitorCmdName + " ID",
		Short:  "Own a detached container: run it, log it, restart it (internal)",
		Hidden: true,
		Args:   argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// SIGTERM is `kiln stop`'s request; handled here too, whatever main installed.
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)
			cs, err := container.Open(g.storeRoot())
			if err != nil {
				return err
			}
			c, err := cs.Get(args[0])
			if err != nil {
				return err
			}
			rt, err := g.containerRuntime(cmd)
			if err != nil {
				return err
			}
			// Its stderr is containers/<id>/monitor.log: kiln's own failures land there.
			hold := os.Getenv(container.HoldEnv) == "1"
			os.Unsetenv(container.HoldEnv) //nolint:errcheck // nothing it runs needs it
			_, err = cs.Supervise(ctx, rt, c, container.Streams{Started: spawnerReady(), Detached: true, HoldForAttach: hold})
			if c.AutoRemove {
				if rerr := cs.Remove(context.WithoutCancel(ctx), rt, c, true); rerr != nil {
					err = errors.Join(err, rerr)
				} else {
					err = errors.Join(err, cs.RemoveAnonymousVolumes(context.WithoutCancel(ctx), c))
				}
			}
			return err
		},
	}
}

// spawnerReady returns what tells the kiln that spawned this monitor the container started: one
// byte on the descriptor named by container.ReadyEnv (nil when not spawned so).
func spawnerReady() func() {
	fd, err := strconv.Atoi(os.Getenv(container.ReadyEnv))
	os.Unsetenv(container.ReadyEnv) //nolint:errcheck // nothing below needs it
	if err != nil || fd < 3 {
		return nil
	}
	f := os.NewFile(uintptr(fd), "ready")
	syscall.CloseOnExec(fd) // the OCI runtime must not inherit it
	return func() {
		f.Write([]byte{1}) //nolint:errcheck // a spawner that gave up reads nothing
		f.Close()
	}
}
