package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/singleflight"
)

// ErrRemoteCorrupt is a lazily fetched blob that did not match its digest: the cache records
// naming it are misses from then on, so a build that hits it can run again and do those steps.
var ErrRemoteCorrupt = errors.New("the remote cache holds a corrupt blob")

// RemoteBlob says that a blob the store does not hold lives in a registry repository, so a
// lazily imported cache can name layers whose bytes are fetched only when something reads them.
type RemoteBlob struct {
	Desc v1.Descriptor // digest, size and media type of the blob
	Repo string        // repository holding it, "host/path" (e.g. the cache image's repository)
}

// Fetcher streams a remote blob's bytes; the registry package provides one, so that the
// store can fetch on demand without knowing registries. The store verifies the digest.
type Fetcher interface {
	Fetch(ctx context.Context, b RemoteBlob) (io.ReadCloser, error)
}

// remoteVersion marks the remote record format.
const remoteVersion = 1

// remoteFile is RemoteBlob on disk, its own versioned struct.
type remoteFile struct {
	Version int           `json:"version"`
	Desc    v1.Descriptor `json:"desc"`
	Repo    string        `json:"repo"`
}

// fetchState is what a Store knows of lazy fetching: who fetches, and how much came down.
type fetchState struct {
	fetcher atomic.Pointer[Fetcher]
	bytes   atomic.Int64
	flight  singleflight.Group // one download per blob when several readers want it at once
}

// SetFetcher registers how this Store fetches remote blobs; nil turns fetching off.
func (s *Store) SetFetcher(f Fetcher) {
	if f == nil {
		s.fetch.fetcher.Store(nil)
		return
	}
	s.fetch.fetcher.Store(&f)
}

// FetchedBytes counts the bytes fetched for imported caches since Open: the blobs FetchBlob
// fetched and what callers added with CountFetched (manifests, configs, streamed blobs).
func (s *Store) FetchedBytes() int64 { return s.fetch.bytes.Load() }

// CountFetched adds n bytes fetched for an imported cache outside FetchBlob, so that
// FetchedBytes is all a build pulled for its caches, not only the layers.
func (s *Store) CountFetched(n int64) { s.fetch.bytes.Add(n) }

func (s *Store) remoteDir() string { return filepath.Join(s.root, "cache", "remote") }

func (s *Store) remotePath(h v1.Hash) (string, error) {
	if err := checkHash(h); err != nil {
		return "", err
	}
	return filepath.Join(s.remoteDir(), h.Hex+".json"), nil
}

// PutRemote records where a blob the store lacks can be fetched. A blob already stored
// needs no record, and none is written.
func (s *Store) PutRemote(b RemoteBlob) error {
	p, err := s.remotePath(b.Desc.Digest)
	if err != nil {
		return err
	}
	if b.Repo == "" || !strings.Contains(b.Repo, "/") {
		return fmt.Errorf("remote blob %s: repository %q is not host/path", b.Desc.Digest, b.Repo)
	}
	if s.HasBlob(b.Desc.Digest) {
		return nil
	}
	data, err := json.Marshal(remoteFile{Version: remoteVersion, Desc: b.Desc, Repo: b.Repo})
	if err != nil {
		return err
	}
	if err := ensureDir(s.remoteDir()); err != nil {
		return fmt.Errorf("remote blob %s: %w", b.Desc.Digest, err)
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	if err := s.writeFileAtomic(p, data, 0o644); err != nil {
		return fmt.Errorf("remote blob %s: %w", b.Desc.Digest, err)
	}
	return nil
}

// Remote finds the remote record of a blob the store lacks.
func (s *Store) Remote(h v1.Hash) (RemoteBlob, bool) {
	p, err := s.remotePath(h)
	if err != nil {
		return RemoteBlob{}, false
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		return RemoteBlob{}, false
	}
	return decodeRemote(raw, h)
}

// decodeRemote reads a record; another version, or one naming another digest, is no record.
func decodeRemote(raw []byte, h v1.Hash) (RemoteBlob, bool) {
	var f remoteFile
	if json.Unmarshal(raw, &f) != nil || f.Version != remoteVersion || f.Desc.Digest != h || f.Repo == "" {
		return RemoteBlob{}, false
	}
	return RemoteBlob{Desc: f.Desc, Repo: f.Repo}, true
}

// HasContent reports whether the blob is stored or can be fetched on demand.
func (s *Store) HasContent(h v1.Hash) bool {
	if s.HasBlob(h) {
		return true
	}
	_, ok := s.Remote(h)
	return ok
}

// FetchBlob makes sure the blob is stored, fetching it through the Fetcher when only a
// remote record names it; the bytes must match the digest.
func (s *Store) FetchBlob(ctx context.Context, h v1.Hash) error {
	if s.HasBlob(h) {
		return nil
	}
	_, err, _ := s.fetch.flight.Do(h.Hex, func() (any, error) { return nil, s.fetchBlob(ctx, h) })
	return err
}

func (s *Store) fetchBlob(ctx context.Context, h v1.Hash) error {
	if s.HasBlob(h) {
		return nil
	}
	b, ok := s.Remote(h)
	if !ok {
		return fmt.Errorf("blob %s: %w", h, ErrNotFound)
	}
	fp := s.fetch.fetcher.Load()
	if fp == nil {
		return fmt.Errorf("blob %s lives in %s and this command cannot fetch it: %w", h, b.Repo, ErrNotFound)
	}
	rc, err := (*fp).Fetch(ctx, b)
	if err != nil {
		return fmt.Errorf("fetch blob %s from %s: %w", h, b.Repo, err)
	}
	defer rc.Close()
	if _, _, err := s.WriteBlob(ctx, &countReader{r: rc, n: &s.fetch.bytes}, h); err != nil {
		if errors.Is(err, ErrDigest) {
			// Never fetched again: the cache records naming it become misses, so the next
			// build runs those steps instead of failing here again.
			if p, perr := s.remotePath(h); perr == nil {
				_ = os.Remove(p)
			}
			return fmt.Errorf("fetch blob %s from %s: %w (%w); its records are dropped here", h, b.Repo, ErrRemoteCorrupt, err)
		}
		return fmt.Errorf("fetch blob %s from %s: %w", h, b.Repo, err)
	}
	if p, err := s.remotePath(h); err == nil {
		_ = os.Remove(p) // the blob is here now; a leftover record is harmless
	}
	return nil
}

// FetchImage makes sure every layer of the stored image manifest h is stored, e.g. before
// the image is the result of a build that is not only pushed.
func (s *Store) FetchImage(ctx context.Context, h v1.Hash) error {
	img, err := s.Image(h)
	if err != nil {
		return err
	}
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	for _, l := range m.Layers {
		if _, remote := s.Remote(l.Digest); !remote || s.HasBlob(l.Digest) {
			continue
		}
		if err := s.FetchBlob(ctx, l.Digest); err != nil {
			return err
		}
	}
	return nil
}

// countReader adds what it reads to n.
type countReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}

// sweepRemotes drops remote records nothing live names, and those whose blob arrived.
func (s *Store) sweepRemotes(live liveSet, dryRun bool) {
	ents, err := os.ReadDir(s.remoteDir())
	if err != nil || dryRun {
		return
	}
	for _, e := range ents {
		hex, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		if live.blobs[hex] && !s.HasBlob(v1.Hash{Algorithm: "sha256", Hex: hex}) {
			continue
		}
		_ = os.Remove(filepath.Join(s.remoteDir(), e.Name()))
	}
}
