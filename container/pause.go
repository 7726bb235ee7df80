package container

import (
	"context"
	"fmt"

	"github.com/kiln-build/kiln/runtime"
)

// Pause freezes a running container's processes (docker pause); its monitor does it and records
// it, so state.json keeps one writer.
func (s *Store) Pause(ctx context.Context, c *Container) error {
	return s.freeze(ctx, c, true)
}

// Unpause thaws a container Pause froze.
func (s *Store) Unpause(ctx context.Context, c *Container) error {
	return s.freeze(ctx, c, false)
}

func (s *Store) freeze(ctx context.Context, c *Container, pause bool) error {
	st, err := c.State()
	if err != nil {
		return err
	}
	if err := freezable(c, st, pause); err != nil {
		return err
	}
	op := map[bool]string{true: "pause", false: "unpause"}[pause]
	if err := c.ask(ctx, request{Op: op}); err != nil {
		return fmt.Errorf("%s %s: %w", op, c.ShortID(), err)
	}
	return nil
}

// pauseWhile freezes c if it is running and not paused, and returns what thaws it again. As
// docker's commit, a container that cannot be frozen (not running, exited meanwhile, rootless
// without a freezer) is read as it runs: the pause is for consistency, never a precondition.
func (c *Container) pauseWhile(ctx context.Context) (resume func() error) {
	none := func() error { return nil }
	st, err := c.State()
	if err != nil || st.Status != StatusRunning || st.Paused || st.MonitorLost {
		return none
	}
	if c.ask(ctx, request{Op: "pause"}) != nil {
		return none
	}
	return func() error {
		err := c.ask(context.WithoutCancel(ctx), request{Op: "unpause"})
		if st, serr := c.State(); err != nil && (serr != nil || st.Paused) {
			return fmt.Errorf("unpause after commit: %w (run kiln unpause %s)", err, c.ShortID())
		}
		return nil
	}
}

// freezable refuses what docker refuses, in its words: a container that is not running, is
// restarting, or already is (or is not) paused.
func freezable(c *Container, st State, pause bool) error {
	switch {
	case st.Status == StatusRestarting && !st.MonitorLost:
		return fmt.Errorf("container %s is restarting, wait until the container is running", c.ID)
	case !st.Running():
		return fmt.Errorf("container %s is not running", c.ID)
	case pause && st.Paused:
		return fmt.Errorf("container %s is already paused", c.ID)
	case !pause && !st.Paused:
		return fmt.Errorf("container %s is not paused", c.ID)
	}
	return nil
}

// freeze pauses or resumes the running container and records it.
func (m *monitor) freeze(ctx context.Context, ctr *runtime.Container, pause bool) error {
	if err := freezable(m.c, m.state, pause); err != nil {
		return err
	}
	var err error
	if pause {
		m.pause.set(true) // before the freeze: no check may start into a frozen cgroup
		if err = ctr.Pause(ctx); err != nil {
			m.pause.set(false)
		}
	} else if err = ctr.Resume(ctx); err == nil {
		m.pause.set(false)
	}
	if err != nil {
		return err
	}
	m.state.Paused = pause
	return writeState(m.c.dir, m.state, m.c.AutoRemove)
}

// thaw resumes a paused container so that a signal just sent reaches it (docker's stop and kill
// unpause too): a process in a frozen cgroup v1 handles no signal, not even SIGKILL, until thawed.
func (m *monitor) thaw(ctr *runtime.Container) error {
	if !m.state.Paused {
		return nil
	}
	return m.freeze(context.Background(), ctr, false)
}

// DockerStatus is docker's State.Status word: created, running, paused, restarting, exited, or
// dead when the monitor died without recording an exit.
func (s State) DockerStatus() string {
	switch {
	case s.MonitorLost:
		return "dead"
	case s.Status == StatusRunning && s.Paused:
		return "paused"
	}
	return string(s.Status)
}
