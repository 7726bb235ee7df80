package container

import (
	"context"
	"errors"
	"fmt"
	"github.com/kiln-build/kiln/runtime"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// monitorLogFile receives the detached monitor's own stderr: kiln's failures, not the container's.
const monitorLogFile = "monitor.log"

// ReadyEnv names the environment variable that tells a spawned monitor which descriptor to
// report on: it writes one byte there once its first start is recorded (running with its pid, or
// exited), so Spawn waits on a pipe instead of polling state.json.
const ReadyEnv = "KILN_MONITOR_READY_FD"

// HoldEnv tells a spawned monitor to hold the container's first start until an attach client
// joins (Streams.HoldForAttach).
const HoldEnv = "KILN_MONITOR_HOLD"

// Spawn starts a detached monitor for c by running argv (kiln re-executing itself as
// `kiln __monitor ID`) in its own session with stdio on /dev/null, and waits until the container
// has started, or has exited at once, or the monitor failed. With hold the monitor waits for an
// attach client (AttachOptions.Held) before it starts the container, and Spawn returns once it
// listens.
func (s *Store) Spawn(ctx context.Context, c *Container, argv []string, hold bool) error {
	logf, err := os.OpenFile(filepath.Join(c.dir, monitorLogFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("start monitor: %w", err)
	}
	defer logf.Close()
	ready, readyW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("start monitor: %w", err)
	}
	defer ready.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = logf // Stdin and Stdout stay nil: /dev/null
	cmd.Dir = "/"     // pin no directory (or mount) of the caller's for the container's lifetime
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.ExtraFiles = []*os.File{readyW} // fd 3
	cmd.Env = append(os.Environ(), ReadyEnv+"=3")
	if hold {
		cmd.Env = append(cmd.Env, HoldEnv+"=1")
	}
	since := time.Now()
	err = cmd.Start()
	readyW.Close() // the monitor holds the only write end now: its exit means EOF
	if err != nil {
		return fmt.Errorf("start monitor: %w", err)
	}
	go cmd.Wait() //nolint:errcheck // reaps the monitor should it die while we wait
	said := make(chan bool, 1)
	go func() {
		n, _ := ready.Read(make([]byte, 1))
		said <- n == 1
	}()
	select {
	case ok := <-said:
		return c.started(since, ok)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// started reads what the monitor recorded of this start; ok says it reported one.
func (c *Container) started(since time.Time, ok bool) error {
	st, err := c.State()
	if err != nil {
		return err
	}
	switch {
	case st.Error != "" && st.FinishedAt.After(since) && (st.ExitCode == 126 || st.ExitCode == 127):
		return &runtime.CommandError{Status: runtime.ExitStatus(st.ExitCode), Msg: st.Error}
	case st.Error != "" && st.FinishedAt.After(since):
		return errors.New(st.Error)
	case ok || st.FinishedAt.After(since) || st.Running():
		return nil // it runs or ran (or another start's monitor owns it)
	}
	lock, err := c.lockMonitor() // held by another: why this monitor could not run
	if err != nil {
		return err
	}
	lock.Unlock() //nolint:errcheck // closing the lock file releases it too
	return fmt.Errorf("the monitor of container %s exited before starting it: see %s", c.ShortID(), filepath.Join(c.dir, monitorLogFile))
}
