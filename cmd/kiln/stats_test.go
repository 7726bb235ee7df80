package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestStats(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	if r := ok(t, root, "stats", "--help"); !strings.Contains(r.stdout, "Display a live stream of container(s) resource usage statistics") ||
		!strings.Contains(r.stdout, "--no-stream") {
		t.Errorf("stats --help: %q", r.stdout)
	}
	// A busy loop: CPU % well above zero; 8 MiB of memory held in a shell variable.
	id := strings.TrimSpace(ok(t, root, "run", "-d", "--name", "busy", "--memory", "64m", "--pids-limit", "50", "busybox",
		"sh", "-c", "x=$(head -c 8000000 /dev/zero | tr '\\0' a); while :; do :; done").stdout)
	ok(t, root, "run", "-d", "--name", "idle", "busybox", "sleep", "60")
	ok(t, root, "run", "--name", "gone", "busybox", "true")

	out := ok(t, root, "stats", "--no-stream").stdout
	t.Logf("kiln stats --no-stream:\n%s", out)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 || !regexp.MustCompile(`^CONTAINER ID +NAME +CPU % +MEM USAGE / LIMIT +MEM % +NET I/O +BLOCK I/O +PIDS$`).MatchString(lines[0]) {
		t.Fatalf("stats --no-stream (running containers only):\n%s", out)
	}
	if !strings.Contains(out, id[:12]+"   busy ") || strings.Contains(out, "gone") {
		t.Errorf("stats rows:\n%s", out)
	}

	var row statsRow
	waitFor(t, "the busy container's memory", func() bool {
		row = statsRow{}
		if err := json.Unmarshal([]byte(ok(t, root, "stats", "--no-stream", "--format", "json", "busy").stdout), &row); err != nil {
			t.Fatal(err)
		}
		return strings.HasSuffix(row.MemUsage, " / 64MiB") && !strings.HasPrefix(row.MemUsage, "0B") && !strings.HasPrefix(row.MemUsage, "1") // >= 8MiB
	})
	cpu, err := strconv.ParseFloat(strings.TrimSuffix(row.CPUPerc, "%"), 64)
	if err != nil || cpu < 20 || cpu > 250 {
		t.Errorf("busy loop CPU %q, want about one core", row.CPUPerc)
	}
	if row.Name != "busy" || row.Container != "busy" || row.ID != id[:12] || row.PIDs != "1" && row.PIDs != "2" {
		t.Errorf("stats json: %+v", row)
	}
	mem, _ := strconv.ParseFloat(strings.TrimSuffix(row.MemPerc, "%"), 64)
	if mem < 10 || mem > 100 {
		t.Errorf("MEM %% %q of 64MiB holding 8MB", row.MemPerc)
	}
	if !regexp.MustCompile(`^[0-9.]+k?B / [0-9.]+k?B$`).MatchString(row.NetIO) {
		t.Errorf("NET I/O %q", row.NetIO)
	}

	idle := ok(t, root, "stats", "--no-stream", "--no-trunc", "--format", "{{.ID}} {{.CPUPerc}} {{.PIDs}}", "idle").stdout
	if f := strings.Fields(idle); len(f) != 3 || len(f[0]) != 64 || f[2] != "1" {
		t.Errorf("stats --format of the idle container: %q", idle)
	} else if cpu, _ := strconv.ParseFloat(strings.TrimSuffix(f[1], "%"), 64); cpu > 5 {
		t.Errorf("idle container CPU %s", f[1])
	}
	if got := ok(t, root, "stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}", "gone").stdout; got != "gone 0.00% 0B / 0B 0\n" {
		t.Errorf("stats of a stopped container: %q", got)
	}
	if r := kiln(t, root, nil, "stats", "--no-stream", "nosuch"); r.code != 1 || !strings.Contains(r.stderr, "nosuch") {
		t.Errorf("stats of no container: exit %d, %s", r.code, r.stderr)
	}
	if r := kiln(t, root, nil, "stats", "--no-stream", "--format", "{{.Nope"); r.code != 2 {
		t.Errorf("stats with a bad --format: exit %d, %s", r.code, r.stderr)
	}
	statsStream(t, root)
	ok(t, root, "rm", "-f", "busy", "idle", "gone")
}

// statsStream checks the streaming mode: a cleared screen and a fresh table each second, until Ctrl-C.
func statsStream(t *testing.T, root string) {
	cmd := exec.Command(os.Args[0], "stats", "--format", "table {{.Name}}\t{{.PIDs}}", "idle")
	cmd.Env = append(os.Environ(), execEnv+"=1", "KILN_ROOT="+root)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	screens := make(chan string)
	go func() {
		defer close(screens)
		buf := make([]byte, 4096)
		var got string
		for {
			n, err := stdout.Read(buf)
			got += string(buf[:n])
			if strings.Count(got, "idle   1\n") >= 2 {
				screens <- got
				return
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case got, more := <-screens:
		if want := "\033[2J\033[HNAME   PIDS\nidle   1\n"; !more || got != want+want {
			t.Errorf("stats stream: %q", got)
		}
	case <-time.After(20 * time.Second):
		t.Error("stats stream: no two refreshes in 20 s")
	}
	cmd.Process.Signal(os.Interrupt) //nolint:errcheck // checked by Wait
	if err := cmd.Wait(); err != nil {
		t.Errorf("stats stream after Ctrl-C: %v", err)
	}
}
