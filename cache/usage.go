package cache

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// UsageEntry is one line of `kiln system df`.
type UsageEntry struct {
	Count int
	Size  int64 // bytes
}

// Usage is the store's disk use by kind. Image sizes count each blob once; cache size counts
// only layers no tagged image uses, so the three sizes add up without double counting.
type Usage struct {
	Images    UsageEntry // distinct tagged manifests; size of every blob they reach
	Snapshots UsageEntry // unpacked layers
	Cache     UsageEntry // build cache records; size of the layers only they keep alive
	Volumes   UsageEntry // named and anonymous volumes (the container package's, under Volumes())
}

// DiskUsage measures the store for `kiln system df`. It walks every snapshot, so it costs
// a stat per unpacked file.
func (s *Store) DiskUsage() (Usage, error) {
	var u Usage
	live, err := s.imageRoots()
	if err != nil {
		return u, fmt.Errorf("disk usage: %w", err)
	}
	im, err := s.readIndex()
	if err != nil {
		return u, fmt.Errorf("disk usage: %w", err)
	}
	tops := map[string]bool{}
	for _, d := range im.Manifests {
		tops[d.Digest.Hex] = true
	}
	u.Images.Count = len(tops)
	for hex := range live.blobs {
		if fi, err := os.Stat(filepath.Join(s.blobDir(), hex)); err == nil {
			u.Images.Size += fi.Size()
		}
	}
	recs, err := s.loadRecords()
	if err != nil {
		return u, fmt.Errorf("disk usage: %w", err)
	}
	cacheOnly := map[string]int64{}
	for _, r := range recs {
		u.Cache.Count++
		if l := r.rec.Layer; r.ok && l != nil && !live.blobs[l.Digest.Hex] {
			if fi, err := os.Stat(filepath.Join(s.blobDir(), l.Digest.Hex)); err == nil {
				cacheOnly[l.Digest.Hex] = fi.Size()
			}
		}
	}
	for _, n := range cacheOnly {
		u.Cache.Size += n
	}
	ents, err := os.ReadDir(s.snapDir())
	if err != nil {
		return u, fmt.Errorf("disk usage: %w", err)
	}
	for _, e := range ents {
		u.Snapshots.Count++
		u.Snapshots.Size += treeSize(filepath.Join(s.snapDir(), e.Name()))
	}
	vols, _ := os.ReadDir(s.Volumes()) // an older store has none
	for _, e := range vols {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") { // not one being made or removed
			u.Volumes.Count++
			u.Volumes.Size += treeSize(filepath.Join(s.Volumes(), e.Name()))
		}
	}
	return u, nil
}

// TreeSize is the bytes of the files under dir, each hard-linked inode once (a container's
// upper dir for `kiln ps -s`).
func TreeSize(dir string) int64 { return treeSize(dir) }
