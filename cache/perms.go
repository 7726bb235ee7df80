package cache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// dirMode is the mode of the store root and of every directory the store makes in it. Unpacked
// layers hold setuid binaries and files with capabilities: a local user who could reach one
// would run it as root (the CVE-2021-41091 class), so nobody but the store's owner may pass.
// One closed directory on the path is enough; modes below (a snapshot's "/" is 0755) are the
// content's own.
const dirMode os.FileMode = 0o700

// layoutDirs are the fixed directories of a store, parents first.
func (s *Store) layoutDirs() []string {
	return []string{
		s.root,
		filepath.Join(s.root, "blobs"), s.blobDir(),
		s.snapDir(),
		filepath.Join(s.root, "cache"), filepath.Join(s.root, "cache", "index"), s.recordDir(),
		s.tmpRoot(),
		s.lockDir(),
		s.stateDir(), s.Mounts(), s.Containers(), s.Logs(), s.leaseDir(), s.Volumes(), s.Networks(),
	}
}

// makeDirs creates the layout closed from the start and closes what an older kiln left
// open (0755): a fixed handful of chmods on open, not a walk of every snapshot.
func (s *Store) makeDirs() error {
	if err := os.MkdirAll(filepath.Dir(s.root), 0o755); err != nil {
		return err
	}
	for _, d := range s.layoutDirs() {
		if err := ensureDir(d); err != nil {
			return err
		}
	}
	return nil
}

// ensureDir makes d with dirMode, or fixes its mode when it exists. The mode is set with an
// explicit chmod, so no umask decides it.
func ensureDir(d string) error {
	fi, err := os.Stat(d)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.Mkdir(d, dirMode); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		fi, err = os.Stat(d)
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", d)
	}
	if fi.Mode().Perm() != dirMode {
		if err := os.Chmod(d, dirMode); err != nil {
			return fmt.Errorf("close %s to other users: %w", d, err)
		}
	}
	return nil
}
