package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// psRows decodes `kiln ps -a --format json`.
func psRows(t *testing.T, root string) map[string]psRow {
	t.Helper()
	rows := map[string]psRow{}
	dec := json.NewDecoder(strings.NewReader(ok(t, root, "ps", "-a", "--format", "json").stdout))
	for dec.More() {
		var r psRow
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		rows[r.Names] = r
	}
	return rows
}

// inspectOne decodes `kiln container inspect ref`.
func inspectOne(t *testing.T, root, ref string) containerInspect {
	t.Helper()
	var out []containerInspect
	if err := json.Unmarshal([]byte(ok(t, root, "container", "inspect", ref).stdout), &out); err != nil || len(out) != 1 {
		t.Fatalf("inspect %s: %v %v", ref, out, err)
	}
	return out[0]
}

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestDetachedLifecycle(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	id := strings.TrimSpace(ok(t, root, "run", "-d", "--name", "web", "busybox", "sh", "-c", "echo hello; echo warn >&2; sleep 30").stdout)
	if len(id) != 64 {
		t.Fatalf("run -d printed %q, want a 64-hex id", id)
	}
	if r := psRows(t, root)["web"]; r.ID != id[:12] || !strings.HasPrefix(r.Status, "Up ") || r.Image != "busybox" {
		t.Errorf("ps: %+v", r)
	}
	if q := ok(t, root, "ps", "-q").stdout; q != id[:12]+"\n" {
		t.Errorf("ps -q: %q", q)
	}
	waitFor(t, "logs", func() bool { return kiln(t, root, nil, "logs", "web").stdout == "hello\n" })
	// stdout and stderr are separate pipes: their relative order is not fixed.
	if r := ok(t, root, "logs", "--tail", "2", "-t", id[:5]); !strings.HasSuffix(r.stderr, " warn\n") || !strings.HasSuffix(r.stdout, " hello\n") {
		t.Errorf("logs --tail 2 -t: stdout %q stderr %q", r.stdout, r.stderr)
	}
	in := inspectOne(t, root, "web")
	if !in.State.Running || in.State.Pid <= 0 || in.Name != "/web" || in.Path != "sh" {
		t.Errorf("inspect running: %+v", in)
	}
	if r := kiln(t, root, nil, "rm", "web"); r.code != 1 || !strings.Contains(r.stderr, `cannot remove container "/web": container is running`) {
		t.Errorf("rm running: exit %d, %s", r.code, r.stderr)
	}
	start := time.Now()
	ok(t, root, "stop", "-t", "1", "web")
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("stop -t 1 took %v", d)
	}
	if st := psRows(t, root)["web"].Status; st != "Exited (137) Less than a second ago" && !strings.HasPrefix(st, "Exited (143)") &&
		!strings.HasPrefix(st, "Exited (137)") {
		t.Errorf("after stop: %q", st)
	}
	if out := ok(t, root, "ps").stdout; strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "CONTAINER ID ") {
		t.Errorf("ps without -a lists a stopped container")
	}
	ok(t, root, "rm", "web")
	if _, found := psRows(t, root)["web"]; found {
		t.Error("web still listed after rm")
	}
	assertNoContainerDirs(t, root)
	if _, err := os.Stat(filepath.Join("/run/kiln/owners", id+".json")); err == nil {
		t.Error("the runtime's owner record was left behind")
	}
}

// assertNoContainerDirs fails when containers/ holds anything.
func assertNoContainerDirs(t *testing.T, root string) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(root, "containers"))
	for _, e := range ents {
		t.Errorf("left in containers/: %s", e.Name())
	}
}

func TestRestartPolicyOnFailure(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	ok(t, root, "run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "echo try; exit 3")
	waitFor(t, "the restarts to end", func() bool { return inspectOne(t, root, "flaky").State.Status == "exited" })
	in := inspectOne(t, root, "flaky")
	if in.RestartCount != 2 || in.State.ExitCode != 3 || in.HostConfig.RestartPolicy.MaximumRetryCount != 2 {
		t.Errorf("on-failure:2: restarts %d, exit %d, policy %+v", in.RestartCount, in.State.ExitCode, in.HostConfig.RestartPolicy)
	}
	if logs := ok(t, root, "logs", "flaky").stdout; logs != "try\ntry\ntry\n" {
		t.Errorf("logs of three runs: %q", logs)
	}
	// A stopped container with restart=always stays stopped; start brings it back.
	ok(t, root, "run", "-d", "--name", "svc", "--restart", "always", "busybox", "sleep", "30")
	monitor := inspectOne(t, root, "svc").State.MonitorPid
	ok(t, root, "stop", "-t", "0", "svc")
	// Its monitor ends without restarting it; afterwards nothing can restart it any more.
	waitFor(t, "the monitor to exit", func() bool { return syscall.Kill(monitor, 0) != nil })
	if st := inspectOne(t, root, "svc").State; st.Status != "exited" {
		t.Errorf("always-restart container after stop: %+v", st)
	}
	ok(t, root, "start", "svc")
	if st := inspectOne(t, root, "svc").State; !st.Running {
		t.Errorf("after start: %+v", st)
	}
	ok(t, root, "restart", "-t", "0", "svc")
	if st := inspectOne(t, root, "svc").State; !st.Running {
		t.Errorf("after restart: %+v", st)
	}
	ok(t, root, "kill", "-s", "KILL", "svc")
	waitFor(t, "kill", func() bool { return inspectOne(t, root, "svc").State.Status == "exited" })
	if st := inspectOne(t, root, "svc").State; st.ExitCode != 137 {
		t.Errorf("after kill: %+v", st)
	}
	if out := ok(t, root, "container", "prune").stdout; strings.Count(out, "\n") != 3 {
		t.Errorf("prune: %q", out)
	}
	assertNoContainerDirs(t, root)
}

func TestKilledMonitor(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	ok(t, root, "run", "-d", "--name", "orphan", "busybox", "sleep", "30")
	in := inspectOne(t, root, "orphan")
	if err := syscall.Kill(in.State.MonitorPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the dead monitor to show", func() bool { return psRows(t, root)["orphan"].Status == "Exited (unknown)" })
	if r := kiln(t, root, nil, "ps", "-q"); r.stdout != "" {
		t.Errorf("ps lists a container whose monitor died: %q", r.stdout)
	}
	ok(t, root, "rm", "-f", "orphan")
	assertNoContainerDirs(t, root)
	if _, err := os.Stat("/proc/" + strconv.Itoa(in.State.Pid)); err == nil {
		if data, _ := os.ReadFile("/proc/" + strconv.Itoa(in.State.Pid) + "/cmdline"); strings.Contains(string(data), "sleep") {
			t.Error("the container's process survived rm -f")
		}
	}
}

func TestLogsFollowAndBadInput(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	ok(t, root, "run", "-d", "--name", "ticker", "busybox", "sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.3; done")
	start := time.Now()
	r := ok(t, root, "logs", "-f", "ticker")
	if r.stdout != "1\n2\n3\n" || time.Since(start) > 10*time.Second {
		t.Errorf("logs -f: %q after %v", r.stdout, time.Since(start))
	}
	r = kiln(t, root, nil, "run", "-d", "--name", "ticker", "busybox", "true")
	if r.code != 125 || !strings.Contains(r.stderr, `the container name "/ticker" is already in use by container `) {
		t.Errorf("name conflict: exit %d, %s", r.code, r.stderr)
	}
	for _, verb := range []string{"stop", "logs", "rm", "kill", "start", "restart"} {
		r := kiln(t, root, nil, verb, "nope")
		if r.code != 1 || !strings.Contains(r.stderr, "No such container: nope") {
			t.Errorf("%s nope: exit %d, %s", verb, r.code, r.stderr)
		}
	}
	if r := kiln(t, root, nil, "run", "-d", "--name", "missing", "busybox", "no-such-command"); r.code != 127 || r.stdout != "" {
		t.Errorf("run -d of a missing command: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	if r := kiln(t, root, nil, "run", "--rm", "--restart", "always", "busybox", "true"); r.code != 125 {
		t.Errorf("--rm with --restart: exit %d", r.code)
	}
	// A foreground run is recorded too.
	ok(t, root, "run", "--name", "fg", "busybox", "sh", "-c", "exit 0")
	if st := psRows(t, root)["fg"].Status; !strings.HasPrefix(st, "Exited (0)") {
		t.Errorf("foreground container: %q", st)
	}
}

func TestKillSignalAndStopSignal(t *testing.T) {
	requireContainers(t)
	root, ctxDir := busyboxRoot(t), t.TempDir()
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM busybox\nSTOPSIGNAL SIGUSR1\n"})
	ok(t, root, "build", "--progress=plain", "-t", "usr1", ctxDir)
	script := `trap "echo got hup" HUP; trap "echo bye; exit 0" USR1; echo ready; while true; do sleep 0.05; done`
	ok(t, root, "run", "-d", "--name", "sig", "usr1", "sh", "-c", script)
	waitFor(t, "ready", func() bool { return strings.Contains(kiln(t, root, nil, "logs", "sig").stdout, "ready") })
	ok(t, root, "kill", "-s", "HUP", "sig")
	waitFor(t, "the HUP trap", func() bool { return strings.Contains(kiln(t, root, nil, "logs", "sig").stdout, "got hup") })
	if !inspectOne(t, root, "sig").State.Running {
		t.Fatal("HUP stopped the container")
	}
	start := time.Now()
	ok(t, root, "stop", "sig") // STOPSIGNAL USR1 ends it at once, well before the 10 s timeout
	if in := inspectOne(t, root, "sig"); in.State.ExitCode != 0 || time.Since(start) > 5*time.Second ||
		!strings.HasSuffix(ok(t, root, "logs", "sig").stdout, "bye\n") {
		t.Errorf("stop with STOPSIGNAL USR1: exit %d after %v", in.State.ExitCode, time.Since(start))
	}
	if r := kiln(t, root, nil, "kill", "sig"); r.code != 1 || !strings.Contains(r.stderr, "is not running") {
		t.Errorf("kill of a stopped container: exit %d, %s", r.code, r.stderr)
	}
	if r := kiln(t, root, nil, "kill", "-s", "NOPE", "sig"); r.code != 2 {
		t.Errorf("kill -s NOPE: exit %d, %s", r.code, r.stderr)
	}
	ok(t, root, "rm", "sig")
}

// TestLifecycleTimings logs how long each verb of run -d → ps → stop → rm takes (go test -v).
func TestLifecycleTimings(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	verbs := [][]string{{"run", "-d", "--name", "b", "busybox", "sleep", "30"}, {"ps", "-a"}, {"logs", "b"},
		{"stop", "-t", "0", "b"}, {"start", "b"}, {"rm", "-f", "b"}}
	const rounds = 3
	total := make([]time.Duration, len(verbs))
	for range rounds {
		for i, v := range verbs {
			start := time.Now()
			ok(t, root, v...)
			total[i] += time.Since(start)
		}
	}
	for i, v := range verbs {
		t.Logf("kiln %-6s %v", v[0], (total[i] / rounds).Round(time.Millisecond))
	}
}
