package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// monitorLogFile receives the detached monitor's own stderr: kiln's failures, not the container's.
const monitorLogFile = "monitor.log"

// Spawn starts a detached monitor for c by running argv (kiln re-executing itself as
// `kiln __monitor ID`) in its own session with stdio on /dev/null, and waits until the container
// has started, or has exited at once, or the monitor failed.
func (s *Store) Spawn(ctx context.Context, c *Container, argv []string) error {
	logf, err := os.OpenFile(filepath.Join(c.dir, monitorLogFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("start monitor: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = logf // Stdin and Stdout stay nil: /dev/null
	cmd.Dir = "/"     // pin no directory (or mount) of the caller's for the container's lifetime
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	since := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start monitor: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reaps the monitor should it die while we wait
	return c.waitStarted(ctx, since, exited)
}

// waitStarted polls the state until this start shows: a pid, an exit, or a failure.
func (c *Container) waitStarted(ctx context.Context, since time.Time, exited <-chan error) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := c.State()
		if err != nil {
			return err
		}
		switch {
		case st.Error != "" && st.FinishedAt.After(since):
			return errors.New(st.Error)
		case st.Status == StatusRunning && st.Pid > 0 && st.StartedAt.After(since):
			return nil
		case st.Status != StatusRunning && st.FinishedAt.After(since):
			return nil // it ran and exited already (or waits to restart)
		}
		select {
		case err := <-exited:
			if st, _ := c.State(); st.FinishedAt.After(since) || st.Running() {
				return nil // it ran, or another start's monitor owns it
			}
			return fmt.Errorf("the monitor of container %s exited (%v): see %s", c.ShortID(), err, filepath.Join(c.dir, monitorLogFile))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("container %s did not start within a minute: see %s", c.ShortID(), filepath.Join(c.dir, monitorLogFile))
		}
	}
}
