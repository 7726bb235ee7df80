package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ExecSpec describes an extra process started in a running container (`kiln exec`); it shares
// the container's namespaces, cgroup, capabilities, seccomp filter and no_new_privs setting.
type ExecSpec struct {
	Args []string // argv; Args[0] is looked up in PATH inside the container
	Env  []string // KEY=value added to (and overriding) the container's environment
	User string   // "" = the container's user; else resolved in the container's /etc/passwd and /etc/group
	Cwd  string   // absolute working directory; "" = the container's

	Terminal bool      // attach the process to a pty
	Stdin    io.Reader // nil = /dev/null
	Stdout   io.Writer // nil = discarded
	Stderr   io.Writer // nil = discarded

	StopGrace time.Duration // how long a cancelled exec gets after SIGTERM before SIGKILL; 0 = DefaultStopGrace
}

// Exec runs p in the running container and returns its exit status, mapped like Run's (127 not
// found, 126 not executable, 128+n after signal n). A container that is not running yields a
// *NotRunningError. Cancelling ctx stops the process.
func (c *Container) Exec(ctx context.Context, p ExecSpec) (ExitStatus, error) {
	id := c.id
	if len(p.Args) == 0 {
		return -1, fmt.Errorf("exec in %s: no command given", id)
	}
	if p.Cwd != "" && !path.IsAbs(p.Cwd) {
		return -1, fmt.Errorf("working directory %q: must be an absolute path", p.Cwd)
	}
	proc, err := execProcessSpec(c.bundle, p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && c.notRunning(ctx) {
			return -1, &NotRunningError{ID: id} // it ended and its bundle went with it
		}
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	file, cleanup, err := writeProcessFile(c.bundle, proc)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	defer cleanup()
	grace := p.StopGrace
	if grace <= 0 {
		grace = DefaultStopGrace
	}
	sio := stdio{Stdin: p.Stdin, Stdout: p.Stdout, Stderr: p.Stderr, Terminal: p.Terminal}
	code, err := c.runner.execProcess(ctx, id, file, grace, sio)
	if ctx.Err() != nil {
		return ExitStatus(code), fmt.Errorf("exec in %s stopped: %w", id, context.Cause(ctx))
	}
	// Whether it runs is asked only when the exec failed: a warm exec starts one runtime
	// process, not a state query first. A Load'ed handle's owner was alive a moment ago.
	if err != nil && c.notRunning(ctx) {
		return -1, &NotRunningError{ID: id}
	}
	return exitStatus(runResult{code, err}, id)
}

// notRunning asks the runtime whether the container has stopped (or is paused).
func (c *Container) notRunning(ctx context.Context) bool {
	st, err := c.State(ctx)
	return err == nil && st.Status != StatusRunning || errors.Is(err, ErrNotRunning)
}

// execProcessSpec starts from the container's own process (capabilities, rlimits, no_new_privs,
// environment) and applies p: docker exec's rules.
func execProcessSpec(bundle string, p ExecSpec) (*specs.Process, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("read container config: %w", err)
	}
	var cfg specs.Spec
	if err := json.Unmarshal(data, &cfg); err != nil || cfg.Process == nil {
		return nil, fmt.Errorf("decode container config: %w", errors.Join(err, errors.New("no process")))
	}
	proc := *cfg.Process
	proc.Args, proc.Terminal, proc.ConsoleSize = p.Args, p.Terminal, nil
	env := proc.Env
	home := envValue(env, "HOME")
	if p.User != "" {
		u, err := resolveUser(filepath.Join(bundle, "rootfs"), p.User)
		if err != nil {
			return nil, fmt.Errorf("user %q: %w", p.User, err)
		}
		proc.User, home = u.User, u.Home
		env = withoutKeys(env, "HOME") // the container's HOME belongs to its own user
	}
	env = withoutKeys(env, "TERM") // set again below for a terminal
	proc.Env = processEnv(mergeEnvs(env, p.Env), home, p.Terminal)
	if p.Cwd != "" {
		proc.Cwd = p.Cwd
	}
	return &proc, nil
}

// writeProcessFile writes process.json for the runtime next to the container's config.
func writeProcessFile(bundle string, proc *specs.Process) (string, func(), error) {
	data, err := json.Marshal(proc)
	if err != nil {
		return "", nil, fmt.Errorf("encode process.json: %w", err)
	}
	dir, err := os.MkdirTemp(bundle, "exec-")
	if err != nil {
		return "", nil, fmt.Errorf("create exec dir: %w", err)
	}
	file := filepath.Join(dir, "process.json")
	if err := writeRunFile(file, data); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return file, func() { os.RemoveAll(dir) }, nil
}

// mergeEnvs returns base with over's variables replacing those of the same name.
func mergeEnvs(base, over []string) []string {
	keys := make([]string, 0, len(over))
	for _, e := range over {
		k, _, _ := strings.Cut(e, "=")
		keys = append(keys, k)
	}
	return append(withoutKeys(base, keys...), over...)
}

func withoutKeys(env []string, keys ...string) []string {
	out := make([]string, 0, len(env))
next:
	for _, e := range env {
		k, _, _ := strings.Cut(e, "=")
		for _, drop := range keys {
			if k == drop {
				continue next
			}
		}
		out = append(out, e)
	}
	return out
}

func envValue(env []string, key string) string {
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, key+"="); ok {
			return v
		}
	}
	return ""
}
