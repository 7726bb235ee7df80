package runtime

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Usage is one sample of a container's resource use, read from its cgroup and network namespace.
type Usage struct {
	CPUNanos              uint64 // CPU time used so far, all cores
	MemUsage, MemLimit    uint64 // bytes; the limit is the host's memory when none is set
	NetRx, NetTx          uint64 // bytes over every interface but lo
	BlockRead, BlockWrite uint64 // bytes
	Pids                  uint64
}

// ReadUsage samples the resource use of container id, whose init is pid: its cgroups (v1 or
// v2, as /proc/<pid>/cgroup names them) and /proc/<pid>/net/dev.
func ReadUsage(id string, pid int) (Usage, error) {
	var u Usage
	dirs, err := procCgroups(pid)
	if err != nil {
		return u, err
	}
	own := dirs["memory"]
	if v2, ok := dirs[""]; ok && len(dirs) == 1 {
		own = v2
	}
	// A container without a cgroup of its own (rootless, no delegation) sits in its user's:
	// those numbers would be the whole session's.
	if filepath.Base(own) != id {
		return u, fmt.Errorf("container %.12s has no cgroup of its own to read stats from (it is in %q): a rootless container gets none, as %s", id, own, rootlessNoCgroups())
	}
	if dir, ok := dirs[""]; ok && len(dirs) == 1 { // pure v2
		err = u.readV2(dir)
	} else {
		err = u.readV1(dirs)
	}
	if err != nil {
		return u, fmt.Errorf("container stats of pid %d: %w", pid, err)
	}
	if u.MemLimit == 0 || u.MemLimit >= 1<<62 {
		var si unix.Sysinfo_t
		if unix.Sysinfo(&si) == nil {
			u.MemLimit = si.Totalram * uint64(si.Unit)
		}
	}
	u.NetRx, u.NetTx, err = netDev(pid)
	if err != nil {
		return u, fmt.Errorf("container stats of pid %d: %w", pid, err)
	}
	return u, nil
}

// procCgroups maps each controller of pid (the v2 hierarchy as "") to its cgroup directory.
func procCgroups(pid int) (map[string]string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, fmt.Errorf("container cgroup: %w", err)
	}
	dirs := map[string]string{}
	for _, e := range cgroupEntries(string(data)) {
		if e.Unified() {
			mount := "/sys/fs/cgroup"
			if _, err := os.Stat("/sys/fs/cgroup/unified"); err == nil {
				mount = "/sys/fs/cgroup/unified"
			}
			dirs[""] = filepath.Join(mount, e.Path)
			continue
		}
		for _, ctl := range strings.Split(e.Controllers, ",") {
			dirs[ctl] = filepath.Join("/sys/fs/cgroup", e.Controllers, e.Path)
		}
	}
	return dirs, nil
}

func (u *Usage) readV2(dir string) error {
	usec, err := keyedValue(filepath.Join(dir, "cpu.stat"), "usage_usec")
	if err != nil {
		return err
	}
	u.CPUNanos = usec * 1000
	if u.MemUsage, err = fileUint(filepath.Join(dir, "memory.current")); err != nil {
		return err
	}
	if inactive, err := keyedValue(filepath.Join(dir, "memory.stat"), "inactive_file"); err == nil && inactive < u.MemUsage {
		u.MemUsage -= inactive // docker's usage leaves out the reclaimable page cache
	}
	u.MemLimit, _ = fileUint(filepath.Join(dir, "memory.max")) // "max": no limit
	u.Pids, _ = fileUint(filepath.Join(dir, "pids.current"))
	data, _ := os.ReadFile(filepath.Join(dir, "io.stat"))
	for _, f := range strings.Fields(string(data)) {
		if v, ok := strings.CutPrefix(f, "rbytes="); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			u.BlockRead += n
		} else if v, ok := strings.CutPrefix(f, "wbytes="); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			u.BlockWrite += n
		}
	}
	return nil
}

func (u *Usage) readV1(dirs map[string]string) error {
	var err error
	if u.CPUNanos, err = fileUint(filepath.Join(dirs["cpuacct"], "cpuacct.usage")); err != nil {
		return err
	}
	mem := dirs["memory"]
	if u.MemUsage, err = fileUint(filepath.Join(mem, "memory.usage_in_bytes")); err != nil {
		return err
	}
	if inactive, err := keyedValue(filepath.Join(mem, "memory.stat"), "total_inactive_file"); err == nil && inactive < u.MemUsage {
		u.MemUsage -= inactive
	}
	u.MemLimit, _ = fileUint(filepath.Join(mem, "memory.limit_in_bytes"))
	u.Pids, _ = fileUint(filepath.Join(dirs["pids"], "pids.current"))
	data, _ := os.ReadFile(filepath.Join(dirs["blkio"], "blkio.throttle.io_service_bytes_recursive"))
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line) // "8:0 Read 4096"
		if len(f) != 3 {
			continue
		}
		n, _ := strconv.ParseUint(f[2], 10, 64)
		switch f[1] {
		case "Read":
			u.BlockRead += n
		case "Write":
			u.BlockWrite += n
		}
	}
	return nil
}

// netDev sums the bytes received and sent over pid's network namespace's interfaces but lo.
func netDev(pid int) (rx, tx uint64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(rest) // rx bytes packets errs drop fifo frame compressed multicast, then tx bytes
		if len(f) < 9 {
			continue
		}
		r, _ := strconv.ParseUint(f[0], 10, 64)
		t, _ := strconv.ParseUint(f[8], 10, 64)
		rx, tx = rx+r, tx+t
	}
	return rx, tx, nil
}

func fileUint(path string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(data))
	if s == "max" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// keyedValue reads the value of key from a flat-keyed cgroup file ("key value" lines).
func keyedValue(path, key string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, key)
}
