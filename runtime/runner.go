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
)

// Stdio is the container process's standard streams; nil means /dev/null.
type Stdio struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Terminal keeps the runtime in kiln's process group, so it may read a controlling terminal.
	Terminal bool
}

// Runner runs OCI bundles; the one implementation drives crun/runc binaries, and another
// backend (a library, a shim) can be added without touching callers.
type Runner interface {
	// Name identifies the backend in notes and cache keys, e.g. "runc 1.1.5".
	Name() string
	// Run creates and starts container id from bundle and waits for its process to exit. It returns
	// the process's exit code; a *StartError when the runtime could not start the process.
	Run(bundle, id string, stdio Stdio) (int, error)
	// Kill sends sig to the container's processes.
	Kill(ctx context.Context, id string, sig syscall.Signal) error
	// Delete removes the container's state and cgroups, killing what is left.
	Delete(ctx context.Context, id string) error
	// List returns the ids of containers the runtime knows in its state root.
	List(ctx context.Context) ([]string, error)
}

// StartError is a runtime's own failure to start the container process, with its message.
type StartError struct{ Msg string }

func (e *StartError) Error() string { return e.Msg }

// ociRunner drives an OCI runtime binary with kiln's own state root.
type ociRunner struct {
	path    string // runtime binary
	name    string // e.g. "runc 1.1.5"
	root    string // --root: kiln's state dir for this runtime, never the system default
	logFlag func(file string) []string
}

// newOCIRunner prepares a runner for the binary at path with state under root.
func newOCIRunner(path, version, root string) *ociRunner {
	r := &ociRunner{path: path, name: filepath.Base(path) + " " + version, root: root}
	r.logFlag = func(f string) []string { return []string{"--log", f, "--log-format", "json"} }
	if strings.HasPrefix(filepath.Base(path), "crun") {
		r.logFlag = func(f string) []string { return []string{"--log=file:" + f, "--log-format=json"} }
	}
	return r
}

func (r *ociRunner) Name() string { return r.name }

// command builds an exec.Cmd for the runtime: only stdio reaches it, since Go opens every other
// descriptor close-on-exec and ExtraFiles stays empty (no leaked fds, CVE-2024-21626).
func (r *ociRunner) command(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, r.path, append([]string{"--root", r.root}, args...)...)
}

func (r *ociRunner) Run(bundle, id string, stdio Stdio) (int, error) {
	logFile := filepath.Join(bundle, "runtime.log")
	os.Remove(logFile)
	args := append([]string{"--root", r.root}, r.logFlag(logFile)...)
	cmd := exec.Command(r.path, append(args, "run", "--bundle", bundle, id)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.Stdin, stdio.Stdout, stdio.Stderr
	// Own process group: a terminal's Ctrl-C reaches kiln, which decides how to stop the container.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: !stdio.Terminal}
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return -1, fmt.Errorf("start %s: %w", r.name, err)
	}
	code := cmd.ProcessState.ExitCode()
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

func (r *ociRunner) Kill(ctx context.Context, id string, sig syscall.Signal) error {
	out, err := r.command(ctx, "kill", id, fmt.Sprint(int(sig))).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s kill %s: %w: %s", r.name, id, err, bytes.TrimSpace(out))
	}
	return nil
}

func (r *ociRunner) Delete(ctx context.Context, id string) error {
	out, err := r.command(ctx, "delete", "--force", id).CombinedOutput()
	if err != nil && !bytes.Contains(out, []byte("does not exist")) && !bytes.Contains(out, []byte("not exist")) {
		return fmt.Errorf("%s delete %s: %w: %s", r.name, id, err, bytes.TrimSpace(out))
	}
	return nil
}

func (r *ociRunner) List(ctx context.Context) ([]string, error) {
	out, err := r.command(ctx, "list", "-q").Output()
	if err != nil {
		return nil, fmt.Errorf("%s list: %w", r.name, err)
	}
	return strings.Fields(string(out)), nil
}
