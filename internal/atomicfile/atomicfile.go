// Package atomicfile replaces files so that readers see either the old or the whole new
// content, even across a crash: temp file → write → fsync → rename → fsync of the directory.
package atomicfile

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Options tune Write; the zero value writes mode 0644 through a temp file beside path.
type Options struct {
	Perm   os.FileMode // 0 means 0644
	TmpDir string      // where the temp file goes (same filesystem as path); "" = path's dir
	NoSync bool        // skip both fsyncs, for files that do not outlive an OS crash anyway
	// NoReplace fails with an error wrapping os.ErrExist when path exists, instead of
	// replacing it (a hard link publishes the temp file, so the check cannot race).
	NoReplace bool
}

// Write puts data at path atomically.
func Write(path string, data []byte, o Options) error {
	return WriteFrom(path, bytes.NewReader(data), o)
}

// WriteFrom puts what r yields at path atomically, streaming: for blobs too big to hold.
func WriteFrom(path string, r io.Reader, o Options) error {
	dir := o.TmpDir
	if dir == "" {
		dir = filepath.Dir(path)
	}
	perm := o.Perm
	if perm == 0 {
		perm = 0o644
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = f.Chmod(perm)
	if err == nil {
		_, err = io.Copy(f, r)
	}
	if err == nil && !o.NoSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	switch {
	case err == nil && o.NoReplace:
		if err = os.Link(tmp, path); err == nil {
			_ = os.Remove(tmp) // path holds the data now; a stray temp is only litter
		}
	case err == nil:
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if o.NoSync {
		return nil
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir makes a rename or unlink in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// SyncFS flushes the whole filesystem holding path with one syncfs(2): cheaper than an
// fsync per file when a tree, or a batch of NoSync writes, must become durable together.
func SyncFS(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", path, err)
	}
	return nil
}
