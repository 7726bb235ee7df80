package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
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
	return s.UpdateState(context.Background(), name, func([]byte) ([]byte, error) { return data, nil })
}

// UpdateState replaces the state file name with what fn makes of its current content (nil
// when there is none), holding the file's lock across kiln processes so that concurrent
// read-modify-write cycles do not lose each other's changes.
func (s *Store) UpdateState(ctx context.Context, name string, fn func(old []byte) ([]byte, error)) error {
	if err := checkStateName(name); err != nil {
		return err
	}
	p := filepath.Join(s.stateDir(), name)
	return withFileLock(ctx, filepath.Join(s.lockDir(), "state-"+name+".lock"), func() error {
		old, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("read state %s: %w", name, err)
		}
		data, err := fn(old)
		if err != nil {
			return err
		}
		if old != nil && bytes.Equal(old, data) {
			return nil // unchanged: skip the fsyncs
		}
		if err := s.writeFileAtomic(p, data, 0o600); err != nil {
			return fmt.Errorf("write state %s: %w", name, err)
		}
		return nil
	})
}

// checkStateName keeps state names to one plain path element.
func checkStateName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return fmt.Errorf("invalid state name %q", name)
	}
	return nil
}
