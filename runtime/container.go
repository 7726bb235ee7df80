package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Container is a handle on one container: one this process started (Start), or one a live kiln
// process runs (Load), which offers all but Wait.
type Container struct {
	rt     *Runtime
	id     string
	bundle string
	runner *ociRunner

	// Set for a started container only.
	cmd    *exec.Cmd     // `<runtime> run`: it lives as long as the container
	exited chan struct{} // closed once the runtime process has exited (code, runErr set)
	done   chan struct{} // closed once the container is torn down (status, err set)
	code   int
	runErr error
	status ExitStatus
	err    error

	mu    sync.Mutex // guards pidfd against its closing at the end
	pid   int
	pidfd int // of the container's init: signals never reach a reused pid; -1 = none
}

// ID is the container's id.
func (c *Container) ID() string { return c.id }

// Start prepares the rootfs, network and config of s and starts its process; it returns once the
// container runs (its init pid is known) or has already exited. Cancelling ctx stops the
// container (SIGTERM, then SIGKILL after s.StopGrace) and tears it down; Wait reports the end.
func (rt *Runtime) Start(ctx context.Context, s Spec) (*Container, error) {
	if rt.isolation == IsolationChroot {
		return nil, ErrChrootNoContainers
	}
	if err := checkSpec(s); err != nil {
		return nil, err
	}
	r, err := rt.pick(ctx)
	if err != nil {
		return nil, err
	}
	s.stateDir, s.rootless = rt.stateDir, rt.isolation == IsolationRootless
	if err := checkHostAccess(s); err != nil {
		return nil, err
	}
	if err := checkRootless(&s); err != nil { // after the flags' own checks: it reads the cgroup tree
		return nil, err
	}
	if s.cgroupParent != "" {
		fmt.Fprintf(rt.debug, "cgroup: %s/%s (delegated cgroup v2, rootless)\n", s.cgroupParent, s.ID)
	}
	teardown, err := rt.prepare(ctx, r, &s)
	if err != nil {
		return nil, err
	}
	c := &Container{rt: rt, id: s.ID, bundle: s.BundleDir, runner: r, pidfd: -1,
		exited: make(chan struct{}), done: make(chan struct{})}
	pidFile := filepath.Join(s.BundleDir, "init.pid")
	os.Remove(pidFile) //nolint:errcheck // a stale one from an earlier run of the bundle
	cmd, logFile, held := r.runCmd(s.BundleDir, s.ID, pidFile, stdio{Stdin: s.Stdin, Stdout: s.Stdout, Stderr: s.Stderr, Terminal: s.Terminal})
	if err := cmd.Start(); err != nil {
		return nil, errors.Join(fmt.Errorf("start %s: %w", r.name, err), teardown())
	}
	c.cmd = cmd
	go func() {
		err := cmd.Wait()
		c.code, c.runErr = r.result(err, cmd, logFile, held)
		close(c.exited)
	}()
	grace := s.StopGrace
	if grace <= 0 {
		grace = DefaultStopGrace
	}
	pidfd, pid, err := waitPidFile(ctx, pidFile, c.exited)
	if err == nil && pidfd < 0 && ctx.Err() != nil {
		// Cancelled mid-start: runc writes the pid file only after the process runs, so the
		// container may well exist. Find its init within the grace, so that stop ends it with
		// SIGTERM/SIGKILL and its status is kept, rather than orphaning it by killing the runtime.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
		pidfd, pid, err = waitPidFile(wctx, pidFile, c.exited)
		cancel()
	}
	if err != nil {
		cmd.Process.Kill() //nolint:errcheck // cannot watch it: give up on it
	}
	c.pid, c.pidfd = pid, pidfd
	go c.supervise(ctx, grace, teardown)
	if err != nil {
		<-c.done
		return nil, errors.Join(err, c.err)
	}
	return c, nil
}

// supervise waits for the end of the runtime process (stopping the container when ctx ends
// first), tears the container down and records the outcome for Wait.
func (c *Container) supervise(ctx context.Context, grace time.Duration, teardown func() error) {
	stopped := false
	select {
	case <-c.exited:
	case <-ctx.Done():
		stopped = true
		c.stop(grace)
		<-c.exited
	}
	status, err := exitStatus(runResult{c.code, c.runErr}, c.id)
	if stopped {
		status, err = ExitStatus(c.code), fmt.Errorf("container %s stopped: %w", c.id, context.Cause(ctx))
		if c.code < 0 {
			status = 128 + ExitStatus(syscall.SIGKILL) // the runtime was killed: delete --force kills the rest
		}
		// The runtime may have been killed mid-create: make sure it keeps no state.
		err = errors.Join(err, c.runner.delete(context.Background(), c.id))
	}
	c.mu.Lock()
	if c.pidfd >= 0 {
		unix.Close(c.pidfd)
		c.pidfd = -1
	}
	c.mu.Unlock()
	c.status, c.err = status, errors.Join(err, teardown())
	close(c.done)
}

// stop sends SIGTERM to the container's init, SIGKILL after grace; a runtime that never
// created the container within grace is killed itself.
func (c *Container) stop(grace time.Duration) {
	timer := time.NewTimer(grace)
	defer timer.Stop()
	if c.signal(syscall.SIGTERM) != nil {
		c.cmd.Process.Kill() //nolint:errcheck // no container to signal: end the runtime
		return
	}
	select {
	case <-c.exited:
	case <-timer.C:
		c.signal(syscall.SIGKILL) //nolint:errcheck // it may just have exited
	}
}

// signal sends sig to the started container's init through its pidfd.
func (c *Container) signal(sig syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pidfd < 0 {
		return &NotRunningError{ID: c.id}
	}
	if err := unix.PidfdSendSignal(c.pidfd, sig, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return &NotRunningError{ID: c.id}
		}
		return fmt.Errorf("signal container %s: %w", c.id, err)
	}
	return nil
}

// started says whether this process started c (so it knows its state without asking the runtime).
func (c *Container) started() bool { return c.exited != nil }

// Wait waits until the container has exited and been torn down and returns its exit status
// (see Run). Only for containers this process started; cancelling ctx only stops the waiting.
func (c *Container) Wait(ctx context.Context) (ExitStatus, error) {
	if !c.started() {
		return -1, fmt.Errorf("container %s: only the kiln process that started it can wait for it", c.id)
	}
	select {
	case <-c.done:
		return c.status, c.err
	case <-ctx.Done():
		return -1, ctx.Err()
	}
}

// State reports the container's status and init pid; a container that is not running yields
// a *NotRunningError.
func (c *Container) State(ctx context.Context) (ContainerState, error) {
	if c.started() {
		select {
		case <-c.exited:
			return ContainerState{}, &NotRunningError{ID: c.id}
		default:
			return ContainerState{ID: c.id, Status: StatusRunning, Pid: c.pid, Bundle: c.bundle}, nil
		}
	}
	st, err := c.runner.state(ctx, c.id)
	if err != nil {
		return ContainerState{}, err
	}
	if st.Bundle == "" {
		st.Bundle = c.bundle
	}
	return st, nil
}

// Kill sends sig to the container's init process. The run that owns the container sees it exit
// and cleans up as usual.
func (c *Container) Kill(ctx context.Context, sig syscall.Signal) error {
	if c.started() {
		return c.signal(sig)
	}
	st, err := c.runner.state(ctx, c.id)
	if err != nil {
		return err
	}
	if st.Status != StatusRunning && st.Status != StatusPaused && st.Status != StatusCreated {
		return &NotRunningError{ID: c.id}
	}
	return c.runner.kill(ctx, c.id, sig)
}

// Pause freezes every process of the container (the cgroup freezer); Resume thaws them. A
// rootless container has no cgroup of its own to freeze: that is refused, naming why.
func (c *Container) Pause(ctx context.Context) error { return c.freeze(ctx, true) }

// Resume thaws a container Pause froze.
func (c *Container) Resume(ctx context.Context) error { return c.freeze(ctx, false) }

func (c *Container) freeze(ctx context.Context, freeze bool) error {
	if c.rt.isolation == IsolationRootless {
		return fmt.Errorf("pause needs the container's own cgroup (its freezer), and %s: run kiln as root (--isolation=oci) to pause containers", rootlessNoCgroups())
	}
	return c.runner.freeze(ctx, c.id, freeze)
}

// Update sets the running container's cgroup limits to r; a zero limit lifts that limit.
func (c *Container) Update(ctx context.Context, r Resources) error {
	if c.rt.isolation == IsolationRootless {
		return fmt.Errorf("update sets cgroup limits, and %s: run kiln as root (--isolation=oci) for limits", rootlessNoCgroups())
	}
	res := resources(r)
	res.Devices = nil      // unchanged: update is about limits
	unlimited := int64(-1) // the OCI spec's "max"; an absent field would mean "unchanged"
	if res.Memory == nil {
		res.Memory = &specs.LinuxMemory{Limit: &unlimited, Swap: &unlimited}
	}
	if res.CPU == nil || res.CPU.Quota == nil {
		if res.CPU == nil {
			res.CPU = &specs.LinuxCPU{}
		}
		res.CPU.Quota = &unlimited
	}
	if res.Pids == nil {
		res.Pids = &specs.LinuxPids{Limit: &unlimited}
	}
	return c.runner.update(ctx, c.bundle, c.id, res)
}
