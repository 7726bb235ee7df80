package layer

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// mountOverlay mounts an overlay of lowers (top first) at merged, with upper/work when
// upper is set, and unmounts it at cleanup. It prefers metacopy=off,redirect_dir=off,
// which the store uses so that an upper dir holds whole files and plain whiteouts.
func mountOverlay(t *testing.T, merged, upper, work string, lowers ...string) func() {
	t.Helper()
	base := "lowerdir=" + strings.Join(lowers, ":")
	if upper != "" {
		base += ",upperdir=" + upper + ",workdir=" + work
	}
	var err error
	for _, extra := range []string{",metacopy=off,redirect_dir=off", ""} {
		if err = unix.Mount("overlay", merged, "overlay", 0, base+extra); err == nil {
			break
		}
	}
	if err != nil {
		t.Skipf("cannot mount overlayfs here: %v", err)
	}
	done := false
	unmount := func() {
		if !done {
			done = true
			must(t, unix.Unmount(merged, 0))
		}
	}
	t.Cleanup(unmount)
	return unmount
}

// overlayLower builds the lower layer the overlay test changes.
func overlayLower(t *testing.T, dir string) {
	t.Helper()
	buildTree(t, dir)
	putFile(t, filepath.Join(dir, "rmfile"), "delete me", 0o644)
	putFile(t, filepath.Join(dir, "rmdir/a/b"), "deep delete", 0o644)
	putFile(t, filepath.Join(dir, "recreate/old1"), "hidden after rmdir", 0o644)
	putFile(t, filepath.Join(dir, "recreate/sub/old2"), "hidden too", 0o644)
	putFile(t, filepath.Join(dir, "mv-src"), "moved", 0o644)
	putFile(t, filepath.Join(dir, "append"), "first\n", 0o644)
	putFile(t, filepath.Join(dir, "chmod-me"), "mode", 0o644)
	putFile(t, filepath.Join(dir, "attr-me"), "attr", 0o644)
	putFile(t, filepath.Join(dir, "file-to-dir"), "becomes a dir", 0o644)
	putFile(t, filepath.Join(dir, "dir-to-file/x"), "becomes a file", 0o644)
}

// overlayWrites changes the merged view in every way a RUN step can.
func overlayWrites(t *testing.T, m string) {
	t.Helper()
	p := func(s string) string { return filepath.Join(m, s) }
	putFile(t, p("new/deep/a/b/file"), "new file", 0o640)
	putFile(t, p("new/suid"), "#!/bin/sh\n", 0o4755)
	putFile(t, p("new/empty"), "", 0o600)
	must(t, os.Link(p("new/deep/a/b/file"), p("new/hardlink")))
	must(t, os.Symlink("deep/a/b/file", p("new/symlink")))
	must(t, unix.Mkfifo(p("new/fifo"), 0o600))
	must(t, unix.Lsetxattr(p("new/empty"), "user.x", []byte("new attr"), 0))
	must(t, os.Remove(p("rmfile")))
	must(t, os.RemoveAll(p("rmdir")))
	must(t, os.RemoveAll(p("recreate")))
	putFile(t, p("recreate/fresh"), "after rmdir", 0o644)
	must(t, os.Rename(p("mv-src"), p("etc/mv-dst")))
	f, err := os.OpenFile(p("append"), os.O_APPEND|os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteString("second\n")
	must(t, err)
	must(t, f.Close())
	must(t, os.Chmod(p("chmod-me"), 0o600))
	must(t, unix.Lsetxattr(p("attr-me"), "user.x", []byte("copied up"), 0))
	must(t, os.Lchown(p("bin/tool"), 5, 6))
	must(t, unix.Chmod(p("bin/tool"), 0o4711)) // chown dropped setuid
	must(t, os.Remove(p("file-to-dir")))
	putFile(t, p("file-to-dir/inside"), "now a dir", 0o644)
	must(t, os.RemoveAll(p("dir-to-file")))
	putFile(t, p("dir-to-file"), "now a file", 0o644)
	must(t, os.Remove(p("deep/a/b/c/d/e/f")))
}

// TestOverlayRoundTrip changes a real overlay, packs its upper dir with Diff and checks that
// both ways of applying the layer reproduce the merged view.
func TestOverlayRoundTrip(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts overlayfs")
	}
	base := t.TempDir()
	dirs := map[string]string{}
	for _, d := range []string{"lower", "upper", "work", "merged", "flat", "snap", "view"} {
		dirs[d] = filepath.Join(base, d)
		must(t, os.Mkdir(dirs[d], 0o755))
	}
	overlayLower(t, dirs["lower"])
	unmount := mountOverlay(t, dirs["merged"], dirs["upper"], dirs["work"], dirs["lower"])
	overlayWrites(t, dirs["merged"])
	want := snapshotTree(t, dirs["merged"])
	unmount()

	data, p := packDir(t, dirs["upper"], WriteOptions{})
	if p.Empty {
		t.Fatal("diff of a changed upper dir is empty")
	}
	// Flatten: the layer on top of a copy of lower, deleting what it whites out.
	if out, err := exec.Command("cp", "-a", dirs["lower"]+"/.", dirs["flat"]).CombinedOutput(); err != nil {
		t.Fatalf("copy lower: %v: %s", err, out)
	}
	mustApply(t, data, dirs["flat"], DeleteWhiteouts)
	if d := diffTrees(want, snapshotTree(t, dirs["flat"])); d != "" {
		t.Errorf("flattened layer differs from the merged view:\n%s", d)
	}
	// Snapshot: the layer alone, stacked over lower by overlayfs as the store does.
	mustApply(t, data, dirs["snap"], OverlayWhiteouts)
	checkOverlayMarkers(t, dirs["snap"])
	mountOverlay(t, dirs["view"], "", "", dirs["snap"], dirs["lower"])
	if d := diffTrees(want, snapshotTree(t, dirs["view"])); d != "" {
		t.Errorf("snapshot stacked on lower differs from the merged view:\n%s", d)
	}
}

// checkOverlayMarkers asserts the whiteouts and opaque dirs a snapshot must carry.
func checkOverlayMarkers(t *testing.T, snap string) {
	t.Helper()
	for _, name := range []string{"rmfile", "rmdir", "deep/a/b/c/d/e/f"} {
		var st unix.Stat_t
		err := unix.Lstat(filepath.Join(snap, name), &st)
		if err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			t.Errorf("%s: want a 0/0 whiteout device, got mode %o rdev %d err %v", name, st.Mode, st.Rdev, err)
		}
	}
	buf := make([]byte, 4)
	n, err := unix.Lgetxattr(filepath.Join(snap, "recreate"), "trusted.overlay.opaque", buf)
	if err != nil || !bytes.Equal(buf[:n], []byte("y")) {
		t.Errorf("recreate: want trusted.overlay.opaque=y, got %q %v", buf[:max(n, 0)], err)
	}
	if _, err := os.Lstat(filepath.Join(snap, "recreate/old1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("opaque dir holds a lower entry: %v", err)
	}
}

// TestDiffRefusesRedirects checks that Diff fails loudly on upper dirs it cannot represent.
func TestDiffRefusesRedirects(t *testing.T) {
	for _, attr := range []string{"user.overlay.redirect", "user.overlay.metacopy", "trusted.overlay.metacopy"} {
		if strings.HasPrefix(attr, "trusted.") && os.Geteuid() != 0 {
			continue // only root may set trusted.* xattrs
		}
		upper := t.TempDir()
		putFile(t, filepath.Join(upper, "d/f"), "x", 0o644)
		must(t, unix.Lsetxattr(filepath.Join(upper, "d"), attr, []byte("/elsewhere"), 0))
		var buf bytes.Buffer
		err := Diff(t.Context(), upper, NewWriter(&buf, WriteOptions{}))
		if err == nil || !strings.Contains(err.Error(), "redirect_dir=off") {
			t.Errorf("%s: Diff = %v, want an error naming the mount options", attr, err)
		}
	}
}

// TestDiffTreeMatchesOverlay makes the same change to a real overlay and, in place, to a plain
// copy of its lower dir (the chroot rung), and checks that DiffTree writes byte for byte the
// layer Diff writes from the upper dir.
func TestDiffTreeMatchesOverlay(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts overlayfs")
	}
	base := t.TempDir()
	dirs := map[string]string{}
	for _, d := range []string{"lower", "upper", "work", "merged", "tree"} {
		dirs[d] = filepath.Join(base, d)
		must(t, os.Mkdir(dirs[d], 0o755))
	}
	overlayLower(t, dirs["lower"])
	if out, err := exec.Command("cp", "-a", dirs["lower"]+"/.", dirs["tree"]).CombinedOutput(); err != nil {
		t.Fatalf("copy lower: %v: %s", err, out)
	}
	unmount := mountOverlay(t, dirs["merged"], dirs["upper"], dirs["work"], dirs["lower"])
	overlayWrites(t, dirs["merged"])
	unmount()
	idx, err := IndexTree(t.Context(), dirs["tree"])
	must(t, err)
	overlayWrites(t, dirs["tree"])

	// Whiteouts carry the time of the deletion, which the tree no longer has: clamp all times.
	epoch := time.Unix(1e9, 0)
	opts := WriteOptions{SourceDateEpoch: &epoch}
	want, wp := packDir(t, dirs["upper"], opts)
	if wp.Empty {
		t.Fatal("the overlay's upper dir is empty")
	}
	var got bytes.Buffer
	if _, err := Pack(t.Context(), &got, Uncompressed, 0, opts, func(w *Writer) error { return DiffTree(t.Context(), idx, w) }); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, got.Bytes()) {
		t.Fatalf("DiffTree differs from Diff of the overlay upper dir:\nwant\n%s\ngot\n%s", tarListing(t, want), tarListing(t, got.Bytes()))
	}
	// No change, no entries.
	idx, err = IndexTree(t.Context(), dirs["tree"])
	must(t, err)
	var empty bytes.Buffer
	p, err := Pack(t.Context(), &empty, Uncompressed, 0, opts, func(w *Writer) error { return DiffTree(t.Context(), idx, w) })
	if err != nil || !p.Empty {
		t.Fatalf("diff of an unchanged tree: %+v, %v\n%s", p, err, tarListing(t, empty.Bytes()))
	}
}

func tarListing(t *testing.T, data []byte) string {
	t.Helper()
	var b strings.Builder
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		fmt.Fprintf(&b, "%c %s %o %d:%d %d %s %v\n", h.Typeflag, h.Name, h.Mode, h.Uid, h.Gid, h.Size, h.Linkname, h.PAXRecords)
	}
	return b.String()
}
