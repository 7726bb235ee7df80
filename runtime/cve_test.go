package runtime

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Tests named after the container-escape CVE classes they pin: each fails on the vulnerable
// behaviour, against every OCI runtime kiln can use.

// runtimeCanary is the host directory these tests' escapes aim at.
const runtimeCanary = "/tmp/kiln-canary-runtime"

// makeRuntimeCanary creates the canary (a secret file and empty dirs x/ and y/, which a stub
// cleaner fooled by a symlink would remove) and returns its fingerprint.
func makeRuntimeCanary(t *testing.T) string {
	t.Helper()
	if err := os.RemoveAll(runtimeCanary); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"x", "y"} {
		if err := os.MkdirAll(filepath.Join(runtimeCanary, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(runtimeCanary, "secret"), []byte("KILN-CANARY-SECRET\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(runtimeCanary) })
	return canaryPrint(t)
}

// canaryPrint fingerprints the canary: names, modes, sizes, contents and mtimes, so an
// entry created and removed again still shows.
func canaryPrint(t *testing.T) string {
	t.Helper()
	var lines []string
	err := filepath.Walk(runtimeCanary, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v %d %d", p, fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			line += " " + string(b)
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatalf("canary: %v", err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func checkRuntimeCanary(t *testing.T, before string) {
	t.Helper()
	if after := canaryPrint(t); after != before {
		t.Errorf("the host canary %s changed:\nbefore:\n%s\nafter:\n%s", runtimeCanary, before, after)
	}
}

func fileSHA(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// layerDir makes an extra lower layer from files (name → content; "->target" makes a symlink,
// a name ending in / a directory).
func layerDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(name, "/"):
			err = os.MkdirAll(p, 0o755)
		case strings.HasPrefix(content, "->"):
			err = os.Symlink(strings.TrimPrefix(content, "->"), p)
		default:
			err = os.WriteFile(p, []byte(content), 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestCVE_2019_5736_ProcSelfExe: a container process must not be able to open for writing
// the binary of a host process that enters the container (runc's /proc/self/exe overwrite).
// The image makes every `exec` run the runtime's own binary (#!/proc/self/exe), while the
// container's first process grabs /proc/PID/exe of every process it did not start and tries
// to reopen it for writing through /proc/self/fd. It only opens (O_APPEND, no data), so a
// vulnerable runtime is detected without being damaged.
func TestCVE_2019_5736_ProcSelfExe(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		bin, err := exec.LookPath(rt)
		if err != nil {
			t.Fatal(err)
		}
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		before := map[string]string{bin: fileSHA(t, bin), self: fileSHA(t, self)}
		// No fork in the scan loop: a busybox loop that forks per process misses the runtime's
		// short-lived processes. Held binaries rotate through fds 4-9 and are retried each round
		// (a running binary refuses writers with ETXTBSY; the 2019 exploit wrote after it exited).
		grab := `
printf '#!/proc/self/exe\n' > /evil && chmod 755 /evil
touch /ready
n=0
while [ ! -e /stop ]; do
  for p in /proc/[0-9]*; do
    [ "$p" = /proc/1 ] && continue
    command exec 3<"$p/exe" 2>/dev/null || continue
    [ /proc/self/fd/3 -ef /bin/busybox ] && continue
    n=$((n % 6 + 4)); eval "command exec $n<&3"
    echo "HELD $(readlink /proc/self/fd/3)"
  done
  for fd in 4 5 6 7 8 9; do
    [ -e /proc/self/fd/$fd ] || continue
    true 2>/dev/null >>/proc/self/fd/$fd && echo "WROTE $(readlink /proc/self/fd/$fd)"
  done
done
echo finished`
		s := testSpec(t, rt, state, "sh", "-c", grab)
		out := &lockedBuffer{}
		s.Stdout, s.Stderr = out, io.Discard
		stop := runContainerInBackground(t, s)
		waitFor(t, filepath.Join(s.Upper, "ready"))
		for i := range 20 {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			var eout bytes.Buffer
			st, err := execIn(ctx, t, state, s.ID, ExecSpec{Args: []string{"/evil"}, Stdout: &eout, Stderr: &eout})
			if i == 0 { // a patched runtime cannot even run itself from inside: its exe is out of reach
				t.Logf("exec of #!/proc/self/exe: status %d, err %v, %q", st, err, eout.String())
			}
			_, _ = execIn(ctx, t, state, s.ID, ExecSpec{Args: []string{"true"}})
			cancel()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, _ = execIn(ctx, t, state, s.ID, ExecSpec{Args: []string{"touch", "/stop"}})
		cancel()
		if err := stop(); err != nil {
			t.Logf("stop: %v", err)
		}
		got := out.String()
		if strings.Contains(got, "WROTE") {
			t.Errorf("the container reopened a host process's binary for writing:\n%s", got)
		}
		for p, sum := range before {
			if fileSHA(t, p) != sum {
				t.Errorf("host binary %s changed", p)
			}
		}
		t.Logf("binaries the container could hold: %d\n%s", strings.Count(got, "HELD"), got)
	})
}

// lockedBuffer is a bytes.Buffer the container's output goroutine and the test can share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestCVE_2024_21626_LeakedFdsAndCwd: no process in a container sees a descriptor beyond
// stdio, and a working directory of /proc/self/fd/N (which reached the host through a leaked
// descriptor in runc before 1.1.12) either fails or stays inside the rootfs, for the first
// process and for exec'd ones.
func TestCVE_2024_21626_LeakedFdsAndCwd(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		canary := makeRuntimeCanary(t)
		// From a host directory, enough ../ reach the host's root and the canary.
		probe := "pwd; cat ../../../../../../../../../.." + runtimeCanary + "/secret 2>/dev/null; " +
			"echo pwned > ../../../../../../../../../.." + runtimeCanary + "/secret 2>/dev/null; " +
			"for i in $(seq 3 64); do [ -e /proc/self/fd/$i ] && echo LEAKED fd $i; done; true"
		for n := 3; n <= 9; n++ {
			s := testSpec(t, rt, state, "sh", "-c", probe)
			s.Cwd = fmt.Sprintf("/proc/self/fd/%d", n)
			if err := os.MkdirAll(s.Upper, 0o755); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			s.Stdout, s.Stderr = &out, &out
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			st, err := rtOf(s).Run(ctx, s)
			cancel()
			if err == nil && st == 0 && (strings.Contains(out.String(), "KILN-CANARY-SECRET") || strings.Contains(out.String(), "LEAKED")) {
				t.Errorf("cwd %s: the process reached the host or holds kiln's descriptors:\n%s", s.Cwd, out.String())
			}
			t.Logf("cwd %s: status %d, err %v: %s", s.Cwd, st, err, strings.TrimSpace(out.String()))
		}
		s := testSpec(t, rt, state, "sleep", "30")
		startContainer(t, s)
		for n := 3; n <= 9; n++ {
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			st, err := execIn(ctx, t, state, s.ID, ExecSpec{Args: []string{"sh", "-c", probe}, Cwd: fmt.Sprintf("/proc/self/fd/%d", n), Stdout: &out, Stderr: &out})
			cancel()
			if err == nil && st == 0 && (strings.Contains(out.String(), "KILN-CANARY-SECRET") || strings.Contains(out.String(), "LEAKED")) {
				t.Errorf("exec with cwd /proc/self/fd/%d: the process reached the host or holds kiln's descriptors:\n%s", n, out.String())
			}
		}
		// [ -e ] only stats, so the check itself opens no descriptor.
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		st, err := execIn(ctx, t, state, s.ID, ExecSpec{Args: []string{"sh", "-c", "for i in $(seq 0 64); do [ -e /proc/self/fd/$i ] && echo -n \"$i \"; done; true"}, Stdout: &out, Stderr: &out})
		cancel()
		if err != nil || st != 0 || out.String() != "0 1 2 " {
			t.Errorf("exec'd process: status %d, err %v, fds %q; want only 0 1 2", st, err, out.String())
		}
		checkRuntimeCanary(t, canary)
	})
}

// TestCVE_2025_31133_MaskedPathsThroughSymlinks: the 2025 runc series (CVE-2025-31133,
// -52565, -52881) redirected the mounts that mask /proc files by replacing their targets
// (/dev/null, /dev/console, /proc files) with symlinks. An image that ships those paths as
// symlinks to the very files masking should hide must still see them masked or read-only.
func TestCVE_2025_31133_MaskedPathsThroughSymlinks(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		hostCore, err := os.ReadFile("/proc/sys/kernel/core_pattern")
		if err != nil {
			t.Fatal(err)
		}
		evil := layerDir(t, map[string]string{
			"dev/null":           "->/proc/sys/kernel/core_pattern",
			"dev/console":        "->/proc/sysrq-trigger",
			"dev/pts/ptmx":       "->/proc/sys/kernel/core_pattern",
			"proc/kcore":         "->/fake/kcore",
			"proc/sysrq-trigger": "->/fake/sysrq",
			"proc/sys/":          "",
			"fake/kcore":         "NOT MASKED",
			"fake/sysrq":         "NOT MASKED",
			"sys/firmware":       "->/fake",
		})
		check := `
grep -q '^proc /proc proc' /proc/mounts || echo "/proc is not procfs"
for f in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug; do
  [ -e $f ] || continue
  n=$(head -c 64 $f 2>/dev/null | wc -c); [ "$n" = 0 ] || echo "UNMASKED $f ($n bytes)"
done
for d in /proc/acpi /proc/scsi /sys/firmware; do
  [ -d $d ] && [ -n "$(ls -A $d 2>/dev/null)" ] && echo "UNMASKED $d: $(ls -A $d | head -3)"
done
(echo > /proc/sysrq-trigger) 2>/dev/null && echo "WRITABLE /proc/sysrq-trigger"
(cat /proc/sys/kernel/core_pattern > /proc/sys/kernel/core_pattern) 2>/dev/null && echo "WRITABLE core_pattern"
(echo x > /dev/null) 2>/dev/null || echo "/dev/null is not writable"
[ -c /dev/null ] || echo "/dev/null is not a device"
echo checked`
		for _, user := range []string{"", "nobody"} {
			s := testSpec(t, rt, state, "sh", "-c", check)
			s.Lower = append(s.Lower, evil)
			s.User = user
			st, out := run(t, s)
			if st != 0 || !strings.Contains(out, "checked") || strings.Count(out, "\n") != 1 {
				t.Errorf("user %q: status %d, want every masked path masked and read-only:\n%s", user, st, out)
			}
		}
		if now, _ := os.ReadFile("/proc/sys/kernel/core_pattern"); !bytes.Equal(now, hostCore) {
			t.Errorf("host core_pattern changed: %q, was %q", now, hostCore)
		}
	})
}

// TestCVE_2024_23652_MountStubTeardown: after a run, kiln removes the empty mount points it
// created (stubs) and the directories overlay copied up only to hold them. BuildKit's cleaner
// followed symlinks the container had planted in the meantime and removed host files. Here the
// container swaps the stubs' parent for a link to the host canary, whose empty dirs x/ and y/
// a cleaner that follows it would remove.
func TestCVE_2024_23652_MountStubTeardown(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		canary := makeRuntimeCanary(t)
		lower := layerDir(t, map[string]string{"link": "->var", "var/x/": "", "var/y/": "", "deep/x/": ""})
		bindSrc := t.TempDir()
		swap := "rm /link && ln -s " + runtimeCanary + " /link; " +
			"mv /deep /deep.old 2>/dev/null; rm -rf /deep 2>/dev/null; ln -s " + runtimeCanary + " /deep 2>/dev/null; " +
			"rm -rf /etc && ln -s " + runtimeCanary + " /etc 2>/dev/null; echo swapped"
		s := testSpec(t, rt, state, "sh", "-c", swap)
		s.Lower = append(s.Lower, lower)
		s.Mounts = []Mount{
			{Type: Tmpfs, Target: "/link/x/stub"},
			{Type: Bind, Source: bindSrc, Target: "/link/y/stub/deeper"},
			{Type: Tmpfs, Target: "/deep/x/stub"},
		}
		st, out := run(t, s)
		t.Logf("status %d: %s", st, out)
		checkRuntimeCanary(t, canary)
		if ents, _ := os.ReadDir(bindSrc); len(ents) != 0 {
			t.Errorf("bind source changed: %v", ents)
		}
	})
}

// TestCVE_2026_41579_DevSymlink: runc before 1.3.6 set up /dev (device nodes, ptmx, the
// /dev/fd links) through an image's /dev symlink before pivot_root, so on the host. An image
// whose /dev, /proc or /sys is a symlink to a host directory must leave that directory alone.
func TestCVE_2026_41579_DevSymlink(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		canary := makeRuntimeCanary(t)
		for _, d := range []string{"dev", "proc", "sys"} {
			for _, target := range []string{runtimeCanary + "/x", "../../../../../.." + runtimeCanary + "/y"} {
				s := testSpec(t, rt, state, "true")
				s.Lower = append(s.Lower, layerDir(t, map[string]string{d: "->" + target}))
				if err := os.MkdirAll(s.Upper, 0o755); err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				st, err := rtOf(s).Run(ctx, s)
				cancel()
				t.Logf("/%s -> %s: status %d, %v", d, target, st, err)
				checkRuntimeCanary(t, canary)
			}
		}
	})
}
