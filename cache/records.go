package cache

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/internal/atomicfile"
)

// CacheRecord is what a build step produced, found again by the step's cache key.
type CacheRecord struct {
	Layer   *v1.Descriptor    // the layer blob; nil when the step made no layer (ENV, CMD, …)
	DiffID  v1.Hash           // the layer's uncompressed digest, to find or make its snapshot
	Created time.Time         // when the step ran; CachePut fills in now when zero
	Meta    map[string]string // step-specific results, e.g. a config delta
	Source  string            // the imported cache this record came from ("" = built here), for --explain
	// Duration is how long the step took when it ran, so a hit can say what it saved.
	Duration time.Duration
}

// recordVersion marks the file format so a future kiln can tell old records apart.
const recordVersion = 1

// recordFile is CacheRecord on disk; DiffID is a string so that "no diff ID" stays valid JSON.
type recordFile struct {
	Version int               `json:"version"`
	Layer   *v1.Descriptor    `json:"layer,omitempty"`
	DiffID  string            `json:"diffID,omitempty"`
	Created time.Time         `json:"created"`
	Meta    map[string]string `json:"meta,omitempty"`
	Source  string            `json:"source,omitempty"`
	Nanos   int64             `json:"durationNanos,omitempty"`
}

// touchAfter limits how often a hit refreshes a record's mtime, which GC uses as last use.
const touchAfter = time.Minute

// CacheGet finds the record for key ("sha256:…"). A corrupt record, or one whose layer blob
// is gone (neither stored nor remote), is a miss, so the step simply runs again.
func (s *Store) CacheGet(key string) (CacheRecord, bool, error) {
	p, err := s.recordPath(key)
	if err != nil {
		return CacheRecord{}, false, err
	}
	raw, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return CacheRecord{}, false, nil
	}
	if err != nil {
		return CacheRecord{}, false, fmt.Errorf("read cache record %s: %w", key, err)
	}
	rec, ok := decodeRecord(raw)
	if !ok || (rec.Layer != nil && !s.HasContent(rec.Layer.Digest)) {
		return CacheRecord{}, false, nil
	}
	if fi, err := os.Stat(p); err == nil && time.Since(fi.ModTime()) > touchAfter {
		now := time.Now()
		_ = os.Chtimes(p, now, now) // best effort: only ages the record for GC
	}
	return rec, true, nil
}

func decodeRecord(raw []byte) (CacheRecord, bool) {
	var f recordFile
	if err := json.Unmarshal(raw, &f); err != nil || f.Version != recordVersion {
		return CacheRecord{}, false
	}
	rec := CacheRecord{Layer: f.Layer, Created: f.Created, Meta: f.Meta, Source: f.Source, Duration: time.Duration(f.Nanos)}
	if f.DiffID != "" {
		h, err := v1.NewHash(f.DiffID)
		if err != nil {
			return CacheRecord{}, false
		}
		rec.DiffID = h
	}
	if rec.Layer != nil && checkHash(rec.Layer.Digest) != nil {
		return CacheRecord{}, false
	}
	return rec, true
}

// CachePut stores the record for key atomically, replacing any previous one. The record's
// layer blob must already be in the store or named by a remote record, so a hit can always be used.
// The record is not fsynced (Flush makes it durable): one lost to a crash is only a miss, and
// a torn one fails to decode, which CacheGet treats as a miss and GC removes.
func (s *Store) CachePut(key string, rec CacheRecord) error {
	p, err := s.recordPath(key)
	if err != nil {
		return err
	}
	f := recordFile{Version: recordVersion, Layer: rec.Layer, Created: rec.Created, Meta: rec.Meta, Source: rec.Source, Nanos: int64(rec.Duration)}
	if f.Created.IsZero() {
		f.Created = time.Now().UTC()
	}
	if rec.DiffID != (v1.Hash{}) {
		f.DiffID = rec.DiffID.String()
	}
	data, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encode cache record %s: %w", key, err)
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	if rec.Layer != nil && !s.HasContent(rec.Layer.Digest) {
		return fmt.Errorf("cache record %s: layer %s is neither in the store nor remote: %w", key, rec.Layer.Digest, ErrNotFound)
	}
	// Atomic but not synced: a record an OS crash loses or tears reads as a miss (decodeRecord,
	// HasContent), and a miss only re-runs a step; Flush makes the build's records durable with
	// one syncfs before its image is tagged, instead of two fsyncs per step.
	if err := s.writeFile(p, data, atomicfile.Options{Perm: 0o644, NoSync: true}); err != nil {
		return fmt.Errorf("write cache record %s: %w", key, err)
	}
	s.unsynced.Store(true)
	return nil
}

// recordPath maps a key to cache/index/sha256/<hex>.json, refusing anything but a digest.
func (s *Store) recordPath(key string) (string, error) {
	h, err := v1.NewHash(key)
	if err == nil {
		err = checkHash(h)
	}
	if err != nil {
		return "", fmt.Errorf("invalid cache key %q: %w", key, err)
	}
	return filepath.Join(s.recordDir(), h.Hex+".json"), nil
}
