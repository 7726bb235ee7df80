package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	units "github.com/docker/go-units"

	"github.com/kiln-build/kiln/internal/atomicfile"
)

// Status is where a container is in its life.
type Status string

// The statuses a container goes through; docker's names.
const (
	StatusCreated    Status = "created"
	StatusRunning    Status = "running"
	StatusRestarting Status = "restarting" // exited, the monitor is about to start it again
	StatusExited     Status = "exited"
)

// State is state.json: what the container is doing now, written by its monitor.
type State struct {
	Status       Status    `json:"Status"`
	MonitorPid   int       `json:"MonitorPid,omitempty"`
	MonitorStart uint64    `json:"MonitorStart,omitempty"` // start time of MonitorPid: guards against pid reuse
	Pid          int       `json:"Pid,omitempty"`          // the container's init process on the host, when known
	StartedAt    time.Time `json:"StartedAt,omitzero"`
	FinishedAt   time.Time `json:"FinishedAt,omitzero"`
	ExitCode     int       `json:"ExitCode"`
	RestartCount int       `json:"RestartCount"`
	Error        string    `json:"Error,omitempty"`  // why kiln could not run or watch the container
	Health       *Health   `json:"Health,omitempty"` // the health checks' standing, when the container has any
	// MonitorLost is set by readers (never stored) when the monitor died without recording an
	// exit: the container's fate is unknown.
	MonitorLost bool `json:"MonitorLost,omitempty"`
	// Paused: running, its processes frozen by kiln pause.
	Paused bool `json:"Paused,omitempty"`
}

// Running reports whether the container is up (or about to be restarted) under a live monitor.
func (s State) Running() bool {
	return (s.Status == StatusRunning || s.Status == StatusRestarting) && !s.MonitorLost
}

// Describe is docker's STATUS column: "Up 3 seconds", "Exited (0) 2 seconds ago", "Created".
func (s State) Describe(now time.Time) string {
	switch {
	case s.MonitorLost:
		return "Exited (unknown)"
	case s.Status == StatusRunning && s.Paused:
		return "Up " + units.HumanDuration(now.Sub(s.StartedAt)) + " (Paused)"
	case s.Status == StatusRunning:
		return "Up " + units.HumanDuration(now.Sub(s.StartedAt)) + s.Health.describe()
	case s.Status == StatusRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", s.ExitCode, units.HumanDuration(now.Sub(s.FinishedAt)))
	case s.Status == StatusExited && s.FinishedAt.IsZero():
		return fmt.Sprintf("Exited (%d)", s.ExitCode)
	case s.Status == StatusExited:
		return fmt.Sprintf("Exited (%d) %s ago", s.ExitCode, units.HumanDuration(now.Sub(s.FinishedAt)))
	}
	return "Created"
}

// readState reads dir/state.json and checks the monitor it names is still alive.
func readState(dir string) (State, error) {
	var s State
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return State{Status: StatusCreated}, nil
	}
	if err != nil {
		return s, fmt.Errorf("read container state: %w", err)
	}
	if len(data) == 0 {
		return State{Status: StatusExited}, nil // a --rm container's, cut short by an OS crash
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("read container state %s: %w", dir, err)
	}
	if s.Status != StatusExited && s.MonitorPid != 0 && !processAlive(s.MonitorPid, s.MonitorStart) {
		s.MonitorLost = true
	}
	return s, nil
}

// writeState replaces dir/state.json atomically; volatile (a --rm container's) skips the fsyncs,
// as writeRecord does.
func writeState(dir string, s State, volatile bool) error {
	s.MonitorLost = false
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode container state: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dir, stateFile), append(data, '\n'), atomicfile.Options{Perm: 0o600, NoSync: volatile}); err != nil {
		return fmt.Errorf("write container state: %w", err)
	}
	return nil
}
