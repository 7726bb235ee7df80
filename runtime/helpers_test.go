package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/testimage"
)

// runtimes are the OCI runtimes every container test runs against.
var runtimes = []string{"crun", "runc"}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts overlayfs and runs OCI runtimes")
	}
}

// requireRuntime skips when the runtime is missing or does not work on this host (and says why).
func requireRuntime(t testing.TB, name, stateDir string) {
	t.Helper()
	requireRoot(t)
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed", name)
	}
	r, info, err := runnerFor(path, stateDir)
	if err != nil {
		t.Skipf("%s: %v", name, err)
	}
	if reason := probe(context.Background(), r, info, stateDir); reason != "" {
		t.Skipf("%s does not work on this host: %s", name, reason)
	}
}

// busyboxLower is one shared busybox layer for the whole test binary.
var busyboxLower string

func lowerDir(t testing.TB) string {
	t.Helper()
	if busyboxLower == "" {
		dir, err := os.MkdirTemp("", "kiln-runtime-lower-")
		if err != nil {
			t.Fatal(err)
		}
		testimage.BusyboxRootfs(t, dir)
		busyboxLower = dir
	}
	return busyboxLower
}

// testSpec returns a spec over the busybox layer with fresh upper/work/bundle dirs.
func testSpec(t testing.TB, runtime, stateDir string, args ...string) Spec {
	t.Helper()
	dir := t.TempDir()
	// Cgroups are global: the pid keeps ids apart from other test binaries running at once.
	id := fmt.Sprintf("t%d-%s", os.Getpid(), filepath.Base(dir))
	specRuntimes.Store(id, testRuntime(t, runtime, stateDir))
	return Spec{
		ID:        id,
		Lower:     []string{lowerDir(t)},
		Upper:     filepath.Join(dir, "upper"),
		Work:      filepath.Join(dir, "work"),
		BundleDir: filepath.Join(dir, "bundle"),
		Args:      args,
		StopGrace: 500 * time.Millisecond,
	}
}

// run runs s and returns its status and combined output, failing on kiln errors.
func run(t testing.TB, s Spec) (ExitStatus, string) {
	t.Helper()
	if err := os.MkdirAll(s.Upper, 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s.Stdout, s.Stderr = &out, &out
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := rtOf(s).Run(ctx, s)
	var ce *CommandError
	if errors.As(err, &ce) && ce.Status == st {
		return st, out.String() // 127 or 126, with the runtime's reason
	}
	if err != nil {
		t.Fatalf("Run(%v): %v\n%s", s.Args, err, out.String())
	}
	return st, out.String()
}

func TestMain(m *testing.M) {
	ChrootHook() // chroot-rung tests re-execute the test binary, as kiln re-executes itself
	code := m.Run()
	if busyboxLower != "" {
		os.RemoveAll(busyboxLower)
	}
	os.Exit(code)
}

// specRuntimes maps the ids of testSpec's specs to the Runtime they run with (tests only).
var specRuntimes sync.Map

// testRuntime is the Runtime of one OCI runtime and state dir, one per test state dir.
func testRuntime(t testing.TB, name, stateDir string) *Runtime {
	t.Helper()
	key := name + "\x00" + stateDir
	if r, ok := specRuntimes.Load(key); ok {
		return r.(*Runtime)
	}
	r, err := New(Options{StateDir: stateDir, Runtime: name})
	if err != nil {
		t.Fatal(err)
	}
	specRuntimes.Store(key, r)
	return r
}

// rtOf is the Runtime testSpec chose for s.
func rtOf(s Spec) *Runtime {
	r, ok := specRuntimes.Load(s.ID)
	if !ok {
		panic("spec " + s.ID + " was not made by testSpec")
	}
	return r.(*Runtime)
}

// stateRT is a Runtime over stateDir for Load and Cleanup, which need no particular OCI runtime.
func stateRT(t testing.TB, stateDir string) *Runtime { return testRuntime(t, "", stateDir) }

func stateOf(t testing.TB, stateDir, id string) (ContainerState, error) {
	c, err := stateRT(t, stateDir).Load(id)
	if err != nil {
		return ContainerState{}, err
	}
	return c.State(context.Background())
}

func execIn(ctx context.Context, t testing.TB, stateDir, id string, p ExecSpec) (ExitStatus, error) {
	c, err := stateRT(t, stateDir).Load(id)
	if err != nil {
		return -1, err
	}
	return c.Exec(ctx, p)
}

func killIn(t testing.TB, stateDir, id string, sig syscall.Signal) error {
	c, err := stateRT(t, stateDir).Load(id)
	if err != nil {
		return err
	}
	return c.Kill(context.Background(), sig)
}
