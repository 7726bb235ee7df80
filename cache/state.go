package cache

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// stateDir holds small files other packages keep between runs (e.g. the build context's
// stat cache). They are hints: losing one only costs recomputation, so GC may ignore them.
func (s *Store) stateDir() string { return filepath.Join(s.root, "cache", "state") }

// ReadState returns the state file name; the error wraps fs.ErrNotExist when there is none.
func (s *Store) ReadState(name string) ([]byte, error) {
	if err := checkStateName(name); err != nil {
		return nil, err
	}
	return os.ReadFile(filepath.Join(s.stateDir(), name))
}

// WriteState replaces the state file name atomically (temp file, fsync, rename).
func (s *Store) WriteState(name string, data []byte) error {
	if err := checkStateName(name); err != nil {
		return err
	}
	if err := ensureDir(s.stateDir()); err != nil {
		return fmt.Errorf("write state %s: %w", name, err)
	}
	if old, err := os.ReadFile(filepath.Join(s.stateDir(), name)); err == nil && bytes.Equal(old, data) {
		return nil // unchanged: skip the fsyncs
	}
	return writeFileAtomic(s.tmpDir(), filepath.Join(s.stateDir(), name), data, 0o644)
}

// checkStateName keeps state names to one plain path element.
func checkStateName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return fmt.Errorf("invalid state name %q", name)
	}
	return nil
}
