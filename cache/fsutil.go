package cache

import (
	"fmt"
	"os"
	"path/filepath"
)

// writeFileAtomic puts data under path so readers see either the old file or the whole new
// one, even across a crash: temp file in tmpDir → fsync → rename → fsync the parent dir.
func writeFileAtomic(tmpDir, path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(tmpDir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	return syncDir(filepath.Dir(path))
}

// syncDir makes a rename or unlink in dir durable.
func syncDir(dir string) error {
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

// removeAllAtomic deletes a tree so that a crash midway never leaves a partial tree under
// its final name: it is first renamed into the staging dir, then removed from there.
func removeAllAtomic(tmpDir, path string) error {
	grave, err := os.MkdirTemp(tmpDir, "rm-")
	if err != nil {
		return err
	}
	dst := filepath.Join(grave, "x")
	if err := os.Rename(path, dst); err != nil {
		_ = os.Remove(grave)
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return err
	}
	return removeTree(grave)
}

// removeTree is os.RemoveAll that also copes with read-only directories inside unpacked
// layers, which a non-root owner cannot empty until they are made writable again.
func removeTree(path string) error {
	err := os.RemoveAll(path)
	if err == nil || !os.IsPermission(err) {
		return err
	}
	_ = filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(path)
}
