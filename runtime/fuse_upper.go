package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// opaqueXattrs are the opaque-directory marks of kernel overlayfs (as root, and in a user
// namespace) and of fuse-overlayfs run unprivileged.
var opaqueXattrs = []string{"trusted.overlay.opaque", "user.overlay.opaque", "user.fuseoverlayfs.opaque"}

// isFuseMount reports whether dir is the root of a FUSE mount (fuse-overlayfs).
func isFuseMount(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.FUSE_SUPER_MAGIC
}

// normalizeFuseUpper rewrites, after unmount, the upper dir fuse-overlayfs left into the form
// kernel overlayfs leaves, so a RUN step's layer is the same whichever mounted it: fuse-overlayfs
// marks every new directory opaque (with a ".wh..wh..opq" file) and whites out removed entries that
// no lower layer has (the mount stubs), where the kernel does neither. Opaque marks stay (as
// user.overlay.opaque) only on directories that replace one in a lower layer, whiteouts only over
// entries a lower layer has, and ".wh.x" files become 0/0 character devices.
func normalizeFuseUpper(upper string, lower []string) error {
	err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == upper {
			return err
		}
		rel, _ := filepath.Rel(upper, p)
		dir, name := filepath.Split(rel)
		switch {
		case d.IsDir():
			return normalizeOpaque(p, inLower(lower, rel), false)
		case name == ".wh..wh..opq":
			if err := os.Remove(p); err != nil {
				return err
			}
			return normalizeOpaque(filepath.Dir(p), dir != "" && inLower(lower, filepath.Clean(dir)), true)
		case strings.HasPrefix(name, ".wh.") || isWhiteout(p):
			target := strings.TrimPrefix(name, ".wh.")
			if err := os.Remove(p); err != nil {
				return err
			}
			if !inLower(lower, filepath.Join(dir, target)) {
				return nil // nothing below to hide
			}
			return unix.Mknod(filepath.Join(filepath.Dir(p), target), unix.S_IFCHR, 0)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("normalize fuse-overlayfs upper dir: %w", err)
	}
	return nil
}

// normalizeOpaque leaves dir marked opaque (user.overlay.opaque) if it replaces a lower dir and
// was marked, and unmarked otherwise.
func normalizeOpaque(dir string, replacesLower, marked bool) error {
	for _, x := range opaqueXattrs {
		if n, err := unix.Lgetxattr(dir, x, make([]byte, 8)); err == nil && n > 0 {
			marked = true
			unix.Lremovexattr(dir, x) //nolint:errcheck // rewritten below when it is kept
		}
	}
	if marked && replacesLower {
		return unix.Lsetxattr(dir, "user.overlay.opaque", []byte("y"), 0)
	}
	return nil
}

// isWhiteout reports a 0/0 character device, overlay's whiteout.
func isWhiteout(p string) bool {
	var st unix.Stat_t
	return unix.Lstat(p, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// inLower reports whether the merged lower layers (bottom first) show rel: the topmost layer
// that has an entry there decides, and a whiteout hides it.
func inLower(lower []string, rel string) bool {
	for i := len(lower) - 1; i >= 0; i-- {
		p := filepath.Join(lower[i], rel)
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return true // cannot tell: keep the mark, as the layer diff would
		}
		return !isWhiteout(p)
	}
	return false
}
