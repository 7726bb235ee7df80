package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/internal/ctxio"
)

// BlobWriter stages one blob under tmp/, hashing as it goes; Commit verifies and publishes it.
// A BlobWriter is for one goroutine.
type BlobWriter struct {
	s    *Store
	f    *os.File
	h    hash.Hash
	n    int64
	done bool
}

// NewBlobWriter starts a blob; the caller must Commit or Close it.
func (s *Store) NewBlobWriter() (*BlobWriter, error) {
	tmp, err := s.tmpDir()
	if err != nil {
		return nil, fmt.Errorf("create blob: %w", err)
	}
	f, err := os.CreateTemp(tmp, "blob-")
	if err != nil {
		return nil, fmt.Errorf("create blob: %w", err)
	}
	return &BlobWriter{s: s, f: f, h: sha256.New()}, nil
}

// Write appends to the blob.
func (w *BlobWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("write to a committed or closed blob")
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	return n, err
}

// Commit publishes the blob under blobs/sha256/<hex> and returns its digest and size. When
// want is non-zero and the content does not match it, nothing is stored and Commit fails.
func (w *BlobWriter) Commit(want v1.Hash) (v1.Hash, int64, error) {
	if w.done {
		return v1.Hash{}, 0, errors.New("commit of a committed or closed blob")
	}
	defer w.Close()
	got := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(w.h.Sum(nil))}
	if want != (v1.Hash{}) && want != got {
		return v1.Hash{}, 0, fmt.Errorf("blob %w: expected %s, got %s (%d bytes); the source is corrupt or was changed while reading", ErrDigest, want, got, w.n)
	}
	if err := w.f.Chmod(0o644); err != nil {
		return v1.Hash{}, 0, fmt.Errorf("commit blob %s: %w", got, err)
	}
	w.s.gcMu.RLock()
	defer w.s.gcMu.RUnlock()
	dst := w.s.blobPath(got)
	// Content-addressed: an existing file already holds these exact bytes, made durable by
	// the Commit that published it, so the staged copy needs no fsync (a rebuild's layers).
	if _, err := os.Stat(dst); err == nil {
		return got, w.n, nil
	}
	if err := w.f.Sync(); err != nil {
		return v1.Hash{}, 0, fmt.Errorf("sync blob %s: %w", got, err)
	}
	if err := os.Rename(w.f.Name(), dst); err != nil {
		return v1.Hash{}, 0, fmt.Errorf("commit blob %s: %w", got, err)
	}
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return v1.Hash{}, 0, fmt.Errorf("commit blob %s: %w", got, err)
	}
	return got, w.n, nil
}

// Close discards the blob unless it was committed; it is safe to call more than once.
func (w *BlobWriter) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	err := w.f.Close()
	if rmErr := os.Remove(w.f.Name()); rmErr != nil && !os.IsNotExist(rmErr) && err == nil {
		err = rmErr
	}
	return err
}

// WriteBlob stores the blob read from r. With a non-zero want that is already present it
// returns at once without reading r; otherwise the content must hash to want.
func (s *Store) WriteBlob(ctx context.Context, r io.Reader, want v1.Hash) (v1.Hash, int64, error) {
	if want != (v1.Hash{}) {
		if size, err := s.BlobSize(want); err == nil {
			return want, size, nil
		}
	}
	w, err := s.NewBlobWriter()
	if err != nil {
		return v1.Hash{}, 0, err
	}
	defer w.Close()
	if _, err := ctxio.Copy(ctx, w, r); err != nil {
		return v1.Hash{}, 0, fmt.Errorf("write blob %s: %w", want, err)
	}
	return w.Commit(want)
}

// HasBlob reports whether the blob is stored.
func (s *Store) HasBlob(h v1.Hash) bool {
	_, err := s.BlobSize(h)
	return err == nil
}

// OpenBlob opens a stored blob for reading, first fetching one that only a remote record
// names; errors.Is(err, ErrNotFound) when it is absent. Callers behind go-containerregistry's
// context-free Compressed() end up here, so the fetch cannot take their context.
func (s *Store) OpenBlob(h v1.Hash) (io.ReadCloser, error) {
	if err := checkHash(h); err != nil {
		return nil, err
	}
	f, err := os.Open(s.blobPath(h))
	if os.IsNotExist(err) {
		if _, remote := s.Remote(h); remote {
			if err := s.FetchBlob(context.Background(), h); err != nil {
				return nil, err
			}
			return s.OpenBlob(h)
		}
		return nil, fmt.Errorf("blob %s: %w", h, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", h, err)
	}
	return f, nil
}

// BlobSize is the stored size of a blob; errors.Is(err, ErrNotFound) when it is absent.
func (s *Store) BlobSize(h v1.Hash) (int64, error) {
	if err := checkHash(h); err != nil {
		return 0, err
	}
	fi, err := os.Stat(s.blobPath(h))
	if os.IsNotExist(err) {
		return 0, fmt.Errorf("blob %s: %w", h, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("stat blob %s: %w", h, err)
	}
	return fi.Size(), nil
}

// readBlob returns a whole (small) blob: manifests, configs, indexes.
func (s *Store) readBlob(h v1.Hash) ([]byte, error) {
	if err := checkHash(h); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(s.blobPath(h))
	if os.IsNotExist(err) {
		return nil, fmt.Errorf("blob %s: %w", h, ErrNotFound)
	}
	return b, err
}

func (s *Store) blobPath(h v1.Hash) string { return filepath.Join(s.blobDir(), h.Hex) }

// checkHash refuses digests that could escape blobs/sha256 or name another algorithm.
func checkHash(h v1.Hash) error {
	if h.Algorithm != "sha256" || len(h.Hex) != 64 {
		return fmt.Errorf("unsupported digest %q: kiln stores sha256 digests only", h.String())
	}
	for _, c := range h.Hex {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("invalid digest %q: want 64 lowercase hex digits", h.String())
		}
	}
	return nil
}
