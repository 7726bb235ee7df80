package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// stubs are mount points that kiln or the runtime creates in the rootfs only to mount over them
// (/proc, /etc/hosts, bind targets...). Removed after the run while still empty, so they do not
// turn up in the layer diff of a RUN step (buildkit does the same).
type stubs struct {
	rootfs, upper string
	paths         []string // missing before the run, deepest last
	parents       []string // existing dirs that get stubs (copied up into the upper dir by overlay)
}

// findStubs records which mount destinations (and their parents) do not exist in rootfs yet.
func findStubs(rootfs string, s Spec) *stubs {
	dests := []string{"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}
	for _, m := range defaultMounts() {
		dests = append(dests, m.Destination)
	}
	for _, m := range s.Mounts {
		dests = append(dests, path.Clean(m.Target))
	}
	st := &stubs{rootfs: rootfs}
	if len(s.Lower) > 0 {
		st.upper = s.Upper
	}
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return st
	}
	defer root.Close()
	for _, d := range dests {
		for p := d; p != "/" && p != "."; p = path.Dir(p) {
			if _, err := root.Lstat(strings.TrimPrefix(p, "/")); err == nil {
				if p != d {
					st.addParent(p)
				}
				break
			}
			if !slices.Contains(st.paths, p) {
				st.paths = append(st.paths, p)
			}
		}
	}
	return st
}

// remove deletes the recorded stubs that are still empty, children before parents.
func (st *stubs) remove() error {
	if len(st.paths) == 0 {
		return nil
	}
	root, err := os.OpenRoot(st.rootfs)
	if err != nil {
		return fmt.Errorf("open rootfs to remove mount stubs: %w", err)
	}
	defer root.Close()
	paths := slices.Clone(st.paths)
	slices.SortFunc(paths, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, p := range paths {
		rel := strings.TrimPrefix(p, "/")
		fi, err := root.Lstat(rel)
		if err != nil {
			continue
		}
		if fi.Mode().IsRegular() && fi.Size() != 0 {
			continue // the process wrote data there: keep it
		}
		if err := root.Remove(rel); err != nil && !isNotEmpty(err) && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove mount stub %s: %w", p, err)
		}
	}
	return nil
}

func isNotEmpty(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && (errors.Is(pe.Err, syscall.ENOTEMPTY) || errors.Is(pe.Err, syscall.EEXIST))
}

// addParent records an existing directory that will receive stubs, unless the upper dir already
// holds it: then the overlay's copy-up is this run's doing and can be undone.
func (st *stubs) addParent(p string) {
	if st.upper == "" || slices.Contains(st.parents, p) {
		return
	}
	if _, err := os.Lstat(filepath.Join(st.upper, p)); errors.Is(err, fs.ErrNotExist) {
		st.parents = append(st.parents, p)
	}
}

// pruneUpper runs after unmount: a directory that overlay copied up only to hold stubs is left
// empty and non-opaque in the upper dir; removing it lets the lower dir show through unchanged,
// so the layer diff stays free of it.
func (st *stubs) pruneUpper() error {
	if len(st.parents) == 0 {
		return nil
	}
	upper, err := unix.Open(st.upper, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open upper dir to prune stub parents: %w", err)
	}
	defer unix.Close(upper)
	paths := slices.Clone(st.parents)
	slices.SortFunc(paths, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, p := range paths {
		if err := pruneDir(upper, strings.TrimPrefix(p, "/")); err != nil {
			return fmt.Errorf("prune %s from upper dir: %w", p, err)
		}
	}
	return nil
}

// noLinks resolves inside the upper dir without following any symlink: the container may have
// replaced a stub's parent by a link to a host directory (CVE-2024-23652 in BuildKit), and what
// is reached through a link is not the directory kiln's mounts made.
var noLinks = &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
	Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}

// pruneDir removes rel from the upper dir when it is an empty, non-opaque directory reached
// without symlinks; anything else is left alone.
func pruneDir(upper int, rel string) error {
	fd, err := unix.Openat2(upper, rel, noLinks)
	if err != nil {
		return ignoreGone(err)
	}
	opaque, _ := unix.Fgetxattr(fd, "trusted.overlay.opaque", make([]byte, 8))
	if opaque <= 0 { // overlay in a user namespace (rootless) marks opaque dirs with user.* xattrs
		opaque, _ = unix.Fgetxattr(fd, "user.overlay.opaque", make([]byte, 8))
	}
	unix.Close(fd)
	if opaque > 0 {
		return nil
	}
	dir, base := path.Split(rel)
	if dir == "" {
		dir = "."
	}
	pfd, err := unix.Openat2(upper, dir, noLinks)
	if err != nil {
		return ignoreGone(err)
	}
	defer unix.Close(pfd)
	return ignoreGone(unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR))
}

// ignoreGone drops the errors of a directory that is gone, not empty, not a directory or
// reached only through a link.
func ignoreGone(err error) error {
	for _, e := range []error{unix.ENOTEMPTY, unix.ENOENT, unix.ENOTDIR, unix.EEXIST, unix.ELOOP, unix.EXDEV} {
		if errors.Is(err, e) {
			return nil
		}
	}
	return err
}
