package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// checkChroot refuses what the chroot rung cannot give a process, naming why, rather than
// running it without: every mount, other network namespaces, cgroup limits and a pty.
func checkChroot(s Spec) error {
	const need = "; use a host that allows mounts (--isolation=oci as root, or rootless)"
	switch {
	case s.Rootfs == "":
		return fmt.Errorf("container %s: chroot isolation needs a materialized rootfs directory", s.ID)
	case len(s.Mounts) > 0 || len(s.Files) > 0:
		return fmt.Errorf("chroot isolation cannot mount anything (RUN --mount, secrets, volumes)%s", need)
	case s.Network != NetworkHost:
		return fmt.Errorf("chroot isolation has no network namespaces: only the host network works (RUN --network=host or default)%s", need)
	case s.Resources != Resources{}:
		return fmt.Errorf("chroot isolation has no cgroups for --memory, --cpus and --pids-limit%s", need)
	case s.Terminal:
		return fmt.Errorf("chroot isolation has no pty for --tty%s", need)
	case s.ReadOnlyRootfs:
		return fmt.Errorf("chroot isolation cannot make the rootfs read-only%s", need)
	}
	return nil
}

// runChroot runs s with the chroot rung: a re-executed kiln child chroots into s.Rootfs, drops
// to docker's default capabilities (none for a non-root user), sets no_new_privs and docker's
// seccomp profile where this host lets it install one, and executes the command. Nothing is
// mounted and no namespace is made: the process shares kiln's pid, network, ipc and uts.
func (rt *Runtime) runChroot(ctx context.Context, s Spec) (ExitStatus, error) {
	if err := checkSpec(s); err != nil {
		return -1, err
	}
	if err := checkChroot(s); err != nil {
		return -1, err
	}
	proc, err := process(s, s.Rootfs)
	if err != nil {
		return -1, err
	}
	// Always no_new_privs here, whatever the spec asks: with no namespaces around the step, a setuid
	// binary would gain privileges on the host itself, and the seccomp filter below can only be
	// installed without CAP_SYS_ADMIN under no_new_privs.
	proc.NoNewPrivileges = true
	cfg := chrootConfig{Rootfs: s.Rootfs, Process: proc}
	if rt.probe.Seccomp == "" {
		sc, err := seccompConfig(s, &specs.Spec{Process: proc})
		if err != nil {
			return -1, err
		}
		if sc != nil {
			if cfg.Seccomp, err = compileSeccomp(sc); err != nil {
				return -1, err
			}
		}
	}
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return -1, err
	}
	defer cfgR.Close()
	defer cfgW.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		return -1, err
	}
	defer errR.Close()
	defer errW.Close()
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = []string{chrootEnv + "=exec"}
	cmd.Dir = "/"
	cmd.Stdin = s.Stdin
	out, err := startOutput(cmd, s.Stdout, s.Stderr)
	if err != nil {
		return -1, err
	}
	cmd.ExtraFiles = []*os.File{cfgR, errW} // fds 3 and 4; nothing else of kiln's is inherited
	// Its own process group, so that stopping it reaches what it started; it dies with kiln.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.finish()
		return -1, fmt.Errorf("start chroot child: %w", err)
	}
	cfgR.Close()
	errW.Close()
	out.started()
	fmt.Fprintf(rt.debug, "chroot: %s runs as pid %d in %s\n", s.ID, cmd.Process.Pid, s.Rootfs)
	werr := json.NewEncoder(cfgW).Encode(cfg)
	cfgW.Close()
	grace := s.StopGrace
	if grace <= 0 {
		grace = DefaultStopGrace
	}
	stop := context.AfterFunc(ctx, func() {
		unix.Kill(-cmd.Process.Pid, unix.SIGTERM)                                   //nolint:errcheck // it may have exited
		time.AfterFunc(grace, func() { unix.Kill(-cmd.Process.Pid, unix.SIGKILL) }) //nolint:errcheck // likewise
	})
	defer stop()
	msg, _ := io.ReadAll(io.LimitReader(errR, 64<<10)) // EOF at the exec (close-on-exec) or the exit
	err = cmd.Wait()
	// What the command left running in its group goes with it, as a pid namespace's would.
	unix.Kill(-cmd.Process.Pid, unix.SIGKILL) //nolint:errcheck // usually nothing is left
	out.finish()
	if ctx.Err() != nil {
		return exitCode(err), fmt.Errorf("container %s stopped: %w", s.ID, context.Cause(ctx))
	}
	if len(msg) > 0 {
		return chrootStartStatus(s.ID, string(msg))
	}
	if werr != nil && err == nil {
		return -1, fmt.Errorf("container %s: send chroot config: %w", s.ID, werr)
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return -1, fmt.Errorf("container %s: %w", s.ID, err)
	}
	return exitCode(err), nil
}

// chrootStartStatus maps the child's failure to exec onto docker's 127 and 126, as exitStatus
// does for the OCI runtimes' messages.
func chrootStartStatus(id, msg string) (ExitStatus, error) {
	if strings.HasPrefix(msg, "exec: ") {
		switch m := strings.ToLower(msg); {
		case strings.Contains(m, "not found") || strings.Contains(m, "no such file"):
			return 127, &CommandError{Status: 127, Msg: msg}
		case strings.Contains(m, "permission denied") || strings.Contains(m, "exec format error"):
			return 126, &CommandError{Status: 126, Msg: msg}
		}
	}
	return -1, fmt.Errorf("container %s: chroot: %s", id, msg)
}

// exitCode is a finished process's status, 128+n after signal n.
func exitCode(err error) ExitStatus {
	var exit *exec.ExitError
	if err == nil {
		return 0
	}
	if !errors.As(err, &exit) {
		return -1
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + ExitStatus(ws.Signal())
	}
	return ExitStatus(exit.ExitCode())
}

// output copies the child's stdout and stderr through pipes kiln holds, so that the end of the
// command, not of everything it left holding the pipe, ends the wait.
type output struct {
	files  []*os.File // the write ends, closed in kiln once the child has them
	copies chan struct{}
	n      int
	reads  []*os.File
}

func startOutput(cmd *exec.Cmd, stdout, stderr io.Writer) (*output, error) {
	o := &output{copies: make(chan struct{}, 2)}
	attach := func(w io.Writer) (io.Writer, error) {
		if w == nil {
			return nil, nil // /dev/null
		}
		r, pw, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		o.files, o.reads = append(o.files, pw), append(o.reads, r)
		o.n++
		go func() {
			io.Copy(w, r) //nolint:errcheck // the writer's failure is the caller's to see
			o.copies <- struct{}{}
		}()
		return pw, nil
	}
	var err error
	if cmd.Stdout, err = attach(stdout); err != nil {
		o.finish()
		return nil, err
	}
	if stderr == stdout {
		cmd.Stderr = cmd.Stdout
	} else if cmd.Stderr, err = attach(stderr); err != nil {
		o.finish()
		return nil, err
	}
	return o, nil
}

// started closes kiln's copies of the write ends.
func (o *output) started() {
	for _, f := range o.files {
		f.Close()
	}
	o.files = nil
}

// finish waits briefly for the copies to drain (a process that left the group may hold a pipe).
func (o *output) finish() {
	o.started()
	deadline := time.After(time.Second)
	for range o.n {
		select {
		case <-o.copies:
		case <-deadline:
			for _, r := range o.reads {
				r.Close()
			}
			return
		}
	}
	for _, r := range o.reads {
		r.Close()
	}
}

// ErrChrootNoContainers is Start's answer under chroot isolation: a container that outlives the
// call (kiln run, -d, exec) needs its own namespaces; RUN steps go through Run.
var ErrChrootNoContainers = errors.New("containers (kiln run, create, start, exec) need namespaces and mounts, which chroot isolation does not have: run them where --isolation=oci or rootless works; kiln build works here")
