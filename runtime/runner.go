package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// stdio is the container process's standard streams; nil means /dev/null.
type stdio struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Terminal keeps the runtime in kiln's process group, so it may read a controlling terminal.
	Terminal bool
}

// StartError is a runtime's own failure to start the container process, with its message.
type StartError struct{ Msg string }

func (e *StartError) Error() string { return e.Msg }

// CommandError is the runtime's failure to execute the container's command itself (not found,
// not executable): the container's status is docker's 127 or 126, and Msg says why, in the
// runtime's words, which kiln then prints once as its own error.
type CommandError struct {
	Status ExitStatus
	Msg    string
}

func (e *CommandError) Error() string { return e.Msg }

// ociRunner drives an OCI runtime binary (crun or runc) with kiln's own state root. Another
// backend (rootless, chroot) would sit beside it behind Runtime.
type ociRunner struct {
	path    string // runtime binary
	name    string // e.g. "runc 1.1.5"
	root    string // --root: kiln's state dir for this runtime, never the system default
	logFlag func(file string) []string
}

// newOCIRunner prepares a runner for the binary at path with state under root.
func newOCIRunner(path, version, root string) *ociRunner {
	r := &ociRunner{path: path, name: strings.TrimSpace(filepath.Base(path) + " " + version), root: root}
	r.logFlag = func(f string) []string { return []string{"--log", f, "--log-format", "json"} }
	if strings.HasPrefix(filepath.Base(path), "crun") {
		r.logFlag = func(f string) []string { return []string{"--log=file:" + f, "--log-format=json"} }
	}
	return r
}

// command builds an exec.Cmd for the runtime: only stdio reaches it, since Go opens every other
// descriptor close-on-exec and ExtraFiles stays empty (no leaked fds, CVE-2024-21626).
func (r *ociRunner) command(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, r.path, append([]string{"--root", r.root}, args...)...)
}

// runCmd is `<runtime> run` of container id from bundle, writing the init's pid to pidFile
// ("" = none) once the container exists; the caller starts and waits for it.
func (r *ociRunner) runCmd(bundle, id, pidFile string, io stdio) (*exec.Cmd, string, *ownLines) {
	logFile := filepath.Join(bundle, "runtime.log")
	os.Remove(logFile)
	args := append([]string{"--root", r.root}, r.logFlag(logFile)...)
	args = append(args, "run", "--bundle", bundle)
	if pidFile != "" {
		args = append(args, "--pid-file", pidFile)
	}
	held := r.filterStderr(&io)
	cmd := exec.Command(r.path, append(args, id)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = io.Stdin, io.Stdout, io.Stderr
	// Own process group: a terminal's Ctrl-C reaches kiln, which decides how to stop the container.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: !io.Terminal}
	if io.Terminal && unclaimedTerminal(io.Stdin) {
		// A pty no session owns (a detached monitor's): the runtime takes it as its controlling
		// terminal, so resizing the pty sends it SIGWINCH, which it passes on to the container's.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	}
	return cmd, logFile, held
}

// unclaimedTerminal reports whether r is a terminal that is no session's controlling terminal.
func unclaimedTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err != nil {
		return false
	}
	_, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGSID)
	return errors.Is(err, unix.ENOTTY)
}

// run runs the container to its end (the probe's way); cancelling ctx kills the runtime.
func (r *ociRunner) run(ctx context.Context, bundle, id string, io stdio) (int, error) {
	cmd, logFile, held := r.runCmd(bundle, id, "", io)
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("%s: %w", r.name, err)
	}
	stop := context.AfterFunc(ctx, func() { cmd.Process.Kill() }) //nolint:errcheck // it may have exited
	defer stop()
	return r.result(cmd.Wait(), cmd, logFile, held)
}

// result turns the end of a runtime process into the container's exit code; a *StartError
// when the runtime could not start the process. It also settles the runtime's own stderr lines:
// cmd has been waited for, so its stderr copy is done.
func (r *ociRunner) result(err error, cmd *exec.Cmd, logFile string, held *ownLines) (code int, rerr error) {
	defer func() {
		var se *StartError
		held.finish(errors.As(rerr, &se))
	}()
	var exit *exec.ExitError
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil // it exited 0; only something it left behind still held its output
	}
	if err != nil && !errors.As(err, &exit) {
		return -1, fmt.Errorf("%s: %w", r.name, err)
	}
	code = cmd.ProcessState.ExitCode()
	if code == -1 { // the runtime itself died of a signal
		return -1, fmt.Errorf("%s: %s", r.name, cmd.ProcessState)
	}
	if code != 0 {
		if msg := runtimeError(logFile); msg != "" {
			return code, &StartError{Msg: msg}
		}
	}
	return code, nil
}

// runtimeError returns the runtime's error-level log messages, empty when it logged none.
func runtimeError(logFile string) string {
	data, err := os.ReadFile(logFile)
	if err != nil {
		return ""
	}
	var msgs []string
	for _, line := range bytes.Split(data, []byte("\n")) {
		var e struct{ Level, Msg string }
		if json.Unmarshal(line, &e) == nil && (e.Level == "error" || e.Level == "fatal") && e.Msg != "" {
			msgs = append(msgs, e.Msg)
		}
	}
	return strings.Join(msgs, "; ")
}

func (r *ociRunner) kill(ctx context.Context, id string, sig syscall.Signal) error {
	out, err := r.command(ctx, "kill", id, fmt.Sprint(int(sig))).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s kill %s: %w: %s", r.name, id, err, bytes.TrimSpace(out))
	}
	return nil
}

func (r *ociRunner) delete(ctx context.Context, id string) error {
	out, err := r.command(ctx, "delete", "--force", id).CombinedOutput()
	if err != nil && !bytes.Contains(out, []byte("does not exist")) && !bytes.Contains(out, []byte("not exist")) {
		return fmt.Errorf("%s delete %s: %w: %s", r.name, id, err, bytes.TrimSpace(out))
	}
	return nil
}

func (r *ociRunner) list(ctx context.Context) ([]string, error) {
	out, err := r.command(ctx, "list", "-q").Output()
	if err != nil {
		return nil, fmt.Errorf("%s list: %w", r.name, err)
	}
	return strings.Fields(string(out)), nil
}

// freeze is `<runtime> pause` (freeze true) or `resume` of container id: the cgroup freezer.
func (r *ociRunner) freeze(ctx context.Context, id string, freeze bool) error {
	verb := "resume"
	if freeze {
		verb = "pause"
	}
	out, err := r.command(ctx, verb, id).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s %s: %w: %s", r.name, verb, id, err, bytes.TrimSpace(out))
	}
	return nil
}

// update is `<runtime> update -r FILE`: new cgroup limits for a running container. The
// resources go through a file in the bundle: crun and runc both read one.
func (r *ociRunner) update(ctx context.Context, bundle, id string, res *specs.LinuxResources) error {
	data, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("update %s: %w", id, err)
	}
	file := filepath.Join(bundle, "update.json")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return fmt.Errorf("update %s: %w", id, err)
	}
	defer os.Remove(file)
	out, err := r.command(ctx, "update", "-r", file, id).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s update %s: %w: %s", r.name, id, err, bytes.TrimSpace(out))
	}
	return nil
}
