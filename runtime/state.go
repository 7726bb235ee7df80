package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Status is a container's lifecycle state as the OCI runtime reports it.
type Status string

// Statuses of the OCI runtime-spec state.
const (
	StatusCreating Status = "creating"
	StatusCreated  Status = "created"
	StatusRunning  Status = "running"
	StatusPaused   Status = "paused"
	StatusStopped  Status = "stopped"
)

// ContainerState is what `kiln ps`, `kill` and `exec` need to know about a live container.
type ContainerState struct {
	ID     string
	Status Status
	Pid    int    // host pid of the container's init process; 0 once stopped
	Bundle string // bundle dir; its rootfs/ is the mounted root filesystem
}

// ErrNotRunning matches (errors.Is) the errors of State, Kill and Exec for containers that are not running.
var ErrNotRunning = errors.New("container is not running")

// NotRunningError says container ID has no running process; its text is docker's.
type NotRunningError struct{ ID string }

func (e *NotRunningError) Error() string { return fmt.Sprintf("container %s is not running", e.ID) }

// Is makes errors.Is(err, ErrNotRunning) true.
func (e *NotRunningError) Is(target error) bool { return target == ErrNotRunning }

// State reports the status and init pid of container id run by kiln under stateDir ("" =
// DefaultStateDir). A container without a live owner (never started, exited, or its kiln killed)
// yields a *NotRunningError.
func State(ctx context.Context, stateDir, id string) (ContainerState, error) {
	r, o, err := ownedRunner(stateDir, id)
	if err != nil {
		return ContainerState{}, err
	}
	st, err := r.state(ctx, id)
	if err != nil {
		return ContainerState{}, err
	}
	if st.Bundle == "" {
		st.Bundle = o.Bundle
	}
	return st, nil
}

// Kill sends sig to the processes of running container id under stateDir ("" = DefaultStateDir).
// The run that owns the container sees its process exit and cleans up as usual.
func Kill(ctx context.Context, stateDir, id string, sig syscall.Signal) error {
	r, _, err := ownedRunner(stateDir, id)
	if err != nil {
		return err
	}
	if st, err := r.state(ctx, id); err != nil {
		return err
	} else if st.Status != StatusRunning && st.Status != StatusPaused && st.Status != StatusCreated {
		return &NotRunningError{ID: id}
	}
	return r.Kill(ctx, id, sig)
}

// ownedRunner finds the runtime that runs container id from its live owner record.
func ownedRunner(stateDir, id string) (*ociRunner, owner, error) {
	if stateDir == "" {
		stateDir = DefaultStateDir
	}
	if !idPattern.MatchString(id) {
		return nil, owner{}, fmt.Errorf("container id %q: use letters, digits, '_', '.' and '-'", id)
	}
	data, err := os.ReadFile(filepath.Join(ownersDir(stateDir), id+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, owner{}, &NotRunningError{ID: id}
	}
	if err != nil {
		return nil, owner{}, fmt.Errorf("read owner record of %s: %w", id, err)
	}
	o := owner{ID: id}
	if err := json.Unmarshal(data, &o); err != nil || !o.alive() || o.Runtime == "" {
		return nil, owner{}, &NotRunningError{ID: id}
	}
	r, err := runnerFor(o.Runtime, stateDir)
	if err != nil {
		return nil, owner{}, fmt.Errorf("container %s: %w", id, err)
	}
	if o.Root != "" && o.Root != r.root {
		copied := *r // the cached runner is shared: never change its root in place
		copied.root = o.Root
		r = &copied
	}
	return r, o, nil
}
