package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// unifiedOnly reports a pure cgroup v2 host (no v1 hierarchies).
func unifiedOnly() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// cgroupsPath places a container's cgroup. On v1/hybrid hosts it is relative, so the runtime
// nests it under its own (kiln's) cgroup and limits on kiln's parent still apply. On pure v2 it
// is absolute, as docker's /docker/<id>: v2 forbids child cgroups with controllers under a
// cgroup that holds processes, which kiln's own cgroup usually does.
func cgroupsPath(id string) string {
	if unifiedOnly() {
		return "/kiln/" + id
	}
	return "kiln/" + id
}

// cgroupParents lists the dirs holding containers' cgroups, one per mounted hierarchy.
func cgroupParents() []string {
	if unifiedOnly() {
		return []string{"/sys/fs/cgroup/kiln"}
	}
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		var mount string
		switch {
		case parts[0] == "0" && parts[1] == "":
			mount = "/sys/fs/cgroup/unified"
			if _, err := os.Stat(mount); err != nil {
				mount = "/sys/fs/cgroup"
			}
		case strings.HasPrefix(parts[1], "name="):
			mount = filepath.Join("/sys/fs/cgroup", strings.TrimPrefix(parts[1], "name="))
		default:
			mount = filepath.Join("/sys/fs/cgroup", strings.Split(parts[1], ",")[0])
		}
		out = append(out, filepath.Join(mount, parts[2], "kiln"))
	}
	return out
}

// cleanupCgroups removes the empty kiln/<id> cgroups of the given dead runs. It never sweeps
// cgroups it has no owner record for: cgroup paths are global to the host, so another state
// dir's run (or one whose runtime just created its cgroup, still empty) may own them. A cgroup
// that still has processes is reported, not killed: the runtime's delete owns that job.
func cleanupCgroups(dead []string) error {
	var errs []error
	for _, parent := range cgroupParents() {
		for _, id := range dead {
			dir := filepath.Join(parent, id)
			if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.EBUSY) {
				errs = append(errs, fmt.Errorf("remove leftover cgroup %s: %w", dir, err))
			}
		}
	}
	return errors.Join(errs...)
}
