package layer

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// inRoot resolves paths the way a container sees them: openat2 with RESOLVE_IN_ROOT treats
// dir as "/", so absolute symlinks (var/run -> /run) and ".." stay inside it, as in
// docker and containerd. os.Root would instead reject such links as escapes.
const inRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// openRoot opens the unpack target as the anchor of every later lookup.
func openRoot(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return os.NewFile(uintptr(fd), dir), nil
}

// resolveDir opens rel (a clean relative path, "" for the root) as a directory handle,
// following symlinks without leaving root.
func resolveDir(root *os.File, rel string) (*os.File, error) {
	if rel == "" {
		rel = "."
	}
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: inRoot}
	for {
		fd, err := unix.Openat2(int(root.Fd()), rel, how)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue // EAGAIN: a concurrent rename elsewhere on the system; just retry
		}
		if errors.Is(err, unix.ENOSYS) {
			return nil, errors.New("kernel lacks openat2 (Linux 5.6+ is needed to unpack layers safely)")
		}
		if err != nil {
			return nil, &os.PathError{Op: "resolve", Path: rel, Err: err}
		}
		return os.NewFile(uintptr(fd), rel), nil
	}
}

// mkdirAll returns a handle on rel, creating missing directories (mode 0755) inside root.
func mkdirAll(root *os.File, rel string) (*os.File, error) {
	f, err := resolveDir(root, rel)
	if !errors.Is(err, unix.ENOENT) {
		return f, err
	}
	parent, err := resolveDir(root, "")
	if err != nil {
		return nil, err
	}
	prefix := ""
	for _, el := range strings.Split(rel, "/") {
		prefix = strings.TrimPrefix(prefix+"/"+el, "/")
		next, err := resolveDir(root, prefix)
		if errors.Is(err, unix.ENOENT) {
			// Only el is missing: parent is already resolved inside root.
			if err := unix.Mkdirat(int(parent.Fd()), el, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				parent.Close()
				return nil, &os.PathError{Op: "mkdir", Path: prefix, Err: err}
			}
			next, err = resolveDir(root, prefix)
		}
		parent.Close()
		if err != nil {
			return nil, fmt.Errorf("%w (a dangling symlink or a file where a directory should be)", err)
		}
		parent = next
	}
	return parent, nil
}

// splitParent splits a relative slash path into its parent ("" for top level) and base.
func splitParent(p string) (string, string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

// removeAllAt removes base in the directory pfd and, for a directory, everything below it,
// never following a symlink.
func removeAllAt(pfd int, base string) error {
	err := unix.Unlinkat(pfd, base, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(fd), base)
	defer d.Close()
	names, err := d.Readdirnames(-1) // all at once: deleting while reading may skip names
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := removeAllAt(fd, n); err != nil {
			return err
		}
	}
	err = unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}
