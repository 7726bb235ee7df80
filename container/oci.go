package container

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
)

// ociRuntime is the OCI runtime binary and state root a running container was started with.
type ociRuntime struct {
	Path string `json:"runtime"`
	Root string `json:"root"`
}

// findRuntime reads the runtime package's owner record for id (<stateDir>/owners/<id>.json)
// and falls back to the runtime state roots it lays out as <stateDir>/<runtime name>/<id>.
func findRuntime(stateDir, id string) (ociRuntime, error) {
	var r ociRuntime
	if data, err := os.ReadFile(filepath.Join(stateDir, "owners", id+".json")); err == nil {
		if json.Unmarshal(data, &r) == nil && r.Path != "" && r.Root != "" {
			return r, nil
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(stateDir, "*", id))
	for _, d := range dirs {
		root := filepath.Dir(d)
		if path, err := exec.LookPath(filepath.Base(root)); err == nil {
			return ociRuntime{Path: path, Root: root}, nil
		}
	}
	return r, fmt.Errorf("container %s is not known to any OCI runtime under %s", id[:12], stateDir)
}

// kill sends sig to the container's init process.
func (r ociRuntime) kill(ctx context.Context, id string, sig syscall.Signal) error {
	out, err := exec.CommandContext(ctx, r.Path, "--root", r.Root, "kill", id, strconv.Itoa(int(sig))).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s kill %s: %w: %s", filepath.Base(r.Path), id[:12], err, bytes.TrimSpace(out))
	}
	return nil
}

// pid returns the host pid of the container's init process, 0 while it is not created yet.
func (r ociRuntime) pid(ctx context.Context, id string) (int, error) {
	out, err := exec.CommandContext(ctx, r.Path, "--root", r.Root, "state", id).Output()
	if err != nil {
		return 0, fmt.Errorf("%s state %s: %w", filepath.Base(r.Path), id[:12], err)
	}
	var st struct {
		Pid    int    `json:"pid"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return 0, fmt.Errorf("%s state %s: %w", filepath.Base(r.Path), id[:12], err)
	}
	if st.Status != "running" && st.Status != "created" {
		return 0, nil
	}
	return st.Pid, nil
}
