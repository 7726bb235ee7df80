package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
)

func TestRunCancel(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		ready := t.TempDir()
		s := testSpec(t, rt, state, "sh", "-c", "touch /ready/ok; exec sleep 100")
		s.Mounts = []Mount{{Type: Bind, Source: ready, Target: "/ready"}}
		os.MkdirAll(s.Upper, 0o755)
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			waitFor(t, filepath.Join(ready, "ok"))
			cancel()
		}()
		start := time.Now()
		st, err := rtOf(s).Run(ctx, s)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
		// sleep as PID 1 ignores SIGTERM: SIGKILL after the grace period.
		if st != 137 || time.Since(start) > 10*time.Second {
			t.Errorf("status %d after %v, want 137 soon", st, time.Since(start))
		}
		assertNoLeftovers(t, rt, state, s)
	})
}

// assertNoLeftovers checks that no mount, runtime state, cgroup or owner record remains.
func assertNoLeftovers(t *testing.T, rt, state string, s Spec) {
	t.Helper()
	if mounted, _ := mountinfo.Mounted(filepath.Join(s.BundleDir, "rootfs")); mounted {
		t.Errorf("rootfs still mounted")
	}
	if _, err := os.Stat(filepath.Join(s.BundleDir, "rootfs")); !os.IsNotExist(err) {
		t.Errorf("rootfs mountpoint left: %v", err)
	}
	out, err := exec.Command(rt, "--root", filepath.Join(state, rt), "list", "-q").Output()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("runtime still lists containers %q (%v)", out, err)
	}
	for _, parent := range cgroupParents() {
		if _, err := os.Stat(filepath.Join(parent, s.ID)); err == nil {
			t.Errorf("cgroup %s left", filepath.Join(parent, s.ID))
		}
	}
	if owners, _ := readOwners(state); len(owners) != 0 {
		t.Errorf("owner records left: %+v", owners)
	}
}

func waitFor(t *testing.T, file string) {
	for i := 0; i < 400; i++ {
		if _, err := os.Stat(file); err == nil {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Errorf("timed out waiting for %s", file)
}

// The container sees only stdio: no descriptor of kiln's leaks through the runtime.
func TestRunNoLeakedFDs(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		f, err := os.Open("/etc/hostname") // opened close-on-exec, as Go does for every file
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		s := testSpec(t, rt, state, "sh", "-c", "ls /proc/self/fd | tr '\\n' ' '")
		if st, out := run(t, s); st != 0 || out != "0 1 2 3 " { // 3 is ls's own directory handle
			t.Errorf("status %d, container fds %q, want only stdio", st, out)
		}
	})
}

const helperEnv = "KILN_RUNTIME_TEST_HELPER"

// TestHelperProcess is the child that TestCleanupAfterKill SIGKILLs in the middle of a run.
func TestHelperProcess(t *testing.T) {
	data := os.Getenv(helperEnv)
	if data == "" {
		t.Skip("helper process for TestCleanupAfterKill")
	}
	var s Spec
	if err := json.Unmarshal([]byte(data), &s); err != nil {
		t.Fatal(err)
	}
	if files := os.Getenv(helperEnv + "_FILES"); files != "" {
		json.Unmarshal([]byte(files), &s.Files) //nolint:errcheck // the test sees what is missing
	}
	testRuntime(t, os.Getenv(helperEnv+"_RT"), os.Getenv(helperEnv+"_STATE")).Run(context.Background(), s) //nolint:errcheck // killed before it returns
}

func TestCleanupAfterKill(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		ready := t.TempDir()
		s := testSpec(t, rt, state, "sh", "-c", "touch /ready/ok; exec sleep 100")
		s.Mounts = []Mount{{Type: Bind, Source: ready, Target: "/ready"}}
		s.Resources.PidsLimit = 50
		s.Files = []File{{Target: "/run/secrets/token", Data: []byte("s3cr3t")}}
		os.MkdirAll(s.Upper, 0o755)
		enc, _ := json.Marshal(s)
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
		files, _ := json.Marshal(s.Files) // a Spec never encodes its in-memory files
		cmd.Env = append(os.Environ(), helperEnv+"="+string(enc), helperEnv+"_RT="+rt, helperEnv+"_STATE="+state, helperEnv+"_FILES="+string(files))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, filepath.Join(ready, "ok"))
		cmd.Process.Kill()
		cmd.Wait()
		if mounted, _ := mountinfo.Mounted(filepath.Join(s.BundleDir, "rootfs")); !mounted {
			t.Fatal("the killed run should have left its rootfs mounted")
		}
		if mounted, _ := mountinfo.Mounted(filesDir(state, s.ID)); !mounted {
			t.Error("the killed run's in-memory files should still be mounted")
		}
		pid := containerPid(t, rt, state, s.ID)
		if err := stateRT(t, state).Cleanup(context.Background()); err != nil {
			t.Fatalf("Cleanup: %v", err)
		}
		assertNoLeftovers(t, rt, state, s)
		assertNoFiles(t, state, s.ID)
		time.Sleep(50 * time.Millisecond)
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			if st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); !strings.Contains(string(st), " Z ") {
				t.Errorf("container process %d still alive", pid)
			}
		}
	})
}

func containerPid(t *testing.T, rt, state, id string) int {
	out, err := exec.Command(rt, "--root", filepath.Join(state, rt), "state", id).Output()
	if err != nil {
		t.Fatalf("%s state: %v", rt, err)
	}
	var st struct{ Pid int }
	json.Unmarshal(out, &st)
	return st.Pid
}

// A context cancelled before the runtime has written the pid file (here: before Start) still
// stops the container the runtime goes on to create, with SIGTERM then SIGKILL, and reports 137
// rather than losing the status by killing the runtime mid-start.
func TestRunCancelledBeforeStart(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		warm := testSpec(t, rt, state, "true")
		if st, _ := run(t, warm); st != 0 { // the probe is cached: Start reaches the runtime at once
			t.Fatalf("warm-up run: status %d", st)
		}
		s := testSpec(t, rt, state, "sleep", "100")
		os.MkdirAll(s.Upper, 0o755)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		st, err := rtOf(s).Run(ctx, s)
		if !errors.Is(err, context.Canceled) || st != 137 {
			t.Errorf("status %d, err %v; want 137 and context.Canceled", st, err)
		}
		assertNoLeftovers(t, rt, state, s)
	})
}
