package cache

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// sweepBlobs removes blobs outside live. A blob is one file, so unlink is atomic.
func (s *Store) sweepBlobs(ctx context.Context, live liveSet, dryRun bool, st *GCStats) error {
	ents, err := os.ReadDir(s.blobDir())
	if err != nil {
		return fmt.Errorf("read blobs: %w", err)
	}
	removed := false
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		if live.blobs[e.Name()] || !isHex(e.Name()) || len(e.Name()) != 64 {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		if !dryRun {
			if err := os.Remove(filepath.Join(s.blobDir(), e.Name())); err != nil {
				return fmt.Errorf("remove blob sha256:%s: %w", e.Name(), err)
			}
			removed = true
		}
		st.Blobs++
		st.Bytes += info.Size()
	}
	if removed {
		return syncDir(s.blobDir())
	}
	return nil
}

// sweepSnapshots removes snapshots whose diff ID no kept layer has, and their lock files.
func (s *Store) sweepSnapshots(ctx context.Context, live liveSet, dryRun bool, st *GCStats) error {
	ents, err := os.ReadDir(s.snapDir())
	if err != nil {
		return fmt.Errorf("read snapshots: %w", err)
	}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		if live.diffIDs[e.Name()] {
			continue
		}
		p := filepath.Join(s.snapDir(), e.Name())
		size := treeSize(p)
		if !dryRun {
			if err := s.removeAllAtomic(p); err != nil {
				return fmt.Errorf("remove snapshot %s: %w", e.Name(), err)
			}
		}
		st.Snapshots++
		st.Bytes += size
	}
	if !dryRun {
		s.sweepLocks()
	}
	return nil
}

// sweepLocks deletes snapshot lock files that no longer guard a snapshot. Only safe under
// the exclusive store lock: nobody else can hold or be waiting on them.
func (s *Store) sweepLocks() {
	ents, err := os.ReadDir(s.lockDir())
	if err != nil {
		return
	}
	for _, e := range ents {
		hex, ok := strings.CutSuffix(e.Name(), ".lock")
		if ok && len(hex) == 64 && isHex(hex) && !exists(filepath.Join(s.snapDir(), hex)) {
			_ = os.Remove(filepath.Join(s.lockDir(), e.Name()))
		}
	}
}

// treeSize is the apparent size of the files under root, counting hard links once.
func treeSize(root string) int64 {
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	var total int64
	_ = filepath.WalkDir(root, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			k := inode{uint64(st.Dev), st.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		total += info.Size()
		return nil
	})
	return total
}
