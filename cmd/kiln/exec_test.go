package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/runtime"
)

// signalExecEnv makes the test binary act as kiln with main's signal handling, so a SIGTERMed
// `kiln run` stops its container as the real binary does.
const signalExecEnv = "KILN_CLI_TEST_EXEC_SIGNALS"

func init() {
	if os.Getenv(signalExecEnv) == "1" {
		ctx, stop := signalContext()
		code := execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
}

// startRun starts `kiln run ARGS...` in a child process and returns the container's id once it runs.
func startRun(t *testing.T, root string, args ...string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"run"}, args...)...)
	cmd.Env = append(os.Environ(), signalExecEnv+"=1", "KILN_ROOT="+root)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	rt, err := runtime.New(runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ents, _ := os.ReadDir(filepath.Join(root, "containers"))
		for _, e := range ents {
			c, err := rt.Load(e.Name())
			if err != nil {
				continue
			}
			st, err := c.State(context.Background())
			if err == nil && st.Status == runtime.StatusRunning {
				return e.Name(), cmd
			}
		}
	}
	t.Fatal("container did not start")
	return "", nil
}

func TestExecCommand(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	id, run := startRun(t, root, "--rm", "-e", "A=from-run", "-w", "/tmp", "busybox", "sleep", "30")
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{id[:12], "sh", "-c", "echo $A $(pwd) $(id -u)"}, 0, "from-run /tmp 0"},
		{[]string{"-e", "A=exec", "-u", "nobody", "-w", "/etc", id, "sh", "-c", "echo $A $(pwd) $(id -u)"}, 0, "exec /etc 65534"},
		{[]string{id, "sh", "-c", "exit 5"}, 5, ""},
		{[]string{id, "no-such-command"}, 127, ""},
		{[]string{"no-such-container", "true"}, 1, ""},
	} {
		r := kiln(t, root, nil, append([]string{"exec"}, tc.args...)...)
		if r.code != tc.code || strings.TrimSpace(r.stdout) != tc.out {
			t.Errorf("kiln exec %s: exit %d, stdout %q; want %d, %q\nstderr: %s", strings.Join(tc.args, " "), r.code, r.stdout, tc.code, tc.out, r.stderr)
		}
	}
	r := kiln(t, root, strings.NewReader("piped\n"), "exec", "-i", id, "cat")
	if r.code != 0 || r.stdout != "piped\n" {
		t.Errorf("exec -i: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	// A stopped container: its dir stays (no --rm) but it runs no more.
	run.Process.Signal(syscall.SIGTERM)
	run.Wait()
	id2, run2 := startRun(t, root, "busybox", "sleep", "30")
	run2.Process.Signal(syscall.SIGTERM)
	run2.Wait()
	r = kiln(t, root, nil, "exec", id2, "true")
	if want := "container " + id2[:12] + " is not running"; r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Errorf("exec in stopped container: exit %d, stderr %q; want 1, %q", r.code, r.stderr, want)
	}
}
