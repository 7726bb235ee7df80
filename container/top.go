package container

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// ErrNotRunning says a verb needs a running container.
var ErrNotRunning = errors.New("is not running")

// Top runs the host's ps with psArgs (docker's default -ef) and returns its header and the
// lines of c's processes: those in the pid namespace of c's init, as docker's `top`.
func (c *Container) Top(ctx context.Context, psArgs []string) ([]string, error) {
	st, err := c.State()
	if err != nil {
		return nil, err
	}
	if !st.Running() || st.Pid <= 0 {
		return nil, fmt.Errorf("container %s %w", c.Name, ErrNotRunning)
	}
	pids, err := pidsInNamespaceOf(st.Pid)
	if err != nil {
		return nil, fmt.Errorf("top %s: %w", c.Name, err)
	}
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, "ps", psArgs...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("top %s: ps %s: %w: %s", c.Name, strings.Join(psArgs, " "), err, strings.TrimSpace(errb.String()))
	}
	return filterPs(out.String(), pids)
}

// filterPs keeps ps's header and the lines whose PID column is in pids.
func filterPs(out string, pids map[int]bool) ([]string, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	col := -1
	for i, f := range strings.Fields(lines[0]) {
		if f == "PID" {
			col = i
		}
	}
	if col < 0 {
		return nil, errors.New("top: ps printed no PID column: give ps options that include it (e.g. -ef or aux)")
	}
	kept := []string{lines[0]}
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) > col {
			if pid, err := strconv.Atoi(f[col]); err == nil && pids[pid] {
				kept = append(kept, l)
			}
		}
	}
	return kept, nil
}

// pidsInNamespaceOf lists the host pids that share init's pid namespace.
func pidsInNamespaceOf(init int) (map[int]bool, error) {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", init))
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	pids := map[int]bool{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err == nil && l == ns {
			pids[pid] = true
		}
	}
	return pids, nil
}
