package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache/layer"
	"github.com/kiln-build/kiln/internal/atomicfile"
)

// Snapshot returns the directory holding the layer with this diff ID unpacked, in overlay
// form (whiteouts as 0/0 character devices), ready to serve as an overlay lower dir. The
// first caller unpacks the blob that open returns; concurrent callers in this and other
// processes wait for it and share the result. A half-unpacked snapshot is never visible.
func (s *Store) Snapshot(ctx context.Context, diffID v1.Hash, open func() (io.ReadCloser, error)) (string, error) {
	final := s.snapshotPath(diffID)
	if exists(final) {
		return final, nil
	}
	err := s.withSnapshotLock(ctx, diffID.Hex, func() error {
		if exists(final) {
			return nil
		}
		return s.unpackSnapshot(ctx, diffID, open, final)
	})
	if err != nil {
		return "", fmt.Errorf("snapshot %s: %w", diffID, err)
	}
	return final, nil
}

// unpackSnapshot applies the layer into a staging dir, checks its diff ID, and renames it
// into place once it is durable.
func (s *Store) unpackSnapshot(ctx context.Context, diffID v1.Hash, open func() (io.ReadCloser, error), final string) error {
	if diffID.Algorithm != "sha256" {
		return fmt.Errorf("unsupported diff ID algorithm %q", diffID.Algorithm)
	}
	tar, err := layer.OpenUncompressed(open)
	if err != nil {
		return err
	}
	defer tar.Close()
	tmp, err := s.TempDir("snap-")
	if err != nil {
		return err
	}
	defer removeTree(tmp)
	dir := filepath.Join(tmp, "fs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	h := sha256.New()
	tee := io.TeeReader(tar, h)
	if _, err := layer.Apply(ctx, tee, dir, layer.ApplyOptions{Whiteouts: layer.OverlayWhiteouts}); err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	// The tar's trailing padding is part of the diff ID but Apply need not read it.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != diffID.Hex {
		return fmt.Errorf("layer content has diff ID sha256:%s, want %s: the blob is corrupt; remove the image and pull it again", got, diffID)
	}
	return s.adopt(dir, final)
}

// adopt makes dir's contents durable and renames it to final.
func (s *Store) adopt(dir, final string) error {
	if err := atomicfile.SyncFS(dir); err != nil {
		return err
	}
	if err := os.Rename(dir, final); err != nil {
		return err
	}
	return syncDir(s.snapDir())
}

// CommitSnapshot adopts dir (already in overlay form, on the store's filesystem, e.g. the
// upper dir of a RUN step) as the snapshot for diffID. If that snapshot exists already, dir
// is removed and the existing one returned.
func (s *Store) CommitSnapshot(diffID v1.Hash, dir string) (string, error) {
	final := s.snapshotPath(diffID)
	err := s.withSnapshotLock(context.Background(), diffID.Hex, func() error {
		if exists(final) {
			return removeTree(dir)
		}
		return s.adopt(dir, final)
	})
	if err != nil {
		return "", fmt.Errorf("commit snapshot %s: %w", diffID, err)
	}
	return final, nil
}

// HasSnapshot reports whether the layer with this diff ID is unpacked already.
func (s *Store) HasSnapshot(diffID v1.Hash) bool { return exists(s.snapshotPath(diffID)) }

// SnapshotDiffID is the diff ID of the snapshot at dir (a path Snapshot returned), so a
// holder of snapshot paths can lease them; ok is false for any other path.
func (s *Store) SnapshotDiffID(dir string) (v1.Hash, bool) {
	name := filepath.Base(dir)
	if filepath.Dir(filepath.Clean(dir)) != s.snapDir() || len(name) != 64 || !isHex(name) {
		return v1.Hash{}, false
	}
	return v1.Hash{Algorithm: "sha256", Hex: name}, true
}
