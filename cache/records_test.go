package cache

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestCacheRecords(t *testing.T) {
	s := openStore(t)
	ld, diffID := storedLayer(t, s)
	key := "sha256:" + strings.Repeat("ab", 32)

	if _, ok, err := s.CacheGet(key); ok || err != nil {
		t.Fatalf("empty store: ok=%v err=%v", ok, err)
	}
	rec := CacheRecord{Layer: &ld, DiffID: diffID, Meta: map[string]string{"env": "A=1"}}
	if err := s.CachePut(key, rec); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.CacheGet(key)
	if err != nil || !ok {
		t.Fatalf("CacheGet: ok=%v err=%v", ok, err)
	}
	if got.Layer.Digest != ld.Digest || got.DiffID != diffID || got.Meta["env"] != "A=1" || got.Created.IsZero() {
		t.Fatalf("round trip: %+v", got)
	}
	noLayer := "sha256:" + strings.Repeat("cd", 32)
	if err := s.CachePut(noLayer, CacheRecord{Meta: map[string]string{"cmd": "sh"}}); err != nil {
		t.Fatal(err)
	}
	if got, ok, _ := s.CacheGet(noLayer); !ok || got.Layer != nil || got.DiffID != (v1.Hash{}) {
		t.Fatalf("layerless record: %+v %v", got, ok)
	}
}

// storedLayer stores a one-layer image and returns its layer, for records to point at.
func storedLayer(t *testing.T, s *Store) (v1.Descriptor, v1.Hash) {
	t.Helper()
	_, d := storeRandomImage(t, s, 1)
	img, _ := s.Image(d.Digest)
	ls, _ := img.Layers()
	ld, _ := partialDescriptor(t, ls[0])
	diffID, _ := ls[0].DiffID()
	return ld, diffID
}

func TestCachePutRejects(t *testing.T) {
	s := openStore(t)
	missing := v1.Descriptor{Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}}
	if err := s.CachePut("sha256:"+strings.Repeat("1", 64), CacheRecord{Layer: &missing}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("record with absent layer: %v", err)
	}
	for _, key := range []string{"", "abc", "sha256:../../x", "md5:" + strings.Repeat("1", 32)} {
		if err := s.CachePut(key, CacheRecord{}); err == nil {
			t.Errorf("key %q accepted", key)
		}
	}
}

func TestCacheCorruptRecordIsMiss(t *testing.T) {
	s := openStore(t)
	key := "sha256:" + strings.Repeat("ef", 32)
	if err := s.CachePut(key, CacheRecord{}); err != nil {
		t.Fatal(err)
	}
	p, _ := s.recordPath(key)
	for _, junk := range []string{"{not json", `{"version":99}`, `{"version":1,"diffID":"nope"}`} {
		if err := os.WriteFile(p, []byte(junk), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := s.CacheGet(key); ok || err != nil {
			t.Errorf("%q: ok=%v err=%v, want a clean miss", junk, ok, err)
		}
	}
}

// CachePut skips the fsync, so a crash before Flush can leave a record empty or cut short
// under its final name (the rename reached the disk, the data did not): that is a miss, and
// GC removes it.
func TestCacheTornRecordIsMiss(t *testing.T) {
	s := openStore(t)
	ld, diffID := storedLayer(t, s)
	key := "sha256:" + strings.Repeat("76", 32)
	if err := s.CachePut(key, CacheRecord{Layer: &ld, DiffID: diffID, Meta: map[string]string{"env": "A=1"}}); err != nil {
		t.Fatal(err)
	}
	if !s.unsynced.Load() {
		t.Fatal("CachePut left nothing for Flush to make durable")
	}
	if err := s.Flush(); err != nil || s.unsynced.Load() {
		t.Fatalf("Flush: %v, still pending: %v", err, s.unsynced.Load())
	}
	p, _ := s.recordPath(key)
	whole, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	// What an OS crash can leave of an unsynced record: any prefix of it, or its length in
	// zeros (an allocated but unwritten block). Each must be a miss, never a wrong hit.
	torn := [][]byte{make([]byte, len(whole))}
	for n := range len(whole) {
		torn = append(torn, whole[:n])
	}
	for _, junk := range torn {
		if err := os.WriteFile(p, junk, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := s.CacheGet(key); ok || err != nil {
			t.Fatalf("a torn record %q of %d bytes: ok=%v err=%v, want a clean miss", junk, len(whole), ok, err)
		}
	}
	x := reopenExclusive(t, s)
	st, err := x.GC(context.Background(), GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) || st.CacheRecords != 1 {
		t.Errorf("GC left the torn record (stat: %v, %d records removed)", err, st.CacheRecords)
	}
}

// A hit refreshes the record's mtime (its last use for GC), at most once a minute.
func TestCacheGetTouches(t *testing.T) {
	s := openStore(t)
	key := "sha256:" + strings.Repeat("12", 32)
	if err := s.CachePut(key, CacheRecord{}); err != nil {
		t.Fatal(err)
	}
	p, _ := s.recordPath(key)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(p, old, old)
	if _, ok, _ := s.CacheGet(key); !ok {
		t.Fatal("miss")
	}
	fi, _ := os.Stat(p)
	if time.Since(fi.ModTime()) > time.Minute {
		t.Fatalf("mtime not refreshed: %v", fi.ModTime())
	}
}

func partialDescriptor(t *testing.T, l v1.Layer) (v1.Descriptor, error) {
	t.Helper()
	d, _ := l.Digest()
	size, _ := l.Size()
	mt, _ := l.MediaType()
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	buf.ReadFrom(rc)
	if int64(buf.Len()) != size {
		t.Fatalf("layer size %d, descriptor says %d", buf.Len(), size)
	}
	return v1.Descriptor{MediaType: mt, Size: size, Digest: d}, nil
}
