package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"

	"github.com/kiln-build/kiln/runtime"
)

// controlSocket is the monitor's unix socket in the container's directory: `kiln stop` and
// `kiln kill` ask the monitor, which holds the running container, instead of leaving files.
const controlSocket = "control.sock"

// request is one control message; the monitor answers with a reply when it is done.
type request struct {
	Op      string        `json:"op"`                // "stop", "kill", "pause", "unpause", "update" or "attach"
	Stdin   bool          `json:"stdin,omitempty"`   // attach: the client's input goes to the container
	Timeout time.Duration `json:"timeout,omitempty"` // stop: how long after the stop signal until SIGKILL
	Signal  int           `json:"signal,omitempty"`  // kill: the signal
	// Resources are update's new limits, all of them (the record's after the change); nil
	// leaves them. Restart is update's new restart policy; nil leaves it.
	Resources *runtime.Resources `json:"resources,omitempty"`
	Restart   *RestartPolicy     `json:"restart,omitempty"`
}

type reply struct {
	Error string `json:"error,omitempty"`
}

// controlReq is a request on its way to the monitor's loop, with where the answer goes.
type controlReq struct {
	request
	answer  chan<- error
	written <-chan struct{} // closed once the answer reached the client
}

// listen opens the monitor's control socket (the lock makes this monitor its only owner).
func (m *monitor) listen() (*net.UnixListener, error) {
	os.Remove(filepath.Join(m.c.dir, controlSocket)) //nolint:errcheck // a killed monitor's
	var l *net.UnixListener
	err := inDir(m.c.dir, func(dir string) error {
		var err error
		l, err = net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, controlSocket), Net: "unix"})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("container %s: control socket: %w", m.c.ShortID(), err)
	}
	l.SetUnlinkOnClose(false) // the name may be a /proc path: remove by the real one
	return l, nil
}

// serve hands each connection's request to the loop and writes back its answer.
func (m *monitor) serve(l *net.UnixListener, reqs chan<- controlReq) {
	for {
		conn, err := l.AcceptUnix()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			var req request
			dec := json.NewDecoder(conn)
			if err := dec.Decode(&req); err != nil {
				return
			}
			if req.Op == "attach" {
				// The connection is the client's stream from now on: the hub serves it, not the loop.
				m.hub.join(conn, dec, req.Stdin && m.c.OpenStdin, m.attachRefusal())
				return
			}
			answer, written := make(chan error, 1), make(chan struct{})
			defer close(written)
			select {
			case reqs <- controlReq{req, answer, written}:
			case <-m.closed:
				answer <- fmt.Errorf("container %s is not running", m.c.ShortID())
			}
			var rep reply
			if err := <-answer; err != nil {
				rep.Error = err.Error()
			}
			json.NewEncoder(conn).Encode(rep) //nolint:errcheck // the client may have given up
		}()
	}
}

// closeControl stops serving: later clients see the monitor gone and read the final state.
func (m *monitor) closeControl(l *net.UnixListener) {
	os.Remove(filepath.Join(m.c.dir, controlSocket)) //nolint:errcheck // gone already is fine
	l.Close()
}

// inDir runs fn with a short name for dir (through /proc/self/fd), since a unix socket's path
// is limited to 107 bytes and store roots can be deep.
func inDir(dir string, fn func(short string) error) error {
	if len(dir)+len(controlSocket) < 100 {
		return fn(dir)
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return fn("/proc/self/fd/" + strconv.Itoa(int(d.Fd())))
}

// ask sends req to c's monitor and waits for its answer; errNoMonitor when none listens.
func (c *Container) ask(ctx context.Context, req request) error {
	var conn net.Conn
	err := inDir(c.dir, func(dir string) error {
		var err error
		var d net.Dialer
		conn, err = d.DialContext(ctx, "unix", filepath.Join(dir, controlSocket))
		return err
	})
	if err != nil {
		return fmt.Errorf("%w: %v", errNoMonitor, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) }) //nolint:errcheck // unblocks the read
	defer stop()
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return fmt.Errorf("container %s: ask monitor: %w", c.ShortID(), err)
	}
	var rep reply
	if err := json.NewDecoder(conn).Decode(&rep); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("container %s: the monitor did not answer: %w", c.ShortID(), err)
	}
	if rep.Error != "" {
		return errors.New(rep.Error)
	}
	return nil
}

// errNoMonitor says no monitor listens: it has exited (or is just exiting).
var errNoMonitor = errors.New("no monitor listens")

// stop sends the container its stop signal and waits the timeout for the run to end (done),
// then kills it.
func (m *monitor) stop(ctr *runtime.Container, done <-chan runResult, timeout time.Duration) runResult {
	err := ctr.Kill(context.Background(), m.c.stopSignal())
	m.thaw(ctr) //nolint:errcheck // a frozen container gets SIGKILL below, which ends it thawed or not
	if err == nil && timeout > 0 {
		select {
		case res := <-done:
			return res
		case <-time.After(timeout):
		}
	}
	ctr.Kill(context.Background(), syscall.SIGKILL) //nolint:errcheck // it may have exited just now
	return <-done
}

// Stop stops a running container: its stop signal, then SIGKILL after timeout; no restart policy
// brings it back. It returns once the monitor has recorded the exit; stopping a stopped
// container does nothing.
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
	err = c.ask(ctx, request{Op: "stop", Timeout: timeout})
	if err != nil && ctx.Err() == nil {
		if st, serr := c.State(); serr == nil && st.MonitorLost {
			return s.cleanup(ctx, rt, c) // the monitor died meanwhile
		} else if serr == nil && !st.Running() {
			return nil // it exited meanwhile (or another stop ended it)
		}
	}
	if err != nil {
		return fmt.Errorf("stop %s: %w", c.ShortID(), err)
	}
	return nil
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
	if err := c.ask(ctx, request{Op: "kill", Signal: int(sig)}); err != nil {
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
	// A monitor that ended normally tore its container down; only a lost one leaves work.
	if st.MonitorLost {
		if err := s.cleanup(ctx, rt, c); err != nil {
			return err
		}
	}
	inUse, err := unmountAbandonedViews(c.dir)
	if err != nil {
		return fmt.Errorf("remove %s: %w", c.ShortID(), err)
	}
	if mounted, err := mountinfo.Mounted(filepath.Join(c.Spec.BundleDir, "rootfs")); err == nil && mounted {
		return fmt.Errorf("remove %s: its root filesystem is still mounted at %s/rootfs: unmount it and retry", c.ShortID(), c.Spec.BundleDir)
	}
	if inUse { // a live cp or export has its filesystem mounted: removing would delete through it
		return fmt.Errorf("remove %s: a kiln cp or export is using its filesystem: retry once it is done", c.ShortID())
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
