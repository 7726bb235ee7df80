package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// GCOptions says how much GC may remove.
type GCOptions struct {
	All         bool  // drop every build cache record too, keeping only what tagged images use
	KeepStorage int64 // when > 0, drop least recently used records until cache-only layers fit in this many bytes
	DryRun      bool  // count what would go, remove nothing
	// UnusedFor, when > 0, drops the records not used (hit or written) within this long.
	UnusedFor time.Duration
	Images    ImagePrune // which images to remove from index.json first
}

// GCStats counts what GC removed (or, with DryRun, would remove).
type GCStats struct {
	Blobs, Snapshots, CacheRecords int
	Bytes                          int64 // blob and snapshot bytes
	Images                         []PrunedImage
}

// GC removes cache records per opts, then every blob and snapshot that no tagged image
// (index.json: manifests, index children, configs, layers), no live lease (a container's
// image and snapshots) and no kept cache record references, and abandoned staging entries. It needs a Store from OpenExclusive, so no
// other kiln process can be using what it deletes; the Store's own other methods wait.
func (s *Store) GC(ctx context.Context, opts GCOptions) (GCStats, error) {
	if !s.exclusive {
		return GCStats{}, errors.New("gc: the store must be opened with OpenExclusive")
	}
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	var st GCStats
	var err error
	if st.Images, err = s.pruneImages(ctx, opts); err != nil {
		return st, fmt.Errorf("gc: %w", err)
	}
	live, err := s.imageRoots()
	if err != nil {
		return st, fmt.Errorf("gc: %w", err)
	}
	if err := s.leaseRoots(live); err != nil {
		return st, fmt.Errorf("gc: %w", err)
	}
	recs, err := s.loadRecords()
	if err != nil {
		return st, fmt.Errorf("gc: %w", err)
	}
	drop := chooseDrops(recs, live, opts, s.HasBlob, time.Now())
	for _, r := range recs {
		if drop[r.path] {
			continue
		}
		if r.rec.Layer != nil {
			live.blobs[r.rec.Layer.Digest.Hex] = true
		}
		if r.rec.DiffID.Hex != "" {
			live.diffIDs[r.rec.DiffID.Hex] = true
		}
	}
	if st.CacheRecords, err = s.dropRecords(drop, opts.DryRun); err != nil {
		return st, fmt.Errorf("gc: %w", err)
	}
	if err := s.sweepBlobs(ctx, live, opts.DryRun, &st); err != nil {
		return st, fmt.Errorf("gc: %w", err)
	}
	if err := s.sweepSnapshots(ctx, live, opts.DryRun, &st); err != nil {
		return st, fmt.Errorf("gc: %w", err)
	}
	s.sweepRemotes(live, opts.DryRun)
	if !opts.DryRun {
		s.sweepLeases()
		// Whatever predates this exclusive Open was abandoned; the margin covers the
		// filesystem's coarse timestamps, which may lag the clock.
		cleanLegacyTmp(s.tmpRoot(), s.opened.Add(-time.Second))
	}
	return st, nil
}

// chooseDrops picks the records to delete: corrupt ones always, all with opts.All, else the
// those unused for opts.UnusedFor, else the least recently used until the layers only cache
// records hold fit in opts.KeepStorage. Layers not on disk (a lazily imported cache's) take no
// storage, so they count for nothing.
func chooseDrops(recs []recordEntry, live liveSet, opts GCOptions, onDisk func(v1.Hash) bool, now time.Time) map[string]bool {
	drop := map[string]bool{}
	var keep []recordEntry
	for _, r := range recs {
		if !r.ok || opts.All || (opts.UnusedFor > 0 && now.Sub(r.used) > opts.UnusedFor) {
			drop[r.path] = true
		} else {
			keep = append(keep, r)
		}
	}
	if opts.All || opts.KeepStorage <= 0 {
		return drop
	}
	refs, size := map[string]int{}, map[string]int64{}
	var total int64
	for _, r := range keep {
		if l := r.rec.Layer; l != nil && !live.blobs[l.Digest.Hex] && onDisk(l.Digest) {
			if refs[l.Digest.Hex] == 0 {
				size[l.Digest.Hex] = l.Size
				total += l.Size
			}
			refs[l.Digest.Hex]++
		}
	}
	slices.SortFunc(keep, func(a, b recordEntry) int { return a.used.Compare(b.used) })
	for _, r := range keep {
		if total <= opts.KeepStorage {
			break
		}
		drop[r.path] = true
		if l := r.rec.Layer; l != nil && !live.blobs[l.Digest.Hex] && onDisk(l.Digest) {
			if refs[l.Digest.Hex]--; refs[l.Digest.Hex] == 0 {
				total -= size[l.Digest.Hex]
			}
		}
	}
	return drop
}

// recordEntry is one cache record file as GC sees it.
type recordEntry struct {
	path string
	rec  CacheRecord
	ok   bool      // false for a corrupt record
	used time.Time // last hit (mtime)
}

func (s *Store) loadRecords() ([]recordEntry, error) {
	ents, err := os.ReadDir(s.recordDir())
	if err != nil {
		return nil, fmt.Errorf("read cache index: %w", err)
	}
	var out []recordEntry
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") || e.IsDir() {
			continue
		}
		p := filepath.Join(s.recordDir(), e.Name())
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		r := recordEntry{path: p, used: info.ModTime()}
		if raw, err := os.ReadFile(p); err == nil {
			r.rec, r.ok = decodeRecord(raw)
		}
		out = append(out, r)
	}
	return out, nil
}

func (s *Store) dropRecords(drop map[string]bool, dryRun bool) (int, error) {
	if dryRun {
		return len(drop), nil
	}
	for p := range drop {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return 0, fmt.Errorf("remove cache record: %w", err)
		}
	}
	if len(drop) > 0 {
		return len(drop), syncDir(s.recordDir())
	}
	return 0, nil
}
