package layer

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/testimage"
	"golang.org/x/sys/unix"
)

// TestApplyGNUTar unpacks archives made by GNU tar in its gnu (long-name extensions) and
// posix formats, with names and link targets longer than the ustar fields.
func TestApplyGNUTar(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("GNU tar not installed")
	}
	src := t.TempDir()
	buildTree(t, src)
	long := strings.Repeat("long-directory-name/", 12) + strings.Repeat("f", 120)
	putFile(t, filepath.Join(src, long), "deep", 0o644)
	must(t, os.Symlink(long, filepath.Join(src, "long-link")))
	must(t, os.Link(filepath.Join(src, long), filepath.Join(src, "hard-to-long")))
	want := snapshotTree(t, src)
	for _, format := range []string{"gnu", "posix"} {
		t.Run(format, func(t *testing.T) {
			out, err := exec.Command("tar", "-C", src, "--format="+format, "--xattrs", "--xattrs-include=user.*", "--xattrs-include=security.capability",
				"--numeric-owner", "-cf", "-", ".").Output()
			if err != nil {
				t.Fatalf("tar: %v", err)
			}
			dst := t.TempDir()
			mustApply(t, out, dst, DeleteWhiteouts)
			if d := diffTrees(want, snapshotTree(t, dst)); d != "" {
				t.Errorf("GNU tar %s archive unpacked differently:\n%s", format, d)
			}
		})
	}
}

// TestApplyImageLayer unpacks the gzip blob go-containerregistry makes for the test image,
// the same path a pulled layer takes.
func TestApplyImageLayer(t *testing.T) {
	img := testimage.Busybox(t)
	layers, err := img.Layers()
	must(t, err)
	dst := t.TempDir()
	for _, l := range layers {
		rc, err := l.Compressed()
		must(t, err)
		r, err := Decompress(rc)
		must(t, err)
		_, err = Apply(context.Background(), r, dst, ApplyOptions{Whiteouts: DeleteWhiteouts})
		must(t, err)
		must(t, r.Close())
		must(t, rc.Close())
	}
	want := t.TempDir()
	testimage.BusyboxRootfs(t, want)
	// The layer's /tmp is sticky; BusyboxRootfs's os.Chmod(0o1777) drops that bit.
	must(t, unix.Chmod(filepath.Join(want, "tmp"), 0o1777))
	if d := diffTrees(snapshotTree(t, want), snapshotTree(t, dst)); d != "" {
		t.Errorf("image layer unpacked differently from the busybox rootfs:\n%s", d)
	}
	// Pack the unpacked tree again: the result must unpack to the same tree.
	data, _ := packDir(t, dst, WriteOptions{})
	again := t.TempDir()
	if _, err := Apply(context.Background(), bytes.NewReader(data), again, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := diffTrees(snapshotTree(t, dst), snapshotTree(t, again)); d != "" {
		t.Errorf("repacked tree differs:\n%s", d)
	}
}
