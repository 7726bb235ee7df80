package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Names OCI layers use for deletions (image-spec "Whiteouts").
const (
	whiteoutPrefix = ".wh."
	opaqueWhiteout = ".wh..wh..opq"
)

// Diff writes the overlayfs upper dir upper as an OCI layer: files, dirs, symlinks, hard
// links (one file per inode, the rest links), xattrs, devices and fifos. Overlay whiteouts
// (0/0 character devices) become .wh. files and opaque dirs get a .wh..wh..opq entry. It
// walks only upper, in a stable order with parents before children.
func Diff(ctx context.Context, upper string, w *Writer) error {
	d := &differ{w: w, upper: upper, links: map[inode]string{}}
	err := filepath.WalkDir(upper, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == upper {
			return nil
		}
		rel, err := filepath.Rel(upper, p)
		if err != nil {
			return err
		}
		return d.entry(p, filepath.ToSlash(rel))
	})
	if err != nil {
		return fmt.Errorf("diff %s: %w", upper, err)
	}
	return nil
}

type inode struct{ dev, ino uint64 }

type differ struct {
	w     *Writer
	upper string
	links map[inode]string // first path seen for each multiply-linked inode
}

// entry writes the tar entries for one path of the upper dir.
func (d *differ) entry(p, name string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: no stat data", p)
	}
	mode := fi.Mode()
	if mode&fs.ModeCharDevice != 0 && st.Rdev == 0 {
		return d.whiteout(fi, name)
	}
	if mode&fs.ModeSocket != 0 {
		return nil // sockets cannot be archived (docker skips them too)
	}
	link := ""
	if mode&fs.ModeSymlink != 0 {
		if link, err = os.Readlink(p); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	hdr.Name = name
	hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
	if mode.IsDir() {
		hdr.Name += "/"
	}
	if hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock {
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	}
	if err := addXattrs(hdr, p); err != nil {
		return err
	}
	if mode.IsRegular() && st.Nlink > 1 {
		key := inode{uint64(st.Dev), st.Ino}
		if first, ok := d.links[key]; ok {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			return d.w.WriteHeader(hdr)
		}
		d.links[key] = name
	}
	if err := d.w.WriteHeader(hdr); err != nil {
		return err
	}
	if mode.IsRegular() {
		if err := copyFile(d.w, p, hdr.Size); err != nil {
			return err
		}
	}
	if mode.IsDir() && isOpaque(p) {
		return d.opaque(fi, name)
	}
	return nil
}

// opaque writes the OCI marker that dir name hides what lower layers have in it.
func (d *differ) opaque(fi fs.FileInfo, name string) error {
	return d.w.WriteHeader(&tar.Header{Name: name + "/" + opaqueWhiteout, Typeflag: tar.TypeReg, ModTime: fi.ModTime()})
}

// whiteout writes the OCI deletion marker for an overlay whiteout device.
func (d *differ) whiteout(fi fs.FileInfo, name string) error {
	dir, base := splitName(name)
	return d.w.WriteHeader(&tar.Header{Name: dir + whiteoutPrefix + base, Typeflag: tar.TypeReg, ModTime: fi.ModTime()})
}

// splitName splits a slash path into "dir/" (or "") and its last element.
func splitName(name string) (string, string) {
	i := strings.LastIndexByte(name, '/')
	return name[:i+1], name[i+1:]
}

// copyFile streams exactly size bytes of p into the current entry.
func copyFile(w *Writer, p string, size int64) error {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := w.ReadFrom(&limitedFile{f: f, left: size})
	if err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	if n != size {
		return fmt.Errorf("read %s: file shrank while archiving (%d of %d bytes)", p, n, size)
	}
	return nil
}

// limitedFile reads at most left bytes, so a file growing during the walk cannot corrupt the tar.
type limitedFile struct {
	f    *os.File
	left int64
}

func (l *limitedFile) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.f.Read(p)
	l.left -= int64(n)
	return n, err
}

// isOpaque reports whether overlayfs marked dir opaque (it hides the lower dirs' entries).
func isOpaque(dir string) bool {
	for _, attr := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		buf := make([]byte, 4)
		n, err := unix.Lgetxattr(dir, attr, buf)
		if err == nil && n == 1 && buf[0] == 'y' {
			return true
		}
	}
	return false
}

// addXattrs records p's extended attributes as PAX records, leaving out overlayfs's own
// bookkeeping and the host's SELinux labels, which mean nothing in an image.
func addXattrs(hdr *tar.Header, p string) error {
	names, err := listXattrs(p)
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := checkOverlayFeature(name); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.") || name == "security.selinux" {
			continue
		}
		val, err := getXattr(p, name)
		if err != nil {
			return err
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords["SCHILY.xattr."+name] = string(val)
	}
	return nil
}

// checkOverlayFeature refuses upper dirs written with redirect_dir or metacopy: a renamed
// dir or a metadata-only copy-up would silently become an incomplete layer.
func checkOverlayFeature(xattr string) error {
	_, attr, ok := strings.Cut(xattr, ".overlay.")
	if !ok || (!strings.HasPrefix(xattr, "trusted.") && !strings.HasPrefix(xattr, "user.")) {
		return nil
	}
	if attr == "redirect" || attr == "metacopy" {
		return fmt.Errorf("overlay %s in upper dir: mount the overlay with redirect_dir=off,metacopy=off", attr)
	}
	return nil
}

func listXattrs(p string) ([]string, error) {
	size, err := unix.Llistxattr(p, nil)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, fmt.Errorf("list xattrs of %s: %w", p, err)
	}
	if size == 0 {
		return nil, nil
	}
	buf := make([]byte, size)
	size, err = unix.Llistxattr(p, buf)
	if err != nil {
		return nil, fmt.Errorf("list xattrs of %s: %w", p, err)
	}
	var names []string
	for _, n := range strings.Split(string(buf[:size]), "\x00") {
		if n != "" {
			names = append(names, n)
		}
	}
	return names, nil
}

func getXattr(p, name string) ([]byte, error) {
	size, err := unix.Lgetxattr(p, name, nil)
	if err != nil {
		return nil, fmt.Errorf("read xattr %s of %s: %w", name, p, err)
	}
	buf := make([]byte, size)
	size, err = unix.Lgetxattr(p, name, buf)
	if err != nil {
		return nil, fmt.Errorf("read xattr %s of %s: %w", name, p, err)
	}
	return buf[:size], nil
}
