package runtime

import (
	"errors"
	"fmt"
	"os"
	"path"
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
	data, _ := os.ReadFile("/proc/self/cgroup")
	return cgroupParentsOf(unifiedOnly(), string(data))
}

// cgroupParentsOf is cgroupParents for a host (unified = pure cgroup v2) and a /proc/self/cgroup
// text. On v2 it adds, after root's /kiln, where rootless containers of a kiln in this cgroup
// go (rootlessCgroup), so a crashed run's cgroup is swept there too.
func cgroupParentsOf(unified bool, self string) []string {
	if unified {
		out := []string{"/sys/fs/cgroup/kiln"}
		if own, ok := unifiedCgroup(self); ok && path.Dir(own) != "/" {
			out = append(out, filepath.Join("/sys/fs/cgroup", path.Dir(own), "kiln"))
		}
		return out
	}
	var out []string
	for _, e := range cgroupEntries(self) {
		var mount string
		switch {
		case e.Unified():
			mount = "/sys/fs/cgroup/unified"
			if _, err := os.Stat(mount); err != nil {
				mount = "/sys/fs/cgroup"
			}
		case strings.HasPrefix(e.Controllers, "name="):
			mount = filepath.Join("/sys/fs/cgroup", strings.TrimPrefix(e.Controllers, "name="))
		default:
			mount = filepath.Join("/sys/fs/cgroup", strings.Split(e.Controllers, ",")[0])
		}
		out = append(out, filepath.Join(mount, e.Path, "kiln"))
	}
	return out
}

// cgroupEntry is one line of /proc/<pid>/cgroup: "hierarchy-id:controllers:path".
type cgroupEntry struct {
	ID, Controllers, Path string
}

// Unified reports the cgroup v2 entry ("0::/path").
func (e cgroupEntry) Unified() bool { return e.ID == "0" && e.Controllers == "" }

// cgroupEntries parses a /proc/<pid>/cgroup text, skipping malformed lines.
func cgroupEntries(text string) []cgroupEntry {
	var out []cgroupEntry
	for _, line := range strings.Split(text, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 {
			out = append(out, cgroupEntry{parts[0], parts[1], parts[2]})
		}
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
