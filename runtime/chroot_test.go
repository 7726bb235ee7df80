package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// chrootRuntime is a Runtime on the chroot rung with its own state dir.
func chrootRuntime(t *testing.T) *Runtime {
	t.Helper()
	requireRoot(t)
	rt, err := New(Options{Isolation: IsolationChroot, StateDir: t.TempDir()})
	if err != nil {
		t.Skipf("chroot isolation does not work here: %v", err)
	}
	return rt
}

// chrootTree is a private copy of the busybox rootfs.
func chrootTree(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rootfs")
	if out, err := exec.Command("cp", "-a", lowerDir(t), dir).CombinedOutput(); err != nil {
		t.Fatalf("copy rootfs: %v: %s", err, out)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // the shared lower dir is a 0700 temp dir
		t.Fatal(err)
	}
	return dir
}

func chrootSpec(t *testing.T, rootfs string, args ...string) Spec {
	return Spec{ID: "chroot-" + filepath.Base(t.TempDir()), Rootfs: rootfs, BundleDir: t.TempDir(),
		Args: args, Network: NetworkHost, StopGrace: 500 * time.Millisecond}
}

func runChrootSpec(t *testing.T, rt *Runtime, s Spec) (ExitStatus, string) {
	t.Helper()
	var out bytes.Buffer
	s.Stdout, s.Stderr = &out, &out
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := rt.Run(ctx, s)
	var ce *CommandError
	if errors.As(err, &ce) && ce.Status == st {
		return st, ce.Msg // as the OCI runtimes' 126 and 127: the status, with the reason
	}
	if err != nil {
		t.Fatalf("Run(%v): %v\n%s", s.Args, err, out.String())
	}
	return st, out.String()
}

func TestChrootRun(t *testing.T) {
	rt := chrootRuntime(t)
	if got := rt.Isolation(); got != IsolationChroot {
		t.Fatalf("isolation = %s", got)
	}
	root := chrootTree(t)
	if err := os.WriteFile(filepath.Join(root, "marker"), []byte("inside\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := chrootSpec(t, root, "sh", "-c", "cat /marker; pwd; id -u; echo $HOME; echo out > /made; exit 3")
	s.Cwd, s.Env = "/work/dir", []string{"A=1"}
	st, out := runChrootSpec(t, rt, s)
	if st != 3 || out != "inside\n/work/dir\n0\n/root\n" {
		t.Fatalf("status %d, output %q", st, out)
	}
	if data, err := os.ReadFile(filepath.Join(root, "made")); err != nil || string(data) != "out\n" {
		t.Fatalf("the command's file in the tree: %q, %v", data, err)
	}
	s = chrootSpec(t, root, "id", "-u")
	s.User = "65534"
	if st, out := runChrootSpec(t, rt, s); st != 0 || out != "65534\n" {
		t.Fatalf("as nobody: status %d, output %q", st, out)
	}
	if st, out := runChrootSpec(t, rt, chrootSpec(t, root, "/no/such/command")); st != 127 {
		t.Fatalf("missing command: status %d (want 127), output %q", st, out)
	}
	if err := os.WriteFile(filepath.Join(root, "noexec"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, out := runChrootSpec(t, rt, chrootSpec(t, root, "/noexec")); st != 126 {
		t.Fatalf("not executable: status %d (want 126), output %q", st, out)
	}
	// The host's files stay out of reach of an ordinary process.
	if st, out := runChrootSpec(t, rt, chrootSpec(t, root, "ls", filepath.Dir(root))); st == 0 {
		t.Fatalf("the tree's parent is visible inside: %q", out)
	}
}

// TestChrootConfinement reads the credentials of a running chroot process from the host side:
// docker's default capabilities (none as non-root), no_new_privs and a seccomp filter.
func TestChrootConfinement(t *testing.T) {
	rt := chrootRuntime(t)
	root := chrootTree(t)
	for _, tc := range []struct {
		user, capEff string
	}{{"", "00000000a80425fb"}, {"65534", "0000000000000000"}} {
		os.Remove(filepath.Join(root, "go"))
		s := chrootSpec(t, root, "sh", "-c", "while [ ! -e /go ]; do sleep 0.01; done")
		s.User = tc.user
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		done := make(chan error, 1)
		go func() {
			st, err := rt.Run(ctx, s)
			if err == nil && st != 0 {
				err = fmt.Errorf("exit status %d", st)
			}
			done <- err
		}()
		status := chrootProcessStatus(t, root, done)
		os.WriteFile(filepath.Join(root, "go"), nil, 0o644) //nolint:errcheck // checked by the wait below
		if err := <-done; err != nil {
			t.Fatalf("user %q: %v", tc.user, err)
		}
		cancel()
		for _, want := range []string{"CapEff:\t" + tc.capEff, "CapBnd:\t00000000a80425fb", "NoNewPrivs:\t1", "Seccomp:\t2"} {
			if !strings.Contains(status, want+"\n") {
				t.Errorf("user %q: status lacks %q:\n%s", tc.user, want, status)
			}
		}
	}
}

// chrootProcessStatus polls for the process whose root is rootfs and returns its /proc status.
func chrootProcessStatus(t *testing.T, rootfs string, done <-chan error) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("the process ended before it was seen: %v", err)
		default:
		}
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if r, err := os.Readlink("/proc/" + e.Name() + "/root"); err != nil || r != rootfs {
				continue
			}
			data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
			if err == nil && strings.Contains(string(data), "Name:\tsh\n") {
				return string(data)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no process chrooted into the tree appeared")
	return ""
}

// TestChrootRefuses names what the chroot rung cannot do instead of doing less.
func TestChrootRefuses(t *testing.T) {
	rt := chrootRuntime(t)
	root := chrootTree(t)
	for name, mod := range map[string]func(*Spec){
		"mount":   func(s *Spec) { s.Mounts = []Mount{{Type: Tmpfs, Target: "/tmp"}} },
		"network": func(s *Spec) { s.Network = NetworkNone },
		"limits":  func(s *Spec) { s.Resources.Memory = 1 << 20 },
	} {
		s := chrootSpec(t, root, "true")
		mod(&s)
		if _, err := rt.Run(context.Background(), s); err == nil || !strings.Contains(err.Error(), "chroot isolation") {
			t.Errorf("%s: err = %v, want a chroot isolation refusal", name, err)
		}
	}
	if _, err := rt.Start(context.Background(), chrootSpec(t, root, "true")); err != ErrChrootNoContainers {
		t.Errorf("Start: err = %v", err)
	}
}

// TestPrepareChroot places device nodes and the /etc files, keeps the image's own aside and
// restores the tree exactly.
func TestPrepareChroot(t *testing.T) {
	rt := chrootRuntime(t)
	root := chrootTree(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(root, "etc/hosts"), []byte("image's own\n"), 0o600))
	os.RemoveAll(filepath.Join(root, "dev"))
	cf, err := rt.PrepareChroot(root)
	must(err)
	st, out := runChrootSpec(t, rt, chrootSpec(t, root, "sh", "-c", "echo x > /dev/null && test -c /dev/urandom && cat /etc/hosts"))
	if host, _ := os.ReadFile("/etc/hosts"); st != 0 || out != string(host) {
		t.Fatalf("status %d, /etc/hosts inside %q, want the host's", st, out)
	}
	for _, p := range []string{"etc/hosts", "etc/.kiln-chroot-hosts", "dev/null", "etc/resolv.conf"} {
		if !slices.Contains(cf.Paths, p) {
			t.Errorf("Paths %v lack %s", cf.Paths, p)
		}
	}
	must(cf.Restore())
	if data, err := os.ReadFile(filepath.Join(root, "etc/hosts")); err != nil || string(data) != "image's own\n" {
		t.Errorf("the image's /etc/hosts after Restore: %q, %v", data, err)
	}
	for _, gone := range []string{"dev", "etc/.kiln-chroot-hosts", "etc/resolv.conf"} {
		if _, err := os.Lstat(filepath.Join(root, gone)); !os.IsNotExist(err) {
			t.Errorf("%s left after Restore: %v", gone, err)
		}
	}
}

// BenchmarkProbeIsolation is what auto costs a root kiln on each start (it is not cached).
func BenchmarkProbeIsolation(b *testing.B) {
	for b.Loop() {
		probeIsolation()
	}
}

// TestCachedProbe keeps the probe's answer on disk and reads it back.
func TestCachedProbe(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	first := cachedProbe(dir)
	files, _ := filepath.Glob(filepath.Join(dir, "probe", "isolation-*.json"))
	if len(files) != 1 {
		t.Fatalf("probe records: %v", files)
	}
	// A record says what the next kiln of this process's kind finds, without probing.
	if err := os.WriteFile(files[0], []byte(`{"mounts":"recorded"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := cachedProbe(dir); got.Mounts != "recorded" {
		t.Errorf("cachedProbe = %+v (first %+v), want the record", got, first)
	}
}
