package runtime

import (
	"errors"
	"fmt"
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
