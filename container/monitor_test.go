package container

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/testimage"
	"github.com/kiln-build/kiln/runtime"
)

// newRunnable creates a container over a busybox rootfs that runs args.
func newRunnable(t *testing.T, restart RestartPolicy, args ...string) (*Store, *Container) {
	t.Helper()
	return newRunnableWith(t, Config{Restart: restart, Args: args, Spec: runtime.Spec{Args: args}})
}

// newRunnableWith creates a container of cfg (its Spec's Args set) over a busybox rootfs.
func newRunnableWith(t *testing.T, cfg Config) (*Store, *Container) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: containers mount overlayfs and create namespaces")
	}
	lower := t.TempDir()
	testimage.BusyboxRootfs(t, lower)
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Image, cfg.Spec.Lower, cfg.Spec.Network = "busybox", []string{lower}, runtime.NetworkNone
	c, err := s.Create(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func TestSuperviseRestartsAndRecords(t *testing.T) {
	s, c := newRunnable(t, RestartPolicy{Name: RestartOnFailure, MaximumRetryCount: 1}, "sh", "-c", "echo run; exit 4")
	var out bytes.Buffer
	code, err := s.Supervise(context.Background(), testRuntime(t), c, Streams{Stdout: &out})
	if err != nil || code != 4 {
		t.Fatalf("Supervise = %d, %v", code, err)
	}
	st, _ := c.State()
	if st.Status != StatusExited || st.ExitCode != 4 || st.RestartCount != 1 || st.MonitorLost || st.FinishedAt.Before(st.StartedAt) {
		t.Errorf("state: %+v", st)
	}
	var logs bytes.Buffer
	c.Logs(context.Background(), LogOptions{Tail: -1}, &logs, &logs)
	if out.String() != "run\nrun\n" || logs.String() != out.String() {
		t.Errorf("terminal %q, log %q", out.String(), logs.String())
	}
}

func TestStopDuringSuperviseWithFollower(t *testing.T) {
	s, c := newRunnable(t, RestartPolicy{Name: RestartAlways}, "sh", "-c", "echo up; exec sleep 30")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := s.Supervise(ctx, testRuntime(t), c, Streams{})
		done <- result{code, err}
	}()
	var followed bytes.Buffer
	followDone := make(chan error, 1)
	go func() {
		followDone <- c.Logs(context.Background(), LogOptions{Follow: true, Tail: -1}, &followed, &followed)
	}()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if st, _ := c.State(); st.Pid > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no pid recorded")
		}
	}
	// Stop asks the monitor through its control socket and returns once the exit is recorded.
	if err := s.Stop(context.Background(), testRuntime(t), c, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.State(); st.Running() {
		t.Errorf("Stop returned before the exit was recorded: %+v", st)
	}
	res := <-done
	if res.err != nil || res.code != 137 { // sleep as pid 1 ignores SIGTERM: killed after the timeout
		t.Errorf("stopped Supervise = %d, %v", res.code, res.err)
	}
	if err := <-followDone; err != nil || !strings.Contains(followed.String(), "up\n") {
		t.Errorf("follower: %q, %v", followed.String(), err)
	}
	if st, _ := c.State(); st.Status != StatusExited || st.RestartCount != 0 {
		t.Errorf("restart=always came back after a stop: %+v", st)
	}
	if err := s.Remove(context.Background(), testRuntime(t), c, false); err != nil {
		t.Fatal(err)
	}
}

// testRuntime is one runtime per test, with its own state dir.
func testRuntime(t *testing.T) *runtime.Runtime {
	t.Helper()
	if rt, ok := runtimes[t.Name()]; ok {
		return rt
	}
	rt, err := runtime.New(runtime.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	runtimes[t.Name()] = rt
	return rt
}

var runtimes = map[string]*runtime.Runtime{}
