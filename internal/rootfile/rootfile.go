// Package rootfile reads small files from inside an untrusted root filesystem (an image's
// rootfs): symlinks resolve inside the root, and only regular files of bounded size are read,
// so a FIFO, a device or a huge file at a path kiln reads fails fast instead of hanging kiln.
package rootfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// DefaultLimit bounds the files kiln reads from images: account files, configs.
const DefaultLimit = 16 << 20

// Read returns the content of name (an absolute path inside root, symlinks resolved as if root
// were "/") when it is a regular file of at most limit bytes (<= 0: DefaultLimit). A missing
// file yields an error matching fs.ErrNotExist; anything else that is not a regular file, or
// is larger, a *NotRegularError or *TooLargeError naming the path.
func Read(root, name string, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	// An O_PATH handle: opening it neither blocks on a FIFO nor touches a device.
	h, err := pathrs.OpenInRoot(root, name)
	if err != nil {
		return nil, fmt.Errorf("open %s in the image: %w", name, err)
	}
	defer h.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return nil, fmt.Errorf("stat %s in the image: %w", name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, &NotRegularError{Path: name, Mode: fileType(st.Mode)}
	}
	if st.Size > limit {
		return nil, &TooLargeError{Path: name, Size: st.Size, Limit: limit}
	}
	// O_NONBLOCK as well: the handle is checked, but belt and braces costs nothing.
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("open %s in the image: %w", name, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s in the image: %w", name, err)
	}
	if int64(len(data)) > limit { // it grew after the stat
		return nil, &TooLargeError{Path: name, Size: int64(len(data)), Limit: limit}
	}
	return data, nil
}

// IsNotExist reports whether err says the file is missing (a missing file often means "none").
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// NotRegularError refuses a path that is a FIFO, device, socket or directory.
type NotRegularError struct {
	Path string
	Mode string
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s in the image is a %s, not a regular file: fix the image", e.Path, e.Mode)
}

// TooLargeError refuses a file larger than the limit.
type TooLargeError struct {
	Path        string
	Size, Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s in the image has %d bytes, more than the %d kiln reads: fix the image", e.Path, e.Size, e.Limit)
}

func fileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFIFO:
		return "FIFO"
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFBLK:
		return "block device"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFLNK:
		return "symlink"
	}
	return "special file"
}
