package runtime

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startContainer runs s in the background until the test ends and waits until it runs.
func startContainer(t *testing.T, s Spec) {
	t.Helper()
	stop := runContainerInBackground(t, s)
	t.Cleanup(func() { stop() })
}

// runContainerInBackground starts s and returns the function that stops it and returns Run's error.
func runContainerInBackground(t testing.TB, s Spec) (stop func() error) {
	t.Helper()
	if err := os.MkdirAll(s.Upper, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c, err := rtOf(s).Start(ctx, s)
	if err != nil {
		cancel()
		t.Fatalf("Start: %v", err)
	}
	if st, err := c.State(ctx); err != nil || st.Pid <= 0 {
		cancel()
		t.Fatalf("container exited early: %v", err)
	}
	var runErr error
	stopped := false
	return func() error {
		if !stopped {
			cancel()
			_, runErr = c.Wait(context.Background())
			stopped = true
		}
		return runErr
	}
}

func TestExec(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		s := testSpec(t, rt, state, "sleep", "30")
		s.Env = []string{"FROM_CONTAINER=1", "SHARED=container"}
		s.Cwd = "/tmp"
		startContainer(t, s)
		cases := []struct {
			name string
			p    ExecSpec
			want string
			code ExitStatus
		}{
			{"echo", ExecSpec{Args: []string{"echo", "hi"}}, "hi\n", 0},
			{"env", ExecSpec{Args: []string{"sh", "-c", "echo $FROM_CONTAINER $SHARED $EXTRA $HOME"},
				Env: []string{"SHARED=exec", "EXTRA=x"}}, "1 exec x /root\n", 0},
			{"container cwd", ExecSpec{Args: []string{"pwd"}}, "/tmp\n", 0},
			{"cwd", ExecSpec{Args: []string{"pwd"}, Cwd: "/etc"}, "/etc\n", 0},
			{"user name", ExecSpec{Args: []string{"sh", "-c", "id -u; id -g; echo $HOME"}, User: "nobody"}, "65534\n65534\n/nonexistent\n", 0},
			{"user ids", ExecSpec{Args: []string{"sh", "-c", "id -u; id -g"}, User: "1234:5678"}, "1234\n5678\n", 0},
			{"same pid namespace", ExecSpec{Args: []string{"sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"}}, "sleep 30 ", 0},
			{"same caps", ExecSpec{Args: []string{"grep", "CapEff", "/proc/self/status"}}, "CapEff:\t00000000a80425fb\n", 0},
			{"no_new_privs", ExecSpec{Args: []string{"grep", "NoNewPrivs", "/proc/self/status"}}, "NoNewPrivs:\t1\n", 0},
			{"seccomp", ExecSpec{Args: []string{"grep", "^Seccomp:", "/proc/self/status"}}, "Seccomp:\t2\n", 0},
			{"exit code", ExecSpec{Args: []string{"sh", "-c", "exit 3"}}, "", 3},
			{"signal", ExecSpec{Args: []string{"sh", "-c", "kill -9 $$"}}, "", 137},
			{"not found", ExecSpec{Args: []string{"no-such-command"}}, "", 127},
			{"not executable", ExecSpec{Args: []string{"/etc/passwd"}}, "", 126},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				var out bytes.Buffer
				c.p.Stdout, c.p.Stderr = &out, &bytes.Buffer{}
				st, err := execIn(context.Background(), t, state, s.ID, c.p)
				var ce *CommandError
				if c.code == 126 || c.code == 127 {
					if !errors.As(err, &ce) || ce.Status != st || !strings.Contains(ce.Msg, c.p.Args[0]) {
						t.Fatalf("Exec of a command that cannot run: %d, %v; want a CommandError naming it", st, err)
					}
				} else if err != nil {
					t.Fatalf("Exec: %v", err)
				}
				if st != c.code || (c.code == 0 && out.String() != c.want) {
					t.Errorf("status %d output %q, want %d %q", st, out.String(), c.code, c.want)
				}
			})
		}
	})
}

func TestExecErrors(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		_, err := execIn(context.Background(), t, state, "missing", ExecSpec{Args: []string{"true"}})
		if !errors.Is(err, ErrNotRunning) || err.Error() != "container missing is not running" {
			t.Errorf("exec in missing container: %v", err)
		}
		if _, err := stateOf(t, state, "missing"); !errors.Is(err, ErrNotRunning) {
			t.Errorf("state of missing container: %v", err)
		}
		if err := killIn(t, state, "missing", syscall.SIGTERM); !errors.Is(err, ErrNotRunning) {
			t.Errorf("kill missing container: %v", err)
		}
		s := testSpec(t, rt, state, "sleep", "30")
		startContainer(t, s)
		_, err = execIn(context.Background(), t, state, s.ID, ExecSpec{Args: []string{"true"}, User: "nosuchuser"})
		if err == nil || !strings.Contains(err.Error(), "unable to find user nosuchuser") {
			t.Errorf("unknown user: %v", err)
		}
		if _, err := execIn(context.Background(), t, state, s.ID, ExecSpec{Args: []string{"true"}, Cwd: "rel"}); err == nil {
			t.Error("relative cwd accepted")
		}
		// The runtime refuses an exec into a frozen container: told as not running, as the
		// state query before every exec used to.
		c, err := stateRT(t, state).Load(s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Pause(context.Background()); err != nil {
			t.Skipf("no freezer: %v", err)
		}
		_, err = c.Exec(context.Background(), ExecSpec{Args: []string{"true"}})
		if err := c.Resume(context.Background()); err != nil {
			t.Fatal(err)
		}
		if !errors.Is(err, ErrNotRunning) {
			t.Errorf("exec in a paused container: %v", err)
		}
		if _, err := c.Exec(context.Background(), ExecSpec{Args: []string{"true"}}); err != nil {
			t.Errorf("exec after resume: %v", err)
		}
	})
}

func TestExecCancelAndKill(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		s := testSpec(t, rt, state, "sleep", "30")
		startContainer(t, s)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		// The shell traps nothing: SIGTERM ends it.
		_, err := execIn(ctx, t, state, s.ID, ExecSpec{Args: []string{"sleep", "20"}, StopGrace: time.Second})
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
			t.Errorf("cancelled exec: %v after %v", err, time.Since(start))
		}
		out := &bytes.Buffer{}
		if _, err := execIn(context.Background(), t, state, s.ID, ExecSpec{Args: []string{"ps", "-o", "args"}, Stdout: out}); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String(), "sleep 20") {
			t.Errorf("cancelled exec left its process:\n%s", out)
		}
		if err := killIn(t, state, s.ID, syscall.SIGKILL); err != nil {
			t.Fatalf("Kill: %v", err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := stateOf(t, state, s.ID); errors.Is(err, ErrNotRunning) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Error("container still known after Kill")
	})
}
