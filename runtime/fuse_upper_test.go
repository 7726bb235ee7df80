package runtime

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// What fuse-overlayfs leaves unprivileged becomes what kernel overlayfs leaves: new dirs are not
// opaque, a dir replacing a lower one stays opaque, whiteouts stay only over lower entries.
func TestNormalizeFuseUpper(t *testing.T) {
	requireRoot(t) // mknod of the 0/0 whiteout
	lower, upper := t.TempDir(), t.TempDir()
	for _, d := range []string{"replaced/old", "kept"} {
		os.MkdirAll(filepath.Join(lower, d), 0o755)
	}
	os.WriteFile(filepath.Join(lower, "gone"), nil, 0o644)
	for _, d := range []string{"new", "replaced"} {
		os.MkdirAll(filepath.Join(upper, d), 0o755)
		os.WriteFile(filepath.Join(upper, d, ".wh..wh..opq"), nil, 0o700)
		unix.Lsetxattr(filepath.Join(upper, d), "user.fuseoverlayfs.opaque", []byte("y"), 0)
	}
	for _, w := range []string{".wh.gone", ".wh.stub"} {
		os.WriteFile(filepath.Join(upper, w), nil, 0)
	}
	if err := unix.Mknod(filepath.Join(upper, "kept-stub"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	if err := normalizeFuseUpper(upper, []string{lower}); err != nil {
		t.Fatal(err)
	}
	opaque := func(d string) bool {
		n, err := unix.Lgetxattr(filepath.Join(upper, d), "user.overlay.opaque", make([]byte, 8))
		return err == nil && n == 1
	}
	if opaque("new") || !opaque("replaced") {
		t.Errorf("opaque: new %v (want false), replaced %v (want true)", opaque("new"), opaque("replaced"))
	}
	for _, gone := range []string{"new/.wh..wh..opq", "replaced/.wh..wh..opq", ".wh.gone", ".wh.stub", "stub", "kept-stub"} {
		if _, err := os.Lstat(filepath.Join(upper, gone)); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", gone, err)
		}
	}
	if !isWhiteout(filepath.Join(upper, "gone")) {
		t.Error("the whiteout of a lower file is not a 0/0 device")
	}
}
