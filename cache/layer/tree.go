package layer

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// TreeIndex is the stat of every path of a directory tree, taken before a command changes the
// tree in place (the chroot rung has no overlay upper dir), for DiffTree.
type TreeIndex struct {
	root     string
	skip     map[string]bool     // paths neither indexed nor diffed
	entries  map[string]treeStat // by slash path relative to root
	children map[string][]string // dir ("" = root) -> its entries' names, sorted
}

// treeStat is what tells a changed entry from an unchanged one. Times come from the kernel's
// coarse clock, so an entry written within racyWindow of the index could change again with
// identical times: for those sum holds a hash of content, link target and xattrs.
type treeStat struct {
	mode, uid, gid  uint32
	nlink, ino, dev uint64
	rdev            uint64
	size            int64
	mtime, ctime    unix.Timespec
	birth           uint64 // dirs: birth time or inode generation, as a freed inode number is soon reused
	sum             string // "" = the times are trusted
}

// racyWindow is how close to the index an entry's times must be for them not to be trusted:
// well over the kernel's timestamp granularity (a jiffy, at most 10ms).
const racyWindow = 50 * time.Millisecond

// IndexTree records the stat of every entry under root but the skip paths (relative, with
// slashes), which DiffTree leaves out as well: what a run gets from elsewhere, as mounts.
func IndexTree(ctx context.Context, root string, skip ...string) (*TreeIndex, error) {
	racy := time.Now().Add(-racyWindow)
	idx := &TreeIndex{root: root, skip: map[string]bool{}, entries: map[string]treeStat{}, children: map[string][]string{}}
	for _, s := range skip {
		idx.skip[path.Clean(s)] = true
	}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if idx.skip[rel] {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		st, err := lstatTree(p)
		if err != nil {
			return err
		}
		if ts(st.mtime).After(racy) || ts(st.ctime).After(racy) {
			if st.sum, err = entrySum(p, st.mode); err != nil {
				return err
			}
		}
		idx.entries[rel] = st
		dir, base := path.Split(rel)
		dir = trimSlash(dir)
		idx.children[dir] = append(idx.children[dir], base) // WalkDir visits names in order
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", root, err)
	}
	return idx, nil
}

// DiffTree writes what changed in the tree since idx as the layer Diff writes for an overlay
// upper dir holding the same change, entry for entry: changed and new entries with every
// parent dir, deletions as whiteouts, and a dir that replaced another entry as an opaque dir
// with its whole content (overlayfs makes a dir created over a whiteout opaque). Content is
// read only for entries whose stat changed, or whose times were too recent to trust.
func DiffTree(ctx context.Context, idx *TreeIndex, w *Writer) error {
	t := &treeDiffer{ctx: ctx, idx: idx, d: &differ{w: w, upper: idx.root, links: map[inode]string{}}}
	if err := t.dir("", false); err != nil {
		return fmt.Errorf("diff %s: %w", idx.root, err)
	}
	return nil
}

type treeDiffer struct {
	ctx     context.Context
	idx     *TreeIndex
	d       *differ
	pending []string // parent dirs not written yet: only a change below them writes them
}

// dir diffs the entries of rel; fresh means everything under it is new.
func (t *treeDiffer) dir(rel string, fresh bool) error {
	if err := t.ctx.Err(); err != nil {
		return err
	}
	full := filepath.Join(t.idx.root, filepath.FromSlash(rel))
	ents, err := os.ReadDir(full)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if !t.idx.skip[path.Join(rel, e.Name())] {
			names = append(names, e.Name())
		}
	}
	var gone []string
	if !fresh {
		for _, n := range t.idx.children[rel] {
			if _, found := slices.BinarySearch(names, n); !found {
				gone = append(gone, n)
			}
		}
	}
	all := append(append([]string(nil), names...), gone...)
	slices.Sort(all)
	for _, n := range all {
		crel := path.Join(rel, n)
		if _, found := slices.BinarySearch(gone, n); found {
			if err := t.whiteout(full, crel); err != nil {
				return err
			}
			continue
		}
		if err := t.entry(crel, fresh); err != nil {
			return err
		}
	}
	return nil
}

// entry diffs one existing path.
func (t *treeDiffer) entry(rel string, fresh bool) error {
	p := filepath.Join(t.idx.root, filepath.FromSlash(rel))
	st, err := lstatTree(p)
	if err != nil {
		return err
	}
	isDir := st.mode&unix.S_IFMT == unix.S_IFDIR
	old, had := t.idx.entries[rel]
	if fresh {
		had = false
	}
	switch {
	case !had: // new: all of it
		if err := t.write(p, rel, false); err != nil {
			return err
		}
		if isDir {
			return t.dir(rel, true)
		}
		return nil
	case old.mode&unix.S_IFMT != st.mode&unix.S_IFMT || old.ino != st.ino || old.dev != st.dev || old.birth != st.birth:
		// Replaced: a dir made where something was is opaque, and new throughout.
		if err := t.write(p, rel, isDir); err != nil {
			return err
		}
		if isDir {
			return t.dir(rel, true)
		}
		return nil
	}
	changed, err := t.changed(p, old, st)
	if err != nil {
		return err
	}
	if changed {
		if err := t.write(p, rel, false); err != nil {
			return err
		}
	}
	if !isDir {
		return nil
	}
	if !changed {
		t.pending = append(t.pending, rel)
		defer func() {
			if n := len(t.pending); n > 0 && t.pending[n-1] == rel {
				t.pending = t.pending[:n-1]
			}
		}()
	}
	return t.dir(rel, false)
}

// changed compares an entry with its index record, reading content only for racy records.
func (t *treeDiffer) changed(p string, old, st treeStat) (bool, error) {
	sum := old.sum
	old.sum = ""
	if old != st {
		return true, nil
	}
	if sum == "" {
		return false, nil
	}
	now, err := entrySum(p, st.mode)
	if err != nil {
		return false, err
	}
	return sum != now, nil
}

// write writes the pending parents, then the entry (and an opaque marker).
func (t *treeDiffer) write(p, rel string, opaque bool) error {
	if err := t.flush(); err != nil {
		return err
	}
	if err := t.d.entry(p, rel); err != nil {
		return err
	}
	if !opaque {
		return nil
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	return t.d.opaque(fi, rel)
}

// whiteout writes the deletion of rel, dated as its parent dir (full) was last changed.
func (t *treeDiffer) whiteout(full, rel string) error {
	if err := t.flush(); err != nil {
		return err
	}
	fi, err := os.Lstat(full)
	if err != nil {
		return err
	}
	return t.d.whiteout(fi, rel)
}

func (t *treeDiffer) flush() error {
	for _, rel := range t.pending {
		if err := t.d.entry(filepath.Join(t.idx.root, filepath.FromSlash(rel)), rel); err != nil {
			return err
		}
	}
	t.pending = t.pending[:0]
	return nil
}

// fsIocGetVersion is FS_IOC_GETVERSION, _IOR('v', 1, long) on 64-bit Linux: the inode's
// generation (ext4 and others), which x/sys/unix does not define.
const fsIocGetVersion = 0x80087601

func lstatTree(p string) (treeStat, error) {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, p, unix.AT_SYMLINK_NOFOLLOW|unix.AT_STATX_SYNC_AS_STAT, unix.STATX_BASIC_STATS|unix.STATX_BTIME, &st); err != nil {
		return treeStat{}, &fs.PathError{Op: "statx", Path: p, Err: err}
	}
	ts := treeStat{mode: uint32(st.Mode), uid: st.Uid, gid: st.Gid, nlink: uint64(st.Nlink), ino: st.Ino,
		dev: unix.Mkdev(st.Dev_major, st.Dev_minor), rdev: unix.Mkdev(st.Rdev_major, st.Rdev_minor), size: int64(st.Size),
		mtime: unix.Timespec{Sec: st.Mtime.Sec, Nsec: int64(st.Mtime.Nsec)}, ctime: unix.Timespec{Sec: st.Ctime.Sec, Nsec: int64(st.Ctime.Nsec)}}
	if ts.mode&unix.S_IFMT != unix.S_IFDIR {
		return ts, nil
	}
	// A dir removed and made again must read as replaced (opaque), not as the same dir.
	if st.Mask&unix.STATX_BTIME != 0 && st.Btime.Sec != 0 {
		ts.birth = uint64(st.Btime.Sec)<<30 ^ uint64(st.Btime.Nsec)
		return ts, nil
	}
	if fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err == nil {
		if gen, err := unix.IoctlGetUint32(fd, fsIocGetVersion); err == nil {
			ts.birth = uint64(gen)
		}
		unix.Close(fd)
	}
	return ts, nil
}

// entrySum hashes what a stat does not show: a file's content, a link's target, the xattrs.
func entrySum(p string, mode uint32) (string, error) {
	h := sha256.New()
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW, 0)
		if err != nil {
			return "", err
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("read %s: %w", p, err)
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		h.Write([]byte(target))
	}
	names, err := listXattrs(p)
	if err != nil {
		return "", err
	}
	slices.Sort(names)
	for _, n := range names {
		v, err := getXattr(p, n)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "\x00%s=%x", n, v)
	}
	return string(h.Sum(nil)), nil
}

func ts(t unix.Timespec) time.Time { return time.Unix(t.Sec, t.Nsec) }

func trimSlash(s string) string {
	if len(s) > 0 && s[len(s)-1] == '/' {
		return s[:len(s)-1]
	}
	return s
}
