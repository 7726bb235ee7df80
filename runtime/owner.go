package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// owner records which kiln process runs a container, so Cleanup at the next start can tell a
// live run from the leftovers of a killed one.
type owner struct {
	PID     int    `json:"pid"`
	Start   uint64 `json:"start"` // process start time in clock ticks: guards against pid reuse
	ID      string `json:"id"`
	Bundle  string `json:"bundle"`
	Runtime string `json:"runtime"` // runtime binary path
	Root    string `json:"root"`    // the runtime's --root
}

func ownersDir(stateDir string) string { return filepath.Join(stateDir, "owners") }

// writeOwner records this process as the owner of container id.
func writeOwner(stateDir string, o owner) error {
	o.PID = os.Getpid()
	o.Start = procStart(o.PID)
	data, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("encode owner record: %w", err)
	}
	dir := ownersDir(stateDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create owner records dir: %w", err)
	}
	return writeRunFile(filepath.Join(dir, o.ID+".json"), data)
}

func removeOwner(stateDir, id string) error {
	err := os.Remove(filepath.Join(ownersDir(stateDir), id+".json"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove owner record: %w", err)
	}
	return nil
}

// readOwners returns every owner record; unreadable ones come back with only their ID.
func readOwners(stateDir string) ([]owner, error) {
	entries, err := os.ReadDir(ownersDir(stateDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read owner records: %w", err)
	}
	var out []owner
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(id, ".") {
			continue
		}
		o := owner{ID: id}
		if data, err := os.ReadFile(filepath.Join(ownersDir(stateDir), e.Name())); err == nil {
			json.Unmarshal(data, &o) //nolint:errcheck // a torn record still names the container
		}
		out = append(out, o)
	}
	return out, nil
}

// readOwner reads container id's owner record; ok is false when there is none.
func readOwner(stateDir, id string) (o owner, ok bool) {
	data, err := os.ReadFile(filepath.Join(ownersDir(stateDir), id+".json"))
	if err != nil {
		return owner{}, false
	}
	o = owner{ID: id}
	json.Unmarshal(data, &o) //nolint:errcheck // written by rename, never torn; garbage reads as dead
	return o, true
}

// alive reports whether the owner process still runs (same pid and start time).
func (o owner) alive() bool {
	return o.PID > 0 && o.Start != 0 && procStart(o.PID) == o.Start
}

// procStart returns a process's start time from /proc/<pid>/stat, 0 if it does not exist.
func procStart(pid int) uint64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name may contain spaces and parentheses: fields start after the last ')'.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0 // a zombie's run is over: only its parent has not reaped it yet
	}
	n, _ := strconv.ParseUint(f[19], 10, 64)
	return n
}
