package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// WhiteoutMode chooses how Apply materializes OCI whiteouts.
type WhiteoutMode int

const (
	// OverlayWhiteouts keeps deletions as overlayfs markers, for snapshots used as lower dirs:
	// .wh.x becomes a 0/0 character device x, .wh..wh..opq the xattr trusted.overlay.opaque=y.
	OverlayWhiteouts WhiteoutMode = iota
	// DeleteWhiteouts performs deletions, for flattening layers into one tree: .wh.x removes
	// x, .wh..wh..opq removes what earlier layers put in the dir.
	DeleteWhiteouts
)

// ApplyOptions choose how Apply writes a layer.
type ApplyOptions struct {
	Whiteouts WhiteoutMode
}

// Apply extracts an uncompressed layer tar into dir, which must exist, and returns the
// number of bytes it read. Nothing outside dir is ever created, changed or followed: paths
// resolve with dir as "/" (a link to /run means dir/run), an entry's last element is
// replaced rather than followed, and hard links must name files inside dir. Ownership and device nodes need
// root and are skipped without it.
func Apply(ctx context.Context, r io.Reader, dir string, opts ApplyOptions) (int64, error) {
	return apply(ctx, r, dir, opts, os.Geteuid())
}

// apply is Apply for a given effective uid, so tests running as root can also check what
// an unprivileged unpack skips.
func apply(ctx context.Context, r io.Reader, dir string, opts ApplyOptions, euid int) (int64, error) {
	root, err := openRoot(dir)
	if err != nil {
		return 0, fmt.Errorf("apply layer: %w", err)
	}
	defer root.Close()
	cr := &countingReader{r: r}
	a := &applier{root: root, opts: opts, euid: euid, created: map[string]bool{}, in: cr}
	defer a.closeParent()
	tr := tar.NewReader(cr)
	for {
		if err := ctx.Err(); err != nil {
			return cr.n, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return cr.n, fmt.Errorf("apply layer: read tar: %w", err)
		}
		if err := a.entry(hdr, tr); err != nil {
			return cr.n, fmt.Errorf("apply layer: %s: %w", hdr.Name, err)
		}
	}
	if err := a.finishDirs(); err != nil {
		return cr.n, fmt.Errorf("apply layer: %w", err)
	}
	return cr.n, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// dirTimes remembers a directory's mtime; it is set last, after its contents are written.
type dirTimes struct {
	name  string
	mtime time.Time
}

type applier struct {
	root    *os.File // the unpack dir; every path resolves inside it (see resolveDir)
	opts    ApplyOptions
	euid    int
	created map[string]bool // paths this layer wrote, which an opaque marker must keep
	in      *countingReader // the raw stream, to tell real data from synthesized holes
	dirs    []dirTimes

	parentName string   // the parent dir whose descriptor is cached
	parent     *os.File // open parent dir, reused while entries stay in one dir
}

// cleanName confines a tar name to a relative slash path; "" is the root itself.
func cleanName(name string) (string, error) {
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return "", errors.New("path contains \"..\"")
		}
	}
	return strings.TrimPrefix(path.Clean("/"+name), "/"), nil
}

// checkHeader applies the rules of one entry's header alone and returns its clean name.
func checkHeader(hdr *tar.Header) (string, error) {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return "", err
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			// A sparse map can declare exabytes of zeros in a few bytes; layers never need it.
			return "", errors.New("sparse files are not supported in layers")
		}
	}
	return name, nil
}

// entry applies one tar entry.
func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	name, err := checkHeader(hdr)
	if err != nil {
		return err
	}
	if name == "" {
		return nil // the layer's root: dir itself stays as the caller made it
	}
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	if base == opaqueWhiteout {
		return a.opaque(dir)
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		return a.whiteout(dir, strings.TrimPrefix(base, whiteoutPrefix))
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink,
		tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return nil // PAX globals, sparse files and vendor types carry nothing to extract
	}
	if (hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock) && a.euid != 0 {
		return nil // only root may create devices; an unprivileged unpack skips them
	}
	pfd, err := a.parentDir(dir)
	if err != nil {
		return err
	}
	keep, err := clearPath(pfd, base, hdr.Typeflag == tar.TypeDir)
	if err != nil {
		return err
	}
	if err := a.create(pfd, base, hdr, r, keep); err != nil {
		return err
	}
	a.created[name] = true
	if hdr.Typeflag == tar.TypeLink {
		return nil // a hard link shares the target's metadata
	}
	return a.metadata(pfd, name, base, hdr)
}

// parentDir opens (creating if needed) the directory that will hold an entry. The
// descriptor is cached: layers list a directory's entries together.
func (a *applier) parentDir(dir string) (int, error) {
	if a.parent != nil && a.parentName == dir {
		return int(a.parent.Fd()), nil
	}
	a.closeParent()
	f, err := mkdirAll(a.root, dir)
	if err != nil {
		return -1, fmt.Errorf("create parent %s: %w", dir, err)
	}
	a.parent, a.parentName = f, dir
	return int(f.Fd()), nil
}

func (a *applier) closeParent() {
	if a.parent != nil {
		a.parent.Close()
		a.parent, a.parentName = nil, ""
	}
}

// clearPath removes whatever sits at base in pfd unless both it and the new entry are
// directories (then it is kept and gets new metadata, as docker does). It reports whether
// it kept a dir.
func clearPath(pfd int, base string, isDir bool) (bool, error) {
	var st unix.Stat_t
	err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if isDir {
			return true, nil
		}
		// The cached descriptor is base's parent, which this leaves in place.
		return false, removeAllAt(pfd, base)
	}
	return false, unix.Unlinkat(pfd, base, 0)
}

// create makes the filesystem object for hdr.
func (a *applier) create(pfd int, base string, hdr *tar.Header, r io.Reader, keep bool) error {
	mode := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if keep {
			return nil
		}
		return unix.Mkdirat(pfd, base, 0o700)
	case tar.TypeReg: // archive/tar reports the old TypeRegA as TypeReg
		return writeFile(pfd, base, &streamGuard{r: r, in: a.in, start: a.in.n})
	case tar.TypeSymlink:
		return unix.Symlinkat(hdr.Linkname, pfd, base)
	case tar.TypeLink:
		target, err := cleanName(hdr.Linkname)
		if err != nil || target == "" {
			return fmt.Errorf("invalid hard link target %q", hdr.Linkname)
		}
		return a.link(target, pfd, base)
	case tar.TypeFifo:
		return unix.Mknodat(pfd, base, unix.S_IFIFO|mode, 0)
	}
	typ := uint32(unix.S_IFCHR)
	if hdr.Typeflag == tar.TypeBlock {
		typ = unix.S_IFBLK
	}
	return unix.Mknodat(pfd, base, typ|mode, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))))
}

// link makes base in pfd a hard link to target, whose parent resolves inside the root and
// whose last element is not followed: a link to a symlink links the symlink itself.
func (a *applier) link(target string, pfd int, base string) error {
	tdir, tbase := splitParent(target)
	tf, err := resolveDir(a.root, tdir)
	if err != nil {
		return fmt.Errorf("hard link to %s: %w", target, err)
	}
	defer tf.Close()
	if err := unix.Linkat(int(tf.Fd()), tbase, pfd, base, 0); err != nil {
		return fmt.Errorf("hard link to %s: %w", target, err)
	}
	return nil
}

// streamGuard fails an entry whose content is not backed by bytes of the stream. Old GNU
// sparse entries reach us as regular files whose holes archive/tar fills with zeros, so a
// few bytes of tar could otherwise write terabytes.
type streamGuard struct {
	r       io.Reader
	in      *countingReader
	start   int64
	written int64
}

func (g *streamGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	g.written += int64(n)
	if g.written > g.in.n-g.start+64<<10 {
		return n, errors.New("sparse files are not supported in layers")
	}
	return n, err
}

// writeFile creates base in the parent dir, never following a link, and fills it from r.
func writeFile(pfd int, base string, r io.Reader) error {
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), base)
	buf := getBuf()
	_, err = io.CopyBuffer(f, r, *buf)
	putBuf(buf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
