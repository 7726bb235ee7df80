package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache/layer"
)

// MountRecord describes one RUN --mount=type=cache directory, kept beside it as
// Mounts()/<name>.json so that its contents can travel with a build cache.
type MountRecord struct {
	ID      string    // the mount's id (its target when the Buildfile names none)
	Target  string    // where the last step that used it mounted it
	Sharing string    // shared, private or locked
	UID     int       // owner of the directory
	GID     int       // group of the directory
	Mode    uint32    // permission bits of the directory
	Used    time.Time // last time a step used it (or it was seeded)
}

// MountInfo is a cache mount as `kiln cache mounts` lists it.
type MountInfo struct {
	MountRecord
	Size int64 // bytes of the regular files in it
}

const mountVersion = 1

// mountFile is MountRecord on disk.
type mountFile struct {
	Version int       `json:"version"`
	ID      string    `json:"id"`
	Target  string    `json:"target"`
	Sharing string    `json:"sharing"`
	UID     int       `json:"uid"`
	GID     int       `json:"gid"`
	Mode    uint32    `json:"mode"`
	Used    time.Time `json:"lastUsed"`
}

// mountUse remembers which mounts this Store's build used, for a cache export.
type mountUse struct {
	mu   sync.Mutex
	used map[string]MountRecord
}

// mountName is the directory name of a cache mount id under Mounts().
func mountName(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:16])
}

// MountDir is the persistent directory of the cache mount id.
func (s *Store) MountDir(id string) string { return filepath.Join(s.Mounts(), mountName(id)) }

// UseMount records that a step is using the cache mount (its directory exists), with now
// as its last use.
func (s *Store) UseMount(rec MountRecord) error {
	rec.Used = time.Now().UTC()
	if err := s.writeMountRecord(rec); err != nil {
		return err
	}
	s.mountUse.mu.Lock()
	defer s.mountUse.mu.Unlock()
	if s.mountUse.used == nil {
		s.mountUse.used = map[string]MountRecord{}
	}
	s.mountUse.used[rec.ID] = rec
	return nil
}

func (s *Store) writeMountRecord(rec MountRecord) error {
	data, err := json.Marshal(mountFile{Version: mountVersion, ID: rec.ID, Target: rec.Target, Sharing: rec.Sharing,
		UID: rec.UID, GID: rec.GID, Mode: rec.Mode, Used: rec.Used})
	if err != nil {
		return err
	}
	if err := s.writeFileAtomic(s.MountDir(rec.ID)+".json", data, 0o600); err != nil {
		return fmt.Errorf("cache mount %s: %w", rec.ID, err)
	}
	return nil
}

// UsedMounts are the cache mounts steps of this Store's builds used since Open, by id.
func (s *Store) UsedMounts() []MountRecord {
	s.mountUse.mu.Lock()
	defer s.mountUse.mu.Unlock()
	out := make([]MountRecord, 0, len(s.mountUse.used))
	for _, r := range s.mountUse.used {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b MountRecord) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Mount reads the record of the cache mount id.
func (s *Store) Mount(id string) (MountRecord, bool) {
	raw, err := os.ReadFile(s.MountDir(id) + ".json")
	if err != nil {
		return MountRecord{}, false
	}
	return decodeMount(raw)
}

func decodeMount(raw []byte) (MountRecord, bool) {
	var f mountFile
	if json.Unmarshal(raw, &f) != nil || f.Version != mountVersion || f.ID == "" {
		return MountRecord{}, false
	}
	return MountRecord{ID: f.ID, Target: f.Target, Sharing: f.Sharing, UID: f.UID, GID: f.GID, Mode: f.Mode, Used: f.Used}, true
}

// ListMounts lists the cache mounts with a record, with their sizes.
func (s *Store) ListMounts() ([]MountInfo, error) {
	ents, err := os.ReadDir(s.Mounts())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list cache mounts: %w", err)
	}
	var out []MountInfo
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(s.Mounts(), e.Name()))
		if err != nil {
			continue
		}
		rec, ok := decodeMount(raw)
		if !ok || mountName(rec.ID)+".json" != e.Name() {
			continue
		}
		out = append(out, MountInfo{MountRecord: rec, Size: treeSize(s.MountDir(rec.ID))})
	}
	slices.SortFunc(out, func(a, b MountInfo) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// RemoveMount deletes a cache mount's directory and record.
func (s *Store) RemoveMount(id string) error {
	dir := s.MountDir(id)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove cache mount %s: %w", id, err)
	}
	if err := os.Remove(dir + ".json"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove cache mount %s: %w", id, err)
	}
	return nil
}

// PackMount stores the contents of a cache mount as one zstd tar blob (content-addressed,
// so an unchanged mount packs to the same blob) and returns its descriptor and diff ID.
func (s *Store) PackMount(ctx context.Context, id string) (v1.Descriptor, v1.Hash, error) {
	dir := s.MountDir(id)
	bw, err := s.NewBlobWriter()
	if err != nil {
		return v1.Descriptor{}, v1.Hash{}, err
	}
	defer bw.Close()
	epoch := time.Unix(0, 0)
	p, err := layer.Pack(ctx, bw, layer.Zstd, 0, layer.WriteOptions{SourceDateEpoch: &epoch}, func(w *layer.Writer) error {
		return layer.Diff(ctx, dir, w)
	})
	if err != nil {
		return v1.Descriptor{}, v1.Hash{}, fmt.Errorf("pack cache mount %s: %w", id, err)
	}
	if _, _, err := bw.Commit(p.Digest); err != nil {
		return v1.Descriptor{}, v1.Hash{}, fmt.Errorf("pack cache mount %s: %w", id, err)
	}
	return v1.Descriptor{MediaType: p.MediaType, Digest: p.Digest, Size: p.Size}, p.DiffID, nil
}

// WantsSeed reports whether an imported copy of a mount last used at used should replace
// the local one: when there is none, it is empty, or it was last used earlier.
func (s *Store) WantsSeed(id string, used time.Time) bool {
	ents, err := os.ReadDir(s.MountDir(id))
	if err != nil || len(ents) == 0 {
		return true
	}
	local, ok := s.Mount(id)
	return !ok || local.Used.Before(used)
}

// SeedMount replaces the cache mount rec.ID with the (compressed) tar r, unpacked within the
// decompression limits with every path confined to the mount's directory; the old contents
// go only once the new are whole.
func (s *Store) SeedMount(ctx context.Context, rec MountRecord, r io.Reader) error {
	lim, err := layer.LimitsFromEnv()
	if err != nil {
		return err
	}
	tr, err := layer.DecompressLimited(r, lim)
	if err != nil {
		return fmt.Errorf("seed cache mount %s: %w", rec.ID, err)
	}
	defer tr.Close()
	if err := os.MkdirAll(s.Mounts(), 0o700); err != nil {
		return err
	}
	// Staged in this Store's own staging (same filesystem), which the next kiln removes if this
	// process dies half-way: no seed is ever left under cache/mounts.
	stage, err := s.TempDir("seed-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	tmp, old := filepath.Join(stage, "new"), filepath.Join(stage, "old")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return err
	}
	if _, err := layer.Apply(ctx, tr, tmp, layer.ApplyOptions{Whiteouts: layer.DeleteWhiteouts}); err != nil {
		return fmt.Errorf("seed cache mount %s: %w", rec.ID, err)
	}
	if err := os.Chmod(tmp, fs.FileMode(rec.Mode&0o7777)); err != nil {
		return err
	}
	if err := os.Lchown(tmp, rec.UID, rec.GID); err != nil && os.Geteuid() == 0 {
		return err
	}
	dir := s.MountDir(rec.ID)
	if err := os.Rename(dir, old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("seed cache mount %s: %w", rec.ID, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		_ = os.Rename(old, dir)
		return fmt.Errorf("seed cache mount %s: %w", rec.ID, err)
	}
	return s.writeMountRecord(rec)
}
