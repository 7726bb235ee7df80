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

	// --cpu-shares and the cpusets, live and kept for the next start, as run sets them.
	ok(t, root, "update", "--cpu-shares", "512", "--cpuset-cpus", "0", "--cpuset-mems", "0", "u")
	cpuset := func() (shares, cpus, mems string) {
		t.Helper()
		pid := inspectOne(t, root, "u").State.Pid
		return cgroupFile(t, pid, "cpu", "cpu.shares", "cpu.weight"),
			cgroupFile(t, pid, "cpuset", "cpuset.cpus", "cpuset.cpus"), cgroupFile(t, pid, "cpuset", "cpuset.mems", "cpuset.mems")
	}
	wantShares := "512"
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		wantShares = "20" // v2's cpu.weight, as the runtime converts 512 shares
	}
	if shares, cpus, mems := cpuset(); shares != wantShares || cpus != "0" || mems != "0" {
		t.Errorf("after update: cpu weight %s, cpuset cpus %q mems %q", shares, cpus, mems)
	}
	ok(t, root, "restart", "-t", "0", "u")
	if shares, cpus, mems := cpuset(); shares != wantShares || cpus != "0" || mems != "0" {
		t.Errorf("after a restart: cpu weight %s, cpuset cpus %q mems %q", shares, cpus, mems)
	}
	if hc := inspectOne(t, root, "u").HostConfig; hc.CPUShares != 512 || hc.CpusetCpus != "0" || hc.CpusetMems != "0" {
		t.Errorf("inspect: shares %d, cpus %q, mems %q", hc.CPUShares, hc.CpusetCpus, hc.CpusetMems)
	}
	for _, bad := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--cpuset-cpus", "999"}, 1, "CPU 999 is not available"},
		{[]string{"--cpuset-mems", "7"}, 1, "memory node 7 is not available"},
		{[]string{"--cpu-shares", "1"}, 1, "invalid --cpu-shares 1"},
		{[]string{"--restart", "sometimes"}, 2, `invalid restart policy "sometimes"`},
		{[]string{"--cpuset-cpus", ""}, 2, "--cpuset-cpus needs a list"},
	} {
		if r := kiln(t, root, nil, append(append([]string{"update"}, bad.args...), "u")...); r.code != bad.code || !strings.Contains(r.stderr, bad.msg) {
			t.Errorf("update %v: exit %d, %s", bad.args, r.code, r.stderr)
		}
	}
	if r := ok(t, root, "run", "--rm", "--cpu-shares", "256", "--cpuset-mems", "0", "busybox", "cat", "/proc/self/status"); !strings.Contains(r.stdout, "Mems_allowed_list:\t0") {
		t.Errorf("run --cpuset-mems 0: %s", r.stdout)
	}
	ok(t, root, "update", "--cpu-shares", "0", "u") // back to the default weight
	if shares, _, _ := cpuset(); shares != "1024" && shares != "100" {
		t.Errorf("after update --cpu-shares 0: cpu weight %s", shares)
	}
	ok(t, root, "rm", "-f", "u")
}

// update --restart changes the policy the running container's monitor applies at its next exit,
// and a stopped one's for its next start; a --rm container keeps none, as docker's.
func TestUpdateRestart(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	t.Cleanup(func() { kiln(t, root, nil, "rm", "-f", "r", "gone") })
	ok(t, root, "run", "-d", "--name", "r", "busybox", "sh", "-c", "while [ ! -e /go ]; do sleep 0.05; done; exit 3")
	ok(t, root, "update", "--restart", "on-failure:2", "r")
	if p := inspectOne(t, root, "r").HostConfig.RestartPolicy; p.Name != "on-failure" || p.MaximumRetryCount != 2 {
		t.Errorf("inspect after update --restart: %+v", p)
	}
	ok(t, root, "exec", "r", "touch", "/go") // each run of it now exits 3 at once
	waitFor(t, "the container's end after its retries", func() bool {
		st := inspectOne(t, root, "r").State
		return st.Status == "exited" && st.ExitCode == 3
	})
	if rc := inspectOne(t, root, "r").RestartCount; rc != 2 {
		t.Errorf("restarts under the updated on-failure:2: %d", rc)
	}
	ok(t, root, "update", "--restart", "always", "r")
	if p := inspectOne(t, root, "r").HostConfig.RestartPolicy; p.Name != "always" {
		t.Errorf("update --restart of a stopped container: %+v", p)
	}
	ok(t, root, "run", "-d", "--rm", "--name", "gone", "busybox", "sleep", "60")
	if r := kiln(t, root, nil, "update", "--restart", "always", "gone"); r.code != 1 || !strings.Contains(r.stderr, "AutoRemove is enabled") {
		t.Errorf("update --restart of a --rm container: exit %d, %s", r.code, r.stderr)
	}
}
