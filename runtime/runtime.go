package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// Options configure a Runtime.
type Options struct {
	StateDir  string    // runtime state root (owner records, runtime --root, probes); "" = DefaultStateDir, or RootlessStateDir when rootless
	Isolation Isolation // "" = auto: the strongest rung that works (see Isolation.Resolve)
	Runtime   string    // OCI runtime: "" = auto (crun when it works on this host, else runc), "crun", "runc" or a path
	Debug     io.Writer // receives notes on runtime choice and cleanup; nil = silent
}

// Runtime runs containers with one OCI runtime under one state dir; make one per process with New.
type Runtime struct {
	stateDir, want string
	isolation      Isolation      // resolved: oci, rootless or chroot
	probe          isolationProbe // what this host allows a root kiln (zero when rootless)
	debug          io.Writer

	mu     sync.Mutex
	runner *ociRunner // picked on first use; probes and versions come from the on-disk cache
}

// New returns a Runtime for o. It runs nothing: the OCI runtime is chosen when first needed.
func New(o Options) (*Runtime, error) {
	iso, probe, err := o.Isolation.resolve()
	if err != nil {
		return nil, err
	}
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir
		if iso == IsolationRootless {
			if o.StateDir, err = RootlessStateDir(hostUID()); err != nil {
				return nil, err
			}
		}
	}
	if !filepath.IsAbs(o.StateDir) {
		abs, err := filepath.Abs(o.StateDir)
		if err != nil {
			return nil, fmt.Errorf("runtime state dir %s: %w", o.StateDir, err)
		}
		o.StateDir = abs
	}
	rt := &Runtime{stateDir: o.StateDir, want: o.Runtime, isolation: iso, probe: probe, debug: orDiscard(o.Debug)}
	fmt.Fprintf(rt.debug, "isolation: %s, asked for %s\n", rt.Describe(), orAuto(o.Isolation))
	return rt, nil
}

// Isolation is the rung this Runtime runs containers with: IsolationOCI, IsolationRootless or
// IsolationChroot.
func (rt *Runtime) Isolation() Isolation { return rt.isolation }

// Describe names the rung and, for chroot, why it is the one and what it lacks here, as in
// "chroot (no namespaces or mounts here)"; for progress headers and --debug.
func (rt *Runtime) Describe() string {
	if rt.isolation != IsolationChroot {
		return string(rt.isolation)
	}
	return fmt.Sprintf("%s (%s)", rt.isolation, rt.probe.why())
}

func orAuto(i Isolation) Isolation {
	if i == "" {
		return IsolationAuto
	}
	return i
}

// pick returns the OCI runtime, choosing it once per Runtime.
func (rt *Runtime) pick(ctx context.Context) (*ociRunner, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.runner != nil {
		return rt.runner, nil
	}
	if err := os.MkdirAll(rt.stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("create runtime state dir: %w", err)
	}
	r, err := pickRunner(ctx, rt.stateDir, rt.want, rt.debug)
	if err != nil {
		return nil, err
	}
	rt.runner = r
	return r, nil
}

// Load returns a handle on container id run by a live kiln process (this one or another) under
// this state dir, for State, Kill and Exec; Wait is only for containers this process started.
// A container without a live owner (never started, exited, or its kiln killed) yields a
// *NotRunningError.
func (rt *Runtime) Load(id string) (*Container, error) {
	if !idPattern.MatchString(id) {
		return nil, fmt.Errorf("container id %q: use letters, digits, '_', '.' and '-'", id)
	}
	data, err := os.ReadFile(filepath.Join(ownersDir(rt.stateDir), id+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, &NotRunningError{ID: id}
	}
	if err != nil {
		return nil, fmt.Errorf("read owner record of %s: %w", id, err)
	}
	o := owner{ID: id}
	if err := json.Unmarshal(data, &o); err != nil || !o.alive() || o.Runtime == "" {
		return nil, &NotRunningError{ID: id}
	}
	return &Container{rt: rt, id: id, bundle: o.Bundle, runner: ownerRunner(o)}, nil
}

// ownerRunner is the runner named by an owner record, without asking the binary anything.
func ownerRunner(o owner) *ociRunner {
	return newOCIRunner(o.Runtime, "", o.Root)
}
