package container

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/gofrs/flock"

	"github.com/kiln-build/kiln/cache/layer"
	"github.com/kiln-build/kiln/runtime"
)

// Stream is the "-" of docker's cp: a tar stream on standard input or output.
const Stream = "-"

// CopyOptions are docker's cp flags.
type CopyOptions struct {
	// FollowLink copies what src's last element links to, under src's name (cp -L); a symlink
	// is otherwise copied as itself. Earlier elements are always followed, inside the rootfs.
	FollowLink bool
	// Archive keeps the source's uid:gid (cp -a). Without it, as docker documents, what is
	// copied into a container belongs to 0:0 and what is copied to the host to the caller;
	// tar streams ("-") always carry the ids they hold.
	Archive bool
}

// CopyToHost copies src (a path in c) to dst on the host, or as a tar stream to w when dst is
// "-", with docker's cp rules: into dst when it is a directory, else as dst; "src/." copies
// the directory's contents. Every path in c resolves inside c's rootfs: a symlink in the
// container pointing to / never reaches the host's files.
func (c *Container) CopyToHost(ctx context.Context, src, dst string, w io.Writer, opts CopyOptions) (err error) {
	rootfs, release, err := c.rootfs(false)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, release()) }()
	o := copyOpts{follow: opts.FollowLink}
	if dst != Stream {
		if dst, err = filepath.Abs(dst); err != nil {
			return err
		}
		w = nil
		if !opts.Archive {
			o.owner = &owner{uid: os.Getuid(), gid: os.Getgid()}
		}
	}
	if err := copyTree(ctx, rootfs, src, dst, "/", w, o); err != nil {
		return fmt.Errorf("copy %s:%s: %w", c.Name, src, err)
	}
	return nil
}

// CopyFromHost copies src on the host (or, when src is "-", the tar stream r) to dst in c,
// running or not (a stopped or created one cannot start meanwhile); see CopyToHost for the rules.
func (c *Container) CopyFromHost(ctx context.Context, src string, r io.Reader, dst string, opts CopyOptions) (err error) {
	rootfs, release, err := c.rootfs(true)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, release()) }()
	if src != Stream {
		if src, err = filepath.Abs(src); err != nil {
			return err
		}
	}
	if src == Stream {
		err = extract(ctx, r, rootfs, dst)
	} else {
		o := copyOpts{follow: opts.FollowLink}
		if !opts.Archive {
			o.owner = &owner{} // root's
		}
		err = copyTree(ctx, "/", src, dst, rootfs, nil, o)
	}
	if err != nil {
		return fmt.Errorf("copy to %s:%s: %w", c.Name, dst, err)
	}
	return nil
}

// rootfs is the container's filesystem: a running one's own root (with its mounts), else its
// layers and upper dir mounted for the copy: read-only, or with write its own overlay
// read-write, holding the monitor's lock so that no start mounts the same upper dir meanwhile.
func (c *Container) rootfs(write bool) (string, func() error, error) {
	st, err := c.State()
	if err != nil {
		return "", nil, err
	}
	if st.Running() && st.Pid > 0 {
		return "/proc/" + strconv.Itoa(st.Pid) + "/root", func() error { return nil }, nil
	}
	if !write {
		return c.layersView(false)
	}
	lock, err := c.lockMonitor()
	if err != nil {
		return "", nil, err
	}
	if mounted, err := mountinfo.Mounted(filepath.Join(c.Spec.BundleDir, "rootfs")); err == nil && mounted {
		lock.Unlock() //nolint:errcheck // closing the lock file releases it too
		return "", nil, fmt.Errorf("container %s lost its monitor and its root filesystem is still mounted: remove it (kiln rm -f %s) or start it", c.Name, c.Name)
	}
	rootfs, release, err := c.layersView(true)
	if err != nil {
		lock.Unlock() //nolint:errcheck // closing the lock file releases it too
		return "", nil, err
	}
	return rootfs, func() error { return errors.Join(release(), lock.Unlock()) }, nil
}

// lockMonitor takes c's monitor lock, which a monitor holds for its life and a cp into the
// stopped container for the copy, or says that c is busy.
func (c *Container) lockMonitor() (*flock.Flock, error) {
	lock := flock.New(filepath.Join(c.dir, monitorLock), flock.SetPermissions(0o600))
	locked, err := lock.TryLock()
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", c.Name, err)
	}
	if !locked {
		return nil, fmt.Errorf("container %s is busy (starting, stopping, or a cp into it): retry once that is done", c.Name)
	}
	return lock, nil
}

// layersView mounts c's image layers with its upper dir on top in c's directory: read-only,
// or with write as c's own overlay (its upper and work dirs) read-write.
func (c *Container) layersView(write bool) (string, func() error, error) {
	// The name says whose view it is, so that a Remove or a start can unmount what a killed kiln left.
	dir, err := os.MkdirTemp(c.dir, fmt.Sprintf("%s%d-%d-", viewPrefix, os.Getpid(), procStart(os.Getpid())))
	if err != nil {
		return "", nil, err
	}
	var rootfs string
	var unmount func() error
	if write {
		rootfs, unmount, err = runtime.MountWritable(dir, c.Spec.Lower, c.Spec.Upper, c.Spec.Work, c.Spec.Volatile)
	} else {
		rootfs, unmount, err = runtime.MountLayers(dir, append(slices.Clone(c.Spec.Lower), c.Spec.Upper))
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("mount %s's filesystem: %w", c.Name, err)
	}
	return rootfs, func() error {
		if err := unmount(); err != nil {
			return fmt.Errorf("unmount %s's filesystem: %w", c.Name, err) // never remove through a mount that stayed
		}
		return os.RemoveAll(dir)
	}, nil
}

// viewPrefix starts the name of a layersView dir: .cp-<pid>-<process start>-<random>.
const viewPrefix = ".cp-"

// unmountAbandonedViews unmounts the layersViews under dir (a container's directory, or one
// being removed) whose kiln process is gone, and says whether anything is still mounted there.
func unmountAbandonedViews(dir string) (stillMounted bool, err error) {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return false, fmt.Errorf("read mounts: %w", err)
	}
	slices.SortFunc(mounts, func(a, b *mountinfo.Info) int { return len(b.Mountpoint) - len(a.Mountpoint) }) // deepest first
	for _, m := range mounts {
		rel, err := filepath.Rel(dir, m.Mountpoint)
		first, _, _ := strings.Cut(rel, string(filepath.Separator))
		if err != nil || !strings.HasPrefix(first, viewPrefix) || viewOwnerAlive(first) {
			stillMounted = true
			continue
		}
		if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return true, fmt.Errorf("unmount %s: %w", m.Mountpoint, err)
		}
	}
	return stillMounted, nil
}

// viewOwnerAlive reads the owner out of a layersView dir's name; a name it cannot read counts as alive.
func viewOwnerAlive(name string) bool {
	f := strings.SplitN(strings.TrimPrefix(name, viewPrefix), "-", 3)
	if len(f) < 3 {
		return true
	}
	pid, err1 := strconv.Atoi(f[0])
	start, err2 := strconv.ParseUint(f[1], 10, 64)
	return err1 != nil || err2 != nil || processAlive(pid, start)
}

// copyOpts choose how copyTree reads its source and whose the copies are.
type copyOpts struct {
	follow bool   // follow src's last element when it is a symlink
	owner  *owner // every entry's uid:gid; nil keeps the source's
}

// owner is a uid:gid that copied entries get.
type owner struct{ uid, gid int }

// copyTree copies src in srcRoot to dst in dstRoot ("/" is the host), or to w as a tar when dst is "-".
func copyTree(ctx context.Context, srcRoot, src, dst, dstRoot string, w io.Writer, o copyOpts) error {
	contents := strings.HasSuffix(src, "/.")
	name, into := path.Base(path.Clean("/"+src)), true
	from := src
	if o.follow || contents || strings.HasSuffix(src, "/") {
		// Its last element too, inside srcRoot: openParent confines it again, should it change.
		p, err := securejoin.SecureJoin(srcRoot, src)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(srcRoot, p)
		if err != nil {
			return err
		}
		from = "/" + rel
	}
	root, base, err := openParent(srcRoot, from)
	if err != nil {
		return err
	}
	defer root.Close()
	fi, err := root.Lstat(base)
	if err != nil {
		return err
	}
	if dst != Stream {
		if dst, name, into, err = destination(dstRoot, dst, name, fi.IsDir()); err != nil {
			return err
		}
	}
	if into && contents && fi.IsDir() {
		name = "."
	}
	pr, pw := io.Pipe()
	go func() {
		tw := &tarWriter{Writer: tar.NewWriter(pw), owner: o.owner}
		err := writeTree(ctx, root, base, name, tw)
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	if w != nil {
		_, err = io.Copy(w, pr)
		return err
	}
	return extract(ctx, pr, dstRoot, dst)
}

// openParent opens the directory holding p, its symlinks resolved inside rootfs, as an
// os.Root (which never leaves it), and returns p's last element in it.
func openParent(rootfs, p string) (*os.Root, string, error) {
	clean := path.Clean("/" + p)
	h, err := pathrs.OpenInRoot(rootfs, path.Dir(clean))
	if err != nil {
		return nil, "", err
	}
	defer h.Close()
	root, err := os.OpenRoot("/proc/self/fd/" + strconv.Itoa(int(h.Fd())))
	if err != nil {
		return nil, "", err
	}
	base := path.Base(clean)
	if base == "/" {
		base = "."
	}
	return root, base, nil
}

// destination applies docker's rules: into dst when it is a directory (into), else dst
// itself, whose parent must exist; it returns the directory to extract in and the top name.
func destination(rootfs, dst, srcName string, srcIsDir bool) (dir, name string, into bool, err error) {
	root, base, err := openParent(rootfs, dst)
	if err != nil {
		return "", "", false, fmt.Errorf("destination %s: %w", dst, err)
	}
	defer root.Close()
	fi, err := root.Stat(base)
	switch {
	case err == nil && fi.IsDir():
		return dst, srcName, true, nil
	case err == nil && srcIsDir:
		return "", "", false, fmt.Errorf("cannot copy a directory to the file %s", dst)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return "", "", false, err
	case err != nil && strings.HasSuffix(dst, "/"):
		return "", "", false, fmt.Errorf("destination directory %s does not exist", dst)
	}
	return path.Dir(path.Clean("/" + dst)), base, false, nil
}

// extract unpacks the tar r into dir (resolved inside rootfs), confined by layer.Apply.
func extract(ctx context.Context, r io.Reader, rootfs, dir string) error {
	h, err := pathrs.OpenInRoot(rootfs, dir)
	if err != nil {
		return fmt.Errorf("destination %s: %w", dir, err)
	}
	defer h.Close()
	_, err = layer.Apply(ctx, r, "/proc/self/fd/"+strconv.Itoa(int(h.Fd())), layer.ApplyOptions{Whiteouts: layer.DeleteWhiteouts})
	return err
}

// writeTree writes rel (in root, never followed if a symlink) and what it holds as name/….
func writeTree(ctx context.Context, root *os.Root, rel, name string, tw *tarWriter) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fi, err := root.Lstat(rel)
	if err != nil {
		return err
	}
	switch {
	case fi.Mode().IsRegular():
		return writeFile(root, rel, name, tw)
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := root.Readlink(rel)
		if err != nil {
			return err
		}
		return tw.header(fi, name, target)
	case fi.Mode()&fs.ModeSocket != 0:
		return nil // docker's cp skips sockets too
	case !fi.IsDir():
		return tw.header(fi, name, "")
	}
	if name != "." {
		if err := tw.header(fi, name+"/", ""); err != nil {
			return err
		}
	}
	d, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return err
	}
	slices.Sort(names)
	for _, n := range names {
		if err := writeTree(ctx, root, filepath.Join(rel, n), path.Join(name, n), tw); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes a regular file from the stat of the opened file, so header and data agree.
func writeFile(root *os.Root, rel, name string, tw *tarWriter) error {
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s changed while being copied", name)
	}
	if err := tw.header(fi, name, ""); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, f, fi.Size()); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// tarWriter writes copyTree's tar, with every entry's ids set to owner's unless it is nil.
type tarWriter struct {
	*tar.Writer
	owner *owner
}

func (tw *tarWriter) header(fi fs.FileInfo, name, link string) error {
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return err
	}
	hdr.Name, hdr.Uname, hdr.Gname = name, "", ""
	if tw.owner != nil {
		hdr.Uid, hdr.Gid = tw.owner.uid, tw.owner.gid
	}
	return tw.WriteHeader(hdr)
}
