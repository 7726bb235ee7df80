package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"

	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/runtime"
)

// stopRequest is stop.json: a user asked the container to stop (so no restart policy applies),
// and how long it gets after its stop signal.
type stopRequest struct {
	Timeout time.Duration `json:"Timeout"`
}

func (m *monitor) stopRequested() bool {
	_, err := os.Stat(filepath.Join(m.c.dir, stopFile))
	return err == nil
}

// readStopRequest returns the requested timeout; a bare SIGTERM (no request) gets the runtime's
// default grace period, as a foreground run's Ctrl-C always did.
func (m *monitor) stopTimeout() time.Duration {
	var req stopRequest
	data, err := os.ReadFile(filepath.Join(m.c.dir, stopFile))
	if err != nil || json.Unmarshal(data, &req) != nil {
		return runtime.DefaultStopGrace
	}
	return max(req.Timeout, 0)
}

// stop sends the container its stop signal and waits the timeout for the run to end (done),
// then kills it.
func (m *monitor) stop(ctr *runtime.Container, done <-chan runResult) runResult {
	timeout := m.stopTimeout()
	if err := ctr.Kill(context.Background(), m.c.stopSignal()); err == nil && timeout > 0 {
		select {
		case res := <-done:
			return res
		case <-time.After(timeout):
		}
	}
	ctr.Kill(context.Background(), syscall.SIGKILL) //nolint:errcheck // it may have exited just now
	return <-done
}

// requestStop records that a user stopped the container, so its policy does not restart it.
func (c *Container) requestStop(timeout time.Duration) error {
	data, err := json.Marshal(stopRequest{Timeout: timeout})
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(c.dir, stopFile), data, atomicfile.Options{Perm: 0o600})
}

// Stop stops a running container: its stop signal, then SIGKILL after timeout. It returns
// once the monitor has recorded the exit; stopping a stopped container does nothing.
func (s *Store) Stop(ctx context.Context, rt *runtime.Runtime, c *Container, timeout time.Duration) error {
	st, err := c.State()
	if err != nil {
		return err
	}
	if st.MonitorLost {
		return s.cleanup(ctx, rt, c)
	}
	if !st.Running() {
		return nil
	}
	if err := c.requestStop(timeout); err != nil {
		return fmt.Errorf("stop %s: %w", c.ShortID(), err)
	}
	if err := syscall.Kill(st.MonitorPid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop %s: signal monitor: %w", c.ShortID(), err)
	}
	return c.waitStopped(ctx, timeout+30*time.Second)
}

// waitStopped polls the state until the container is no longer running.
func (c *Container) waitStopped(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		st, err := c.State()
		if err != nil || !st.Running() {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("container %s did not stop within %s", c.ShortID(), limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Kill sends sig to the container's main process. SIGKILL and the stop signal count as a user
// stop: the restart policy does not bring the container back.
func (s *Store) Kill(ctx context.Context, rt *runtime.Runtime, c *Container, sig syscall.Signal) error {
	st, err := c.State()
	if err != nil {
		return err
	}
	if st.Status != StatusRunning || st.MonitorLost {
		return fmt.Errorf("cannot kill container %s: container %s is not running", c.Name, c.ID)
	}
	if sig == syscall.SIGKILL || sig == c.stopSignal() {
		if err := c.requestStop(0); err != nil {
			return fmt.Errorf("kill %s: %w", c.ShortID(), err)
		}
	}
	ctr, err := rt.Load(c.ID)
	if err == nil {
		err = ctr.Kill(ctx, sig)
	}
	if err != nil {
		return fmt.Errorf("kill %s: %w", c.ShortID(), err)
	}
	return nil
}

// RunningError refuses to remove a running container without force, in docker's words.
type RunningError struct{ Name string }

func (e *RunningError) Error() string {
	return fmt.Sprintf("cannot remove container \"/%s\": container is running: stop the container before removing or force remove", e.Name)
}

// Remove deletes a container and everything it left behind; force kills a running one first.
func (s *Store) Remove(ctx context.Context, rt *runtime.Runtime, c *Container, force bool) error {
	st, err := c.State()
	if err != nil {
		return err
	}
	if st.Running() && !force {
		return &RunningError{Name: c.Name}
	}
	if st.Running() {
		if err := s.Stop(ctx, rt, c, 0); err != nil {
			return err
		}
	}
	if err := s.cleanup(ctx, rt, c); err != nil {
		return err
	}
	if mounted, err := mountinfo.Mounted(filepath.Join(c.Spec.BundleDir, "rootfs")); err == nil && mounted {
		return fmt.Errorf("remove %s: its root filesystem is still mounted at %s/rootfs: unmount it and retry", c.ShortID(), c.Spec.BundleDir)
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	gone := filepath.Join(s.dir, ".rm-"+c.ID) // out of sight first: no half-removed container is ever listed
	if err := os.Rename(c.dir, gone); err != nil {
		return fmt.Errorf("remove %s: %w", c.ShortID(), err)
	}
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("remove %s: %w", c.ShortID(), err)
	}
	return nil
}

// cleanup removes what a dead monitor left in the runtime (the container process, its rootfs
// mount, cgroups); the runtime leaves what live kiln processes own alone.
func (s *Store) cleanup(ctx context.Context, rt *runtime.Runtime, c *Container) error {
	if st, err := c.State(); err == nil && st.MonitorLost {
		// The runtime counts an unreaped (zombie) monitor as alive and would skip its container.
		waitReaped(ctx, st.MonitorPid, st.MonitorStart, 5*time.Second)
	}
	if err := rt.Cleanup(ctx); err != nil {
		return fmt.Errorf("clean up container %s: %w", c.ShortID(), err)
	}
	return nil
}

// Prune removes every container that is not running and returns their ids.
func (s *Store) Prune(ctx context.Context, rt *runtime.Runtime) ([]string, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, c := range all {
		st, err := c.State()
		if err != nil || st.Running() || (st.Status == StatusCreated && processAlive(st.MonitorPid, st.MonitorStart)) {
			continue
		}
		if err := s.Remove(ctx, rt, c, false); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, c.ID)
	}
	return removed, errors.Join(errs...)
}

// waitReaped waits (up to limit) until a dead process has also been reaped by its parent.
func waitReaped(ctx context.Context, pid int, start uint64, limit time.Duration) {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline) && ctx.Err() == nil; {
		if rawStart(pid) != start {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
