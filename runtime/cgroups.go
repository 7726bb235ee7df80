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

// cgroupParents lists kiln's parent cgroup dir in every mounted hierarchy: containers get
// cgroupsPath "kiln/<id>", which the runtimes nest under their own (kiln's) cgroup.
func cgroupParents() []string {
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

// cleanupCgroups removes empty kiln/<id> cgroups of containers no live run owns. A cgroup that
// still has processes is reported, not killed: the runtime's delete owns that job.
func cleanupCgroups(live map[string]bool) error {
	var errs []error
	for _, parent := range cgroupParents() {
		entries, err := os.ReadDir(parent)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !e.IsDir() || live[e.Name()] {
				continue
			}
			dir := filepath.Join(parent, e.Name())
			// EBUSY: processes still live there, so it is no leftover (maybe another state dir's).
			if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.EBUSY) {
				errs = append(errs, fmt.Errorf("remove leftover cgroup %s: %w", dir, err))
			}
		}
	}
	return errors.Join(errs...)
}
