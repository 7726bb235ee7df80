package cache

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kiln-build/kiln/internal/atomicfile"
)

// writeFileAtomic puts data under path through a temp file in the Store's staging (see atomicfile).
func (s *Store) writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	return s.writeFile(path, data, atomicfile.Options{Perm: perm})
}

// writeFile is writeFileAtomic with the rest of atomicfile's options (TmpDir is the staging).
func (s *Store) writeFile(path string, data []byte, o atomicfile.Options) error {
	tmp, err := s.tmpDir()
	if err != nil {
		return err
	}
	o.TmpDir = tmp
	return atomicfile.Write(path, data, o)
}

// Flush makes the files this Store wrote without fsync (cache records) durable, with one
// syncfs(2) of the store's filesystem instead of two fsyncs per record. A build calls it
// once, before it publishes (tags) the image those records helped make.
func (s *Store) Flush() error {
	if !s.unsynced.Swap(false) {
		return nil
	}
	if err := atomicfile.SyncFS(s.root); err != nil {
		s.unsynced.Store(true)
		return fmt.Errorf("flush store %s: %w", s.root, err)
	}
	return nil
}

// syncDir makes a rename or unlink in dir durable.
func syncDir(dir string) error { return atomicfile.SyncDir(dir) }

// removeAllAtomic deletes a tree so that a crash midway never leaves a partial tree under
// its final name: it is first renamed into the staging dir, then removed from there.
func (s *Store) removeAllAtomic(path string) error {
	tmp, err := s.tmpDir()
	if err != nil {
		return err
	}
	grave, err := os.MkdirTemp(tmp, "rm-")
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
