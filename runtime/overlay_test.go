package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// manyLayers returns the busybox layer plus n layers that each add /layers/<i> and override /top.
func manyLayers(t *testing.T, n int) []string {
	t.Helper()
	base := t.TempDir()
	lower := []string{lowerDir(t)}
	for i := 0; i < n; i++ {
		// Long names on purpose: 120 of them overflow mount(2)'s one-page option string.
		dir := filepath.Join(base, fmt.Sprintf("snapshot-%03d-%s", i, strings.Repeat("x", 40)))
		if err := os.MkdirAll(filepath.Join(dir, "layers"), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "layers", fmt.Sprint(i)), nil, 0o644)
		os.WriteFile(filepath.Join(dir, "top"), []byte(fmt.Sprint(i)), 0o644)
		lower = append(lower, dir)
	}
	return lower
}

func TestRunManyLayers(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		lower := manyLayers(t, 120)
		for _, legacy := range []bool{false, true} {
			t.Run(fmt.Sprintf("legacy=%v", legacy), func(t *testing.T) {
				forceLegacyMount = legacy
				defer func() { forceLegacyMount = false }()
				s := testSpec(t, rt, state, "sh", "-c", "ls /layers | wc -l; cat /top")
				s.Lower = lower
				if st, out := run(t, s); st != 0 || out != "120\n119" {
					t.Errorf("status %d output %q, want 120 layers with the last on top", st, out)
				}
			})
		}
	})
}

// The upper dir holds whole files after a change to a lower file (no metacopy, no redirects).
func TestOverlayUpperHoldsWholeFiles(t *testing.T) {
	requireRoot(t)
	lower, dir := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(lower, "f"), []byte("0123456789"), 0o644)
	os.MkdirAll(filepath.Join(lower, "d"), 0o755)
	upper, work, bundle := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "bundle")
	os.MkdirAll(upper, 0o755)
	rootfs, err := mountRootfs(bundle, []string{lower}, upper, work)
	if err != nil {
		t.Fatal(err)
	}
	defer unmountRootfs(bundle)
	if err := os.Chmod(filepath.Join(rootfs, "f"), 0o600); err != nil { // metacopy would copy only metadata
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(rootfs, "d"), filepath.Join(rootfs, "e")); err == nil {
		t.Error("directory rename succeeded: redirect_dir should be off (EXDEV)")
	}
	if err := unmountRootfs(bundle); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(upper, "f")); err != nil || string(data) != "0123456789" {
		t.Errorf("upper f = %q, %v: want the whole file", data, err)
	}
}

// The fuse-overlayfs fallback (rootless, where the kernel refuses overlayfs) runs a container
// over the layers and leaves an upper dir the layer diff understands: whole files, a 0/0
// character device for a deleted lower file.
func TestRunFuseOverlay(t *testing.T) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	if _, err := exec.LookPath("fuse-overlayfs"); err != nil {
		t.Skip("fuse-overlayfs not installed (apt-get install fuse-overlayfs; `make test` does this)")
	}
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		forceFuseOverlay = true
		defer func() { forceFuseOverlay = false }()
		s := testSpec(t, rt, state, "sh", "-c", "rm /bin/true && echo new > /new && cat /new")
		if st, out := run(t, s); st != 0 || strings.TrimSpace(out) != "new" {
			t.Fatalf("status %d output %q", st, out)
		}
		if data, err := os.ReadFile(filepath.Join(s.Upper, "new")); err != nil || string(data) != "new\n" {
			t.Errorf("upper new = %q, %v", data, err)
		}
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(s.Upper, "bin", "true"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			t.Errorf("deleted /bin/true in upper: mode %o rdev %d, %v; want a 0/0 whiteout", st.Mode, st.Rdev, err)
		}
		for _, stub := range []string{"dev", "proc", "sys", ".wh.dev", ".wh.proc"} { // mount stubs, gone without a trace
			if _, err := os.Lstat(filepath.Join(s.Upper, stub)); !os.IsNotExist(err) {
				t.Errorf("upper holds %s: %v", stub, err)
			}
		}
		assertNoLeftovers(t, rt, state, s)
	})
}

// MountWritable changes a container's own upper dir (kernel overlayfs and the fuse-overlayfs
// fallback alike): after release the upper dir holds the new file and a 0/0 whiteout for the
// deleted lower one, as after a run, and nothing stays mounted.
func TestMountWritable(t *testing.T) {
	requireRoot(t)
	for _, fuse := range []bool{false, true} {
		t.Run(fmt.Sprintf("fuse=%v", fuse), func(t *testing.T) {
			if fuse {
				if _, err := exec.LookPath("fuse-overlayfs"); err != nil {
					t.Skip("fuse-overlayfs not installed (apt-get install fuse-overlayfs; `make test` does this)")
				}
				forceFuseOverlay = true
				defer func() { forceFuseOverlay = false }()
			}
			lower, dir := t.TempDir(), t.TempDir()
			os.WriteFile(filepath.Join(lower, "old"), []byte("old"), 0o644)
			upper, work, view := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "view")
			os.MkdirAll(upper, 0o755)
			rootfs, release, err := MountWritable(view, []string{lower}, upper, work, false)
			if err != nil {
				t.Fatal(err)
			}
			if isFuseMount(rootfs) != fuse {
				t.Errorf("fuse-overlayfs mount: %v, want %v", !fuse, fuse)
			}
			if err := os.WriteFile(filepath.Join(rootfs, "new"), []byte("new"), 0o644); err != nil {
				t.Error(err)
			}
			if err := os.Remove(filepath.Join(rootfs, "old")); err != nil {
				t.Error(err)
			}
			if err := release(); err != nil {
				t.Fatal(err)
			}
			if data, err := os.ReadFile(filepath.Join(upper, "new")); err != nil || string(data) != "new" {
				t.Errorf("upper new = %q, %v", data, err)
			}
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(upper, "old"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
				t.Errorf("deleted old in upper: mode %o rdev %d, %v; want a 0/0 whiteout", st.Mode, st.Rdev, err)
			}
			if _, err := os.Lstat(rootfs); !os.IsNotExist(err) {
				t.Errorf("release left %s: %v", rootfs, err)
			}
		})
	}
}
