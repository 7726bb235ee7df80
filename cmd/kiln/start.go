package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/container"
	"github.com/kiln-build/kiln/runtime"
)

func newStartCmd(g *globalOptions) *cobra.Command {
	var attach, interactive bool
	ao := &attachOptions{sigProxy: true}
	c := &cobra.Command{
		Use:   "start [-a] [-i] CONTAINER [CONTAINER...]",
		Short: "Start stopped containers in the background",
		Long: "Start each container again under a detached monitor, with its filesystem as it was left.\n" +
			"With -a, this kiln is the monitor: the container's output goes to the terminal (and its log),\n" +
			"SIGTERM or Ctrl-C stops it, and the exit code is the container's — what a systemd unit runs.\n" +
			"With -i (docker's start -ai), a container created with -i or -t starts under a detached monitor and\n" +
			"this terminal attaches to it, as kiln attach does: the detach keys leave it running. The container\n" +
			"starts once this terminal is attached, so none of its output or input is lost.",
		Args: argsRange(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if interactive {
				if len(args) > 1 {
					return usageError{errors.New("you cannot start and attach multiple containers at once")}
				}
				return startInteractive(cmd, g, args[0], ao)
			}
			if attach {
				if len(args) > 1 {
					return usageError{errors.New("cannot start and attach multiple containers at once")}
				}
				return startAttached(cmd, g, args[0])
			}
			return eachContainer(cmd, g, args, func(cs *container.Store, rt *runtime.Runtime, c *container.Container) error {
				return startContainer(cmd, g, cs, rt, c, false)
			})
		},
	}
	c.Flags().BoolVarP(&attach, "attach", "a", false, "run the container in the foreground: its output here, its exit code kiln's")
	c.Flags().BoolVarP(&interactive, "interactive", "i", false, "start it in the background and attach this terminal's input and output (kiln attach)")
	c.Flags().StringVar(&ao.detachKeys, "detach-keys", "", "with -i: override the key sequence for detaching (default ctrl-p,ctrl-q)")
	return c
}

// startContainer spawns a monitor unless the container runs already, first cleaning up what a
// killed monitor left behind; with hold the monitor waits for an attach client to start it.
func startContainer(cmd *cobra.Command, g *globalOptions, cs *container.Store, rt *runtime.Runtime, c *container.Container, hold bool) error {
	st, err := c.State()
	if err != nil || st.Running() {
		return err
	}
	if st.MonitorLost {
		if err := cs.Stop(cmd.Context(), rt, c, 0); err != nil {
			return err
		}
	}
	return cs.Spawn(cmd.Context(), c, monitorArgv(g, c.ID), hold)
}

// startInteractive is docker's start -ai: a detached start that waits for this attach, so the
// output of a container that exits at once is seen, and its input is taken from the start.
func startInteractive(cmd *cobra.Command, g *globalOptions, ref string, o *attachOptions) error {
	cs, c, err := getContainer(g, ref)
	if err != nil {
		return err
	}
	rt, err := g.containerRuntime(cmd)
	if err != nil {
		return err
	}
	since := time.Now()
	if err := startContainer(cmd, g, cs, rt, c, true); err != nil {
		return failure(1, err)
	}
	o.held = true
	code, err := attachTo(cmd, g, cs, c, o)
	if st, serr := c.State(); err == nil && code >= 125 && serr == nil && st.Error != "" && st.FinishedAt.After(since) {
		return failure(code, errors.New(st.Error)) // it could not start: say why, as a detached start does
	}
	return attachExit(code, err)
}

// startAttached supervises the container in this process, as a foreground `kiln run` does.
func startAttached(cmd *cobra.Command, g *globalOptions, ref string) error {
	cs, err := g.openContainers()
	if err != nil {
		return err
	}
	c, err := cs.Get(ref)
	if err != nil {
		return err
	}
	st, err := c.State()
	if err != nil {
		return err
	}
	if st.Running() {
		return fmt.Errorf("container %s is already running under a monitor: follow it with kiln logs -f %s", ref, ref)
	}
	rt, err := g.containerRuntime(cmd)
	if err != nil {
		return err
	}
	if st.MonitorLost {
		if err := cs.Stop(cmd.Context(), rt, c, 0); err != nil {
			return err
		}
	}
	code, err := cs.Supervise(cmd.Context(), rt, c, container.Streams{Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr()})
	if c.AutoRemove {
		err = errors.Join(err, cs.Remove(context.WithoutCancel(cmd.Context()), rt, c, true))
	}
	if err != nil {
		return failure(exitKilnError, err)
	}
	if code != 0 {
		return exitCodeError{code: code}
	}
	return nil
}
