package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gofrs/flock"

	"github.com/kiln-build/kiln/runtime"
)

// Streams are where a supervised container's stdio goes besides its log (a foreground run's
// terminal); nil fields go to the log alone (stdin: /dev/null).
type Streams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Started, when set, is called once the first start is recorded (running, or exited).
	Started func()
	// Detached says the monitor owns the container's stdio (the streams above are nil): a pty of
	// its own with -t, a stdin pipe kept open with -i, so `kiln attach` clients can come and go.
	Detached bool
	// HoldForAttach makes the first start wait until an attach client has joined (or
	// holdTimeout passed), telling Started once it listens: kiln start -ai sees the output of a
	// container that exits at once, and its input is taken from the first byte.
	HoldForAttach bool
}

// holdTimeout bounds a held start: a spawner that died before attaching does not keep the
// container from starting.
const holdTimeout = 5 * time.Second

// Restart backoff: docker's 100 ms doubling, capped lower so a crash loop stays observable.
const (
	restartDelay    = 100 * time.Millisecond
	maxRestartDelay = 10 * time.Second
)

// Supervise runs the container with rt, restarting it as its policy says, until it stays exited;
// cancelling ctx stops it (see Stop). It records every step in state.json and returns the last
// exit code. It is the body of the detached monitor (`kiln __monitor`) and of a foreground run.
func (s *Store) Supervise(ctx context.Context, rt *runtime.Runtime, c *Container, io Streams) (int, error) {
	lock := flock.New(filepath.Join(c.dir, monitorLock), flock.SetPermissions(0o600))
	locked, err := lock.TryLock()
	if err != nil || !locked {
		return -1, fmt.Errorf("container %s already has a monitor: %v", c.ShortID(), err)
	}
	defer lock.Unlock() //nolint:errcheck // exiting releases it too
	// A killed `kiln cp` into the stopped container may have left its upper dir mounted: two
	// overlays over one upper dir are undefined behaviour.
	if _, err := unmountAbandonedViews(c.dir); err != nil {
		return -1, fmt.Errorf("container %s: %w", c.ShortID(), err)
	}
	logs, err := OpenLog(c.LogPath(), 0, 0)
	if err != nil {
		return -1, err
	}
	defer logs.Close()
	m := &monitor{rt: rt, c: c, logs: logs, io: io, reqs: make(chan controlReq), closed: make(chan struct{}), hub: newHub()}
	if io.Detached && c.OpenStdin && !c.Spec.Terminal {
		r, w, err := os.Pipe() // one for the monitor's life: the container's stdin stays open, as docker's
		if err != nil {
			return -1, fmt.Errorf("container %s: stdin pipe: %w", c.ShortID(), err)
		}
		defer r.Close()
		defer w.Close()
		m.stdin, m.stdinW = r, w
	}
	m.state = State{Status: StatusCreated, MonitorPid: os.Getpid(), MonitorStart: procStart(os.Getpid())}
	l, err := m.listen()
	if err != nil {
		return -1, err
	}
	go m.serve(l, m.reqs)
	defer func() {
		close(m.closed)
		m.closeControl(l)
		m.hub.closeAll()
		for _, req := range m.pending {
			req.answer <- nil // the exit is recorded: the stop is done
			<-req.written     // before this process may exit
		}
	}()
	return m.loop(ctx)
}

// monitor is one Supervise call: it alone writes the container's state.
type monitor struct {
	rt    *runtime.Runtime
	c     *Container
	logs  *LogWriter
	io    Streams
	state State

	reqs     chan controlReq // from the control socket
	closed   chan struct{}   // closed when the monitor no longer reads reqs
	userStop bool            // a user stopped the container: no restart policy applies
	pending  []controlReq    // stop requests, answered once the exit is recorded

	health     <-chan Health      // the running checks' new values; nil without checks
	stopHealth context.CancelFunc // ends the running checks; nil without checks
	pause      pauseWatch         // state.Paused as the checks' goroutine may read it

	hub           *hub     // the attach clients
	stdin, stdinW *os.File // a detached -i container's stdin pipe (without -t); nil otherwise
}

func (m *monitor) loop(ctx context.Context) (int, error) {
	if m.io.HoldForAttach && !m.holdForClient(ctx) {
		return 0, nil // stopped before it ran: it stays created
	}
	delay := restartDelay
	for {
		code, runErr := m.runOnce(ctx)
		stopped := ctx.Err() != nil || m.userStop
		m.state.ExitCode, m.state.FinishedAt, m.state.Pid = code, time.Now().UTC(), 0
		if runErr != nil && !stopped {
			m.state.Error = runErr.Error()
		}
		restart := runErr == nil && m.c.Restart.shouldRestart(code, m.state.RestartCount, stopped)
		m.state.Status = StatusExited
		if restart {
			m.state.Status = StatusRestarting
		}
		err := writeState(m.c.dir, m.state, m.c.AutoRemove)
		m.reportStarted()
		m.hub.exited(code) // after the write: a client that exits with the code finds it recorded
		if err != nil || !restart {
			return code, errors.Join(m.state.runError(runErr, stopped), err)
		}
		if ran := m.state.FinishedAt.Sub(m.state.StartedAt); ran > 10*time.Second {
			delay = restartDelay // it ran a while: not a crash loop
		}
		if m.waitRestart(ctx, delay) {
			m.state.Status = StatusExited
			return code, writeState(m.c.dir, m.state, m.c.AutoRemove)
		}
		delay = min(2*delay, maxRestartDelay)
		m.state.RestartCount++
	}
}

// holdForClient opens the hub before the first run and waits for a client; false means the
// monitor was told to end meanwhile.
func (m *monitor) holdForClient(ctx context.Context) bool {
	var input io.Writer
	if m.stdinW != nil {
		input = m.stdinW // early input waits in the pipe for the container
	}
	joined := m.hub.hold(input)
	m.reportStarted() // the spawner may attach now
	timer := time.NewTimer(holdTimeout)
	defer timer.Stop()
	for {
		select {
		case <-joined:
			return true
		case <-timer.C:
			return true
		case <-ctx.Done():
			return false
		case req := <-m.reqs:
			req.answer <- fmt.Errorf("container %s is starting: retry in a moment", m.c.ShortID())
		}
	}
}

// reportStarted tells Streams.Started of the first recorded start, once.
func (m *monitor) reportStarted() {
	if f := m.io.Started; f != nil {
		m.io.Started = nil
		f()
	}
}

// waitRestart waits out the restart delay; true means the container was stopped meanwhile.
func (m *monitor) waitRestart(ctx context.Context, delay time.Duration) bool {
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return true
		case <-timer.C:
			return false
		case req := <-m.reqs:
			switch req.Op {
			case "stop":
				m.userStop, m.pending = true, append(m.pending, req)
				return true
			case "update": // for the next run
				req.answer <- m.update(ctx, nil, req.request)
				continue
			}
			req.answer <- fmt.Errorf("container %s is restarting, not running", m.c.ShortID())
		}
	}
}

// runError is the error Supervise reports: kiln's failures, not a stop the user asked for.
func (s State) runError(runErr error, stopped bool) error {
	if stopped {
		return nil
	}
	return runErr
}

// runOnce runs the container once, records it running with its pid, and turns a stop request
// into the stop signal, then SIGKILL after the timeout.
func (m *monitor) runOnce(ctx context.Context) (int, error) {
	m.state.StartedAt = time.Now().UTC()
	out, errw := m.logs.Stream("stdout"), m.logs.Stream("stderr")
	defer out.Close()
	defer errw.Close()
	spec := m.c.Spec
	spec.Stdin, spec.Stdout, spec.Stderr = m.io.Stdin, tee(out, m.io.Stdout), tee(errw, m.io.Stderr)
	var input io.Writer
	if m.io.Detached {
		spec.Stdout, spec.Stderr = io.MultiWriter(out, m.hub.writer(frameStdout)), io.MultiWriter(errw, m.hub.writer(frameStderr))
		if m.stdin != nil {
			spec.Stdin, input = m.stdin, m.stdinW
		}
	} else if !spec.Terminal {
		// A foreground run's terminal holds its input; attach clients see its output.
		spec.Stdout, spec.Stderr = tee(spec.Stdout, m.hub.writer(frameStdout)), tee(spec.Stderr, m.hub.writer(frameStderr))
	}
	var term *ownTerminal
	if m.io.Detached && spec.Terminal {
		var err error
		if term, err = m.openTerminal(&spec, out); err != nil {
			return exitKilnFailure, err
		}
		defer term.close()
		input = term.master
	}
	// The container's lifetime is the monitor's to end (stop signal, timeout, SIGKILL), not a context's.
	ctr, err := m.rt.Start(context.WithoutCancel(ctx), spec)
	if term != nil {
		term.started()
	}
	if err != nil {
		return exitKilnFailure, err
	}
	if term != nil {
		m.hub.started(term.master, input)
		defer term.drain()
	} else {
		m.hub.started(nil, input)
	}
	// Recorded once the container exists, with its pid: one write, not two.
	m.state.Status, m.state.Error, m.state.Pid = StatusRunning, "", 0
	m.state.Health = healthAtStart(m.c.Healthcheck, m.state.Health)
	if st, err := ctr.State(ctx); err == nil {
		m.state.Pid = st.Pid
	}
	err = writeState(m.c.dir, m.state, m.c.AutoRemove)
	if m.state.Pid > 0 {
		m.reportStarted() // else it exited at once: reported with its exit
	}
	if err != nil {
		ctr.Kill(ctx, syscall.SIGKILL)       //nolint:errcheck // unrecorded, it must not run on
		ctr.Wait(context.WithoutCancel(ctx)) //nolint:errcheck // its end is this error's
		return exitKilnFailure, err
	}
	defer m.startHealth(ctx, ctr)()
	done := make(chan runResult, 1)
	go func() {
		code, err := ctr.Wait(context.WithoutCancel(ctx))
		done <- runResult{int(code), err}
	}()
	res := m.wait(ctx, ctr, done)
	var ce *runtime.CommandError
	if errors.As(res.err, &ce) {
		return int(ce.Status), res.err // docker's 127/126, and why
	}
	if res.err != nil {
		return exitKilnFailure, res.err
	}
	return res.code, nil
}

// wait waits for the run to end, serving control requests meanwhile; a SIGTERM of the
// monitor (ctx) stops the container with the default grace period, as Ctrl-C always did.
func (m *monitor) wait(ctx context.Context, ctr *runtime.Container, done <-chan runResult) runResult {
	for {
		select {
		case res := <-done:
			m.state.Paused = false // the container ended: nothing is frozen
			m.pause.set(false)
			return res
		case <-ctx.Done():
			m.endHealth()
			return m.stop(ctr, done, runtime.DefaultStopGrace)
		case h := <-m.health:
			m.state.Health = &h
			// A failed write shows at the exit's write, which kiln reports; the checks go on.
			_ = writeState(m.c.dir, m.state, m.c.AutoRemove)
		case req := <-m.reqs:
			switch sig := syscall.Signal(req.Signal); req.Op {
			case "stop":
				m.userStop, m.pending = true, append(m.pending, req)
				m.endHealth()
				return m.stop(ctr, done, max(req.Timeout, 0))
			case "kill":
				if sig == syscall.SIGKILL || sig == m.c.stopSignal() {
					m.userStop = true
				}
				req.answer <- errors.Join(ctr.Kill(ctx, sig), m.thaw(ctr))
			case "pause", "unpause":
				req.answer <- m.freeze(ctx, ctr, req.Op == "pause")
			case "update":
				req.answer <- m.update(ctx, ctr, req.request)
			default:
				req.answer <- fmt.Errorf("unknown request %q", req.Op)
			}
		}
	}
}

// attachRefusal says why attach clients cannot join this monitor; nil when they can.
func (m *monitor) attachRefusal() error {
	if !m.io.Detached && m.c.Spec.Terminal {
		return fmt.Errorf("container %s runs in the foreground of the kiln that started it, which holds its terminal: attach works with containers run with -d or started with kiln start", m.c.ShortID())
	}
	return nil
}

// exitKilnFailure is docker's code for a container kiln itself could not run.
const exitKilnFailure = 125

type runResult struct {
	code int
	err  error
}

// tee sends a stream to the log and, when given, to a terminal too.
func tee(log io.Writer, extra io.Writer) io.Writer {
	if extra == nil {
		return log
	}
	return io.MultiWriter(log, extra)
}
