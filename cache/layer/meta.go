package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// metadata sets owner, mode, xattrs and (except for dirs, which wait) mtime of a new entry.
func (a *applier) metadata(pfd int, name, base string, hdr *tar.Header) error {
	if a.euid == 0 {
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.EINVAL) { // the id has no mapping in this (rootless) user namespace
				return fmt.Errorf("chown to %d:%d: %w: the id is not mapped in kiln's user namespace; give your user subordinate ids in /etc/subuid and /etc/subgid (usermod --add-subuids, --add-subgids)", hdr.Uid, hdr.Gid, err)
			}
			return fmt.Errorf("chown: %w", err)
		}
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// After chown, which clears setuid and setgid bits.
		if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode&0o7777), 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if err := setXattrs(pfd, base, hdr); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeDir {
		a.dirs = append(a.dirs, dirTimes{name: name, mtime: hdr.ModTime})
		return nil
	}
	return setMtime(pfd, base, hdr.ModTime)
}

// setXattrs applies SCHILY.xattr records. Attributes the filesystem or our privileges do
// not allow (trusted.* unprivileged, security.* without support) are skipped, as docker does.
func setXattrs(pfd int, base string, hdr *tar.Header) error {
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if strings.HasPrefix(name, "trusted.overlay.") {
			continue // a layer must not forge overlayfs's own markers
		}
		err := unix.Lsetxattr(procPath(pfd, base), name, []byte(v), 0)
		if err != nil && !errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	return nil
}

// procPath names base inside an open dir without resolving the dir's path again: the
// /proc/self/fd link is the directory itself, and l*xattr calls do not follow base.
func procPath(pfd int, base string) string {
	return "/proc/self/fd/" + strconv.Itoa(pfd) + "/" + base
}

func setMtime(pfd int, base string, mtime time.Time) error {
	ts := unix.NsecToTimespec(mtime.UnixNano())
	if err := unix.UtimesNanoAt(pfd, base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set mtime: %w", err)
	}
	return nil
}

// finishDirs sets directory mtimes, deepest first, now that nothing more is written in them.
func (a *applier) finishDirs() error {
	a.closeParent()
	for i := len(a.dirs) - 1; i >= 0; i-- {
		d := a.dirs[i]
		parent, base := splitParent(d.name)
		f, err := resolveDir(a.root, parent)
		if err != nil {
			continue // removed by a later whiteout
		}
		err = setMtime(int(f.Fd()), base, d.mtime) // not following: a later entry may be a link
		f.Close()
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("%s: %w", d.name, err)
		}
	}
	return nil
}

// whiteout records or performs the deletion of dir/name.
func (a *applier) whiteout(dir, name string) error {
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return fmt.Errorf("invalid whiteout for %q", name)
	}
	target := name
	if dir != "" {
		target = dir + "/" + name
	}
	if a.opts.Whiteouts == DeleteWhiteouts {
		a.closeParent()
		f, err := resolveDir(a.root, dir)
		if err != nil {
			return nil // no parent dir, so nothing to delete
		}
		defer f.Close()
		if err := removeAllAt(int(f.Fd()), name); err != nil {
			return fmt.Errorf("whiteout: %w", err)
		}
		return nil
	}
	pfd, err := a.parentDir(dir)
	if err != nil {
		return err
	}
	if _, err := clearPath(pfd, name, false); err != nil {
		return err
	}
	if a.euid != 0 {
		return nil // a 0/0 device needs CAP_MKNOD; unprivileged snapshots cannot hide files
	}
	if err := unix.Mknodat(pfd, name, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("whiteout: %w", err)
	}
	a.created[target] = true
	return nil
}

// opaque hides what lower layers hold in dir.
func (a *applier) opaque(dir string) error {
	if a.opts.Whiteouts == DeleteWhiteouts {
		return a.clearLower(dir)
	}
	parent, base := splitParent(dir)
	pfd, err := a.parentDir(parent)
	if err != nil {
		return err
	}
	if dir == "" {
		return nil // the root of a snapshot hides nothing: it is the bottom of its own stack
	}
	if err := unix.Mkdirat(pfd, base, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	err = unix.Lsetxattr(procPath(pfd, base), "trusted.overlay.opaque", []byte("y"), 0)
	if errors.Is(err, unix.EPERM) {
		// Root in a user namespace (rootless): overlay mounted there reads the user.* xattrs.
		err = unix.Lsetxattr(procPath(pfd, base), "user.overlay.opaque", []byte("y"), 0)
	}
	if err != nil && a.euid == 0 {
		return fmt.Errorf("mark %s opaque: %w", dir, err)
	}
	return nil
}

// clearLower deletes dir's children that this layer did not write.
func (a *applier) clearLower(dir string) error {
	a.closeParent()
	h, err := resolveDir(a.root, dir)
	if err != nil {
		return nil // nothing below to hide
	}
	defer h.Close()
	fd, err := unix.Openat(int(h.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), dir)
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, n := range names {
		child := n
		if dir != "" {
			child = dir + "/" + n
		}
		if !a.created[child] {
			if err := removeAllAt(int(h.Fd()), n); err != nil {
				return err
			}
		}
	}
	return nil
}
