package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// frozen reads whether the cgroup freezer holds pid: freezer.state on v1, cgroup.freeze on v2.
func frozen(t *testing.T, pid int) bool {
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
		if parts[1] == "freezer" {
			st, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/freezer", parts[2], "freezer.state"))
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(string(st)) == "FROZEN"
		}
		if parts[0] == "0" && parts[1] == "" {
			if st, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", parts[2], "cgroup.freeze")); err == nil {
				return strings.TrimSpace(string(st)) == "1"
			}
		}
	}
	t.Fatalf("no freezer cgroup for pid %d in %s", pid, data)
	return false
}

func TestPauseUnpause(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	if r := ok(t, root, "pause", "--help"); !strings.Contains(r.stdout, "Pause all processes within one or more containers") {
		t.Errorf("pause --help: %q", r.stdout)
	}
	if r := kiln(t, root, nil, "unpause"); r.code != 2 {
		t.Errorf("unpause without a container: exit %d, %s", r.code, r.stderr)
	}
	id := strings.TrimSpace(ok(t, root, "run", "-d", "--name", "p", "busybox", "sleep", "60").stdout)
	pid := inspectOne(t, root, "p").State.Pid
	if r := ok(t, root, "pause", "p"); r.stdout != "p\n" {
		t.Errorf("pause printed %q, want the name", r.stdout)
	}
	if !frozen(t, pid) {
		t.Error("pause: the container's cgroup is not frozen")
	}
	if r := psRows(t, root)["p"]; !strings.HasPrefix(r.Status, "Up ") || !strings.HasSuffix(r.Status, " (Paused)") || r.State != "paused" {
		t.Errorf("ps of a paused container: status %q, state %q", r.Status, r.State)
	}
	if st := inspectOne(t, root, "p").State; st.Status != "paused" || !st.Paused || !st.Running {
		t.Errorf("inspect of a paused container: %+v", st)
	}
	if out := ok(t, root, "ps", "--filter", "status=paused", "-q").stdout; out != id[:12]+"\n" {
		t.Errorf("ps --filter status=paused: %q", out)
	}
	if r := kilnWithin(t, 20*time.Second, root, "exec", "p", "true"); r.code == 0 || !strings.Contains(r.stderr, "is paused, unpause the container before exec") {
		t.Errorf("exec in a paused container: exit %d, %s", r.code, r.stderr)
	}
	if r := kiln(t, root, nil, "pause", "p"); r.code != 1 || !strings.Contains(r.stderr, "container "+id+" is already paused") {
		t.Errorf("pause twice: exit %d, %s", r.code, r.stderr)
	}
	ok(t, root, "unpause", id[:6])
	if frozen(t, pid) {
		t.Error("unpause: the container's cgroup is still frozen")
	}
	if r := psRows(t, root)["p"]; strings.Contains(r.Status, "Paused") || r.State != "running" {
		t.Errorf("ps after unpause: status %q, state %q", r.Status, r.State)
	}
	if r := kiln(t, root, nil, "unpause", "p"); r.code != 1 || !strings.Contains(r.stderr, "container "+id+" is not paused") {
		t.Errorf("unpause of a running container: exit %d, %s", r.code, r.stderr)
	}

	// docker's stop thaws a paused container so the signal lands; SIGKILL on a frozen v1 cgroup would wait forever.
	ok(t, root, "pause", "p")
	start := time.Now()
	ok(t, root, "stop", "-t", "1", "p")
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("stop of a paused container took %v", d)
	}
	if st := inspectOne(t, root, "p").State; st.Status != "exited" || st.Paused || st.ExitCode != 137 && st.ExitCode != 143 {
		t.Errorf("after stop of a paused container: %+v", st)
	}
	if r := kiln(t, root, nil, "pause", "p"); r.code != 1 || !strings.Contains(r.stderr, "container "+id+" is not running") {
		t.Errorf("pause of a stopped container: exit %d, %s", r.code, r.stderr)
	}
	if r := kiln(t, root, nil, "pause", "nosuch"); r.code != 1 || !strings.Contains(r.stderr, "nosuch") {
		t.Errorf("pause of no container: exit %d, %s", r.code, r.stderr)
	}

	ok(t, root, "run", "-d", "--name", "k", "busybox", "sleep", "60")
	ok(t, root, "pause", "k")
	ok(t, root, "kill", "k")
	waitFor(t, "the killed paused container to exit", func() bool { return inspectOne(t, root, "k").State.Status == "exited" })
	if st := inspectOne(t, root, "k").State; st.ExitCode != 137 || st.Paused {
		t.Errorf("kill of a paused container: %+v", st)
	}
	ok(t, root, "rm", "p", "k")
	assertNoContainerDirs(t, root)
}
