package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cgroupFile reads a limit file of pid's cgroup: v1's controller hierarchy, or the v2 one.
func cgroupFile(t *testing.T, pid int, controller, v1, v2 string) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", parts[1], parts[2], v1))
				if err != nil {
					t.Fatal(err)
				}
				return strings.TrimSpace(string(v))
			}
		}
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", rest, v2))
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(string(v))
		}
	}
	t.Fatalf("no %s cgroup for pid %d", controller, pid)
	return ""
}

func TestUpdate(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	if r := ok(t, root, "update", "--help"); !strings.Contains(r.stdout, "Update configuration of one or more containers") {
		t.Errorf("update --help: %q", r.stdout)
	}
	ok(t, root, "run", "-d", "--name", "u", "--memory", "64m", "busybox", "sleep", "60")
	if r := kiln(t, root, nil, "update", "u"); r.code != 2 || !strings.Contains(r.stderr, "you must provide one or more flags") {
		t.Errorf("update without flags: exit %d, %s", r.code, r.stderr)
	}
	if r := kiln(t, root, nil, "update", "--memory", "lots", "u"); r.code != 2 || !strings.Contains(r.stderr, `invalid --memory "lots"`) {
		t.Errorf("update --memory lots: exit %d, %s", r.code, r.stderr)
	}
	if r := ok(t, root, "update", "--memory", "128m", "--cpus", "0.5", "--pids-limit", "20", "u"); r.stdout != "u\n" {
		t.Errorf("update printed %q", r.stdout)
	}
	pid := inspectOne(t, root, "u").State.Pid
	if got := cgroupFile(t, pid, "memory", "memory.limit_in_bytes", "memory.max"); got != "134217728" {
		t.Errorf("memory limit after update: %s", got)
	}
	if got := cgroupFile(t, pid, "cpu", "cpu.cfs_quota_us", "cpu.max"); got != "50000" && got != "50000 100000" {
		t.Errorf("cpu quota after update: %s", got)
	}
	if got := cgroupFile(t, pid, "pids", "pids.max", "pids.max"); got != "20" {
		t.Errorf("pids limit after update: %s", got)
	}
	if hc := inspectOne(t, root, "u").HostConfig; hc.Memory != 128<<20 || hc.NanoCpus != 5e8 || hc.PidsLimit != 20 {
		t.Errorf("inspect after update: memory %d, nanocpus %d, pids %d", hc.Memory, hc.NanoCpus, hc.PidsLimit)
	}
	// 0 lifts a limit; the others stay.
	ok(t, root, "update", "--memory", "0", "u")
	if got := cgroupFile(t, pid, "memory", "memory.limit_in_bytes", "memory.max"); got == "134217728" || got == "67108864" {
		t.Errorf("memory limit after update --memory 0: %s", got)
	}
	if got := cgroupFile(t, pid, "pids", "pids.max", "pids.max"); got != "20" {
		t.Errorf("pids limit after lifting the memory limit: %s", got)
	}
	// A stopped container keeps the new limits for its next start.
	ok(t, root, "stop", "-t", "0", "u")
	ok(t, root, "update", "--pids-limit", "7", "u")
	ok(t, root, "start", "u")
	pid = inspectOne(t, root, "u").State.Pid
	if got := cgroupFile(t, pid, "pids", "pids.max", "pids.max"); got != "7" {
		t.Errorf("pids limit after update of a stopped container and start: %s", got)
	}
	if r := kiln(t, root, nil, "update", "--cpus", "1", "nosuch"); r.code != 1 || !strings.Contains(r.stderr, "nosuch") {
		t.Errorf("update of no container: exit %d, %s", r.code, r.stderr)
	}
	ok(t, root, "rm", "-f", "u")
}
