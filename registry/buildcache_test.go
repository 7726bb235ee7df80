package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/kiln-build/kiln/cache"
)

func TestParseCacheSpec(t *testing.T) {
	for _, tc := range []struct {
		in     string
		export bool
		want   string // "" = valid; else part of the error
	}{
		{"reg/app:cache", false, ""},
		{"type=registry,ref=reg/app:cache,mode=min,compression=zstd,ignore-error=true", true, ""},
		{"type=local,src=/tmp/c", false, ""},
		{"type=local,dest=/tmp/c,mode=max", true, ""},
		{"type=inline", true, ""},
		{"type=inline", false, "read from the image"},
		{"type=local,dest=/tmp/c", false, `unknown key "dest" for type=local; valid keys: type, src, ignore-error`},
		{"type=local,foo=1,dest=/x", true, "valid keys: type, dest, mode, compression, ignore-error"},
		{"type=local", true, "needs dest=DIR"},
		{"type=registry,mode=max", true, "needs ref="},
		{"type=registry,ref=r/a,mode=all", true, "mode must be min or max"},
		{"type=registry,ref=r/a,compression=estargz", true, "gzip or zstd"},
		{"type=s3,bucket=x", true, "unknown type"},
	} {
		sp, err := ParseCacheSpec(tc.in, tc.export)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.in, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", tc.in, err, tc.want)
		}
		if tc.in == "type=registry,ref=reg/app:cache,mode=min,compression=zstd,ignore-error=true" &&
			(sp.Mode != CacheMin || sp.Compression == nil || *sp.Compression != Zstd || !sp.IgnoreError) {
			t.Errorf("%s parsed as %+v", tc.in, sp)
		}
	}
}

// cachedStore is a store with n cache records, each with its own random layer.
func cachedStore(t *testing.T, n int) (*cache.Store, []string) {
	t.Helper()
	s := openStore(t)
	img, err := random.Image(4096, int64(n))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteImage(context.Background(), img); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	var keys []string
	for i, l := range layers {
		d, _ := l.Digest()
		diff, _ := l.DiffID()
		size, _ := l.Size()
		mt, _ := l.MediaType()
		sum := sha256.Sum256([]byte(fmt.Sprint("key", i, t.Name())))
		k := "sha256:" + hex.EncodeToString(sum[:])
		rec := cache.CacheRecord{Layer: &v1.Descriptor{MediaType: mt, Digest: d, Size: size}, DiffID: diff, Duration: time.Duration(i+1) * time.Second}
		if err := s.CachePut(k, rec); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	return s, keys
}

func withFetcher(t *testing.T, s *cache.Store) *cache.Store {
	t.Helper()
	f, err := NewFetcher(WithConfig(nil), fastRetry())
	if err != nil {
		t.Fatal(err)
	}
	s.SetFetcher(f)
	return s
}

// readLayer reads the record's layer through the store (fetching it when remote).
func readLayer(t *testing.T, s *cache.Store, key string) {
	t.Helper()
	rec, ok, err := s.CacheGet(key)
	if err != nil || !ok {
		t.Fatalf("record %s: %v %v", key, ok, err)
	}
	rc, err := s.OpenBlob(rec.Layer.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatal(err)
	}
}

// TestLocalCacheRoundTrip: type=local writes an OCI layout dir; importing it records every
// entry with its layer left in the dir until read; mode=min exports only the final keys; a
// second export into the same dir writes only the blobs it lacks.
func TestLocalCacheRoundTrip(t *testing.T) {
	ctx := context.Background()
	src, keys := cachedStore(t, 3)
	dir := t.TempDir()
	spec, _ := ParseCacheSpec("type=local,dest="+dir+",mode=min", true)
	res, err := ExportCache(ctx, src, spec, v1.Hash{}, CacheKeys{All: keys, Final: keys[:2]}, WithConfig(nil))
	if err != nil || res.Records != 2 {
		t.Fatalf("export: %+v %v", res, err)
	}
	spec.Mode = CacheMax
	if res, err = ExportCache(ctx, src, spec, v1.Hash{}, CacheKeys{All: keys}, WithConfig(nil)); err != nil || res.Records != 3 {
		t.Fatalf("export max: %+v %v", res, err)
	}
	dst := withFetcher(t, openStore(t))
	in, _ := ParseCacheSpec("type=local,src="+dir, false)
	got, err := ImportCache(ctx, dst, in, WithConfig(nil))
	if err != nil || got.Records != 3 || len(got.Skipped) != 0 {
		t.Fatalf("import: %+v %v", got, err)
	}
	rec, _, _ := dst.CacheGet(keys[0])
	if dst.HasBlob(rec.Layer.Digest) {
		t.Error("import copied a layer nothing read")
	}
	if rec.Duration != time.Second || rec.Source != dir {
		t.Errorf("imported record: duration %v, source %q; want the exporter's 1s and %s", rec.Duration, rec.Source, dir)
	}
	readLayer(t, dst, keys[0])
	if !dst.HasBlob(rec.Layer.Digest) || dst.FetchedBytes() != rec.Layer.Size {
		t.Errorf("reading the layer fetched %d bytes, want %d", dst.FetchedBytes(), rec.Layer.Size)
	}
}

// TestCacheImportSkipsBadRecords: a corrupt entry or one naming a missing layer is skipped
// and named, the rest imported; a cache of a newer format is refused with a clear error.
func TestCacheImportSkipsBadRecords(t *testing.T) {
	ctx := context.Background()
	fr := newFaultyRegistry(t)
	src, keys := cachedStore(t, 1)
	ref := fr.host() + "/team/cache:1"
	spec, _ := ParseCacheSpec(ref, true)
	if _, err := ExportCache(ctx, src, spec, v1.Hash{}, CacheKeys{All: keys}, WithConfig(nil), fastRetry()); err != nil {
		t.Fatal(err)
	}
	// Rewrite the label: one good entry, one corrupt, one pointing past the layers.
	relabel := func(label, value string) string {
		s := openStore(t)
		d, err := Pull(ctx, s, ref, WithConfig(nil), WithPlatform(v1.Platform{OS: "linux", Architecture: "kiln-cache"}))
		if err != nil {
			t.Fatal(err)
		}
		stored, _ := s.Image(d.Digest)
		cf, _ := stored.ConfigFile()
		cf = cf.DeepCopy()
		cf.Config.Labels = map[string]string{label: value}
		changed, _ := mutate.ConfigFile(stored, cf)
		desc, err := s.WriteImage(ctx, changed)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := cache.ParseName(fr.host() + "/team/cache:bad")
		if err := s.Tag(ctx, n, desc); err != nil {
			t.Fatal(err)
		}
		if _, err := Push(ctx, s, n.String(), n.String(), WithConfig(nil), fastRetry()); err != nil {
			t.Fatal(err)
		}
		return n.String()
	}
	bad := relabel(cacheLabel, `[{"key":"`+keys[0]+`","layer":0},{"key":7},{"key":"sha256:`+strings.Repeat("ab", 32)+`","layer":5}]`)
	dst := openStore(t)
	in, _ := ParseCacheSpec(bad, false)
	got, err := ImportCache(ctx, dst, in, WithConfig(nil), fastRetry())
	if err != nil || got.Records != 1 || len(got.Skipped) != 2 {
		t.Fatalf("import: %+v %v", got, err)
	}
	if !strings.Contains(got.Skipped[1], strings.Repeat("ab", 32)) || !strings.Contains(got.Skipped[0], "corrupt") {
		t.Errorf("skips do not name the records: %q", got.Skipped)
	}
	newer := relabel("dev.kiln.buildcache.v2", "{}")
	in, _ = ParseCacheSpec(newer, false)
	if _, err := ImportCache(ctx, openStore(t), in, WithConfig(nil), fastRetry()); err == nil || !strings.Contains(err.Error(), "newer kiln") {
		t.Errorf("newer cache: %v", err)
	}
}

// TestInterruptedCacheExportKeepsOldCache: a registry that drops the connection while the
// second export uploads leaves the first cache whole; with ignore-error=true the failure is
// a warning. A second export of the same cache uploads no blob again.
func TestInterruptedCacheExportKeepsOldCache(t *testing.T) {
	ctx := context.Background()
	fr := newFaultyRegistry(t)
	src, keys := cachedStore(t, 4)
	ref := fr.host() + "/team/cache:1"
	spec, _ := ParseCacheSpec(ref, true)
	if _, err := ExportCache(ctx, src, spec, v1.Hash{}, CacheKeys{All: keys[:2]}, WithConfig(nil), fastRetry()); err != nil {
		t.Fatal(err)
	}
	var uploads int
	fr.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost || r.Method == http.MethodPatch || r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/") {
			uploads++
		}
		return false
	})
	if _, err := ExportCache(ctx, src, spec, v1.Hash{}, CacheKeys{All: keys[:2]}, WithConfig(nil), fastRetry()); err != nil {
		t.Fatal(err)
	}
	if uploads != 0 {
		t.Errorf("re-export of an unchanged cache made %d uploads", uploads)
	}
	fr.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut || r.Method == http.MethodPatch {
			resetConn(w)
			return true
		}
		return false
	})
	if _, err := ExportCache(ctx, src, spec, v1.Hash{}, CacheKeys{All: keys}, WithConfig(nil), fastRetry()); err == nil {
		t.Fatal("an export through a dropping registry succeeded")
	}
	spec.IgnoreError = true
	res, err := ExportCache(ctx, src, spec, v1.Hash{}, CacheKeys{All: keys}, WithConfig(nil), fastRetry())
	if err != nil || len(res.Warnings) != 1 {
		t.Errorf("ignore-error: %+v %v", res, err)
	}
	fr.setFault(nil)
	dst := withFetcher(t, openStore(t))
	in, _ := ParseCacheSpec(ref, false)
	got, err := ImportCache(ctx, dst, in, WithConfig(nil), fastRetry())
	if err != nil || got.Records != 2 {
		t.Fatalf("the old cache after a failed export: %+v %v", got, err)
	}
	readLayer(t, dst, keys[1])
}

// TestInterruptedLocalCacheExport: a type=local export that fails half-way (here a blob it
// cannot write; a kill stops it at the same points) leaves the directory's previous cache
// whole — blobs land first, index.json last and atomically — and the next export completes it.
func TestInterruptedLocalCacheExport(t *testing.T) {
	ctx := context.Background()
	src, keys := cachedStore(t, 4)
	dir := t.TempDir()
	spec, _ := ParseCacheSpec("type=local,dest="+dir+",mode=max", true)
	if _, err := ExportCache(ctx, src, spec, v1.Hash{}, CacheKeys{All: keys[:2]}, WithConfig(nil)); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	rec, _, err := src.CacheGet(keys[3])
	if err != nil || rec.Layer == nil {
		t.Fatalf("record of the last key: %+v %v", rec, err)
	}
	blocker := filepath.Join(dir, "blobs", "sha256", rec.Layer.Digest.Hex)
	if err := os.MkdirAll(filepath.Join(blocker, "x"), 0o755); err != nil { // a blob that cannot be written
		t.Fatal(err)
	}
	if _, err := ExportCache(ctx, src, spec, v1.Hash{}, CacheKeys{All: keys}, WithConfig(nil)); err == nil {
		t.Fatal("an export that could not write a blob succeeded")
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "index.json")); !bytes.Equal(after, before) {
		t.Fatal("a failed export changed index.json")
	}
	in, _ := ParseCacheSpec("type=local,src="+dir, false)
	dst := withFetcher(t, openStore(t))
	got, err := ImportCache(ctx, dst, in, WithConfig(nil))
	if err != nil || got.Records != 2 || len(got.Skipped) != 0 {
		t.Fatalf("the old cache after a failed export: %+v %v", got, err)
	}
	readLayer(t, dst, keys[1])
	if err := os.RemoveAll(blocker); err != nil {
		t.Fatal(err)
	}
	if res, err := ExportCache(ctx, src, spec, v1.Hash{}, CacheKeys{All: keys}, WithConfig(nil)); err != nil || res.Records != 4 {
		t.Fatalf("export after the fault: %+v %v", res, err)
	}
	got, err = ImportCache(ctx, withFetcher(t, openStore(t)), in, WithConfig(nil))
	if err != nil || got.Records != 4 {
		t.Fatalf("import of the completed cache: %+v %v", got, err)
	}
}

// TestCacheExportCompression: compression=zstd re-encodes the cached layers for the cache
// (through a registry and a layout dir), compression=gzip keeps gzip ones; what a fresh store
// imports names the chosen encoding and its bytes read back whole.
func TestCacheExportCompression(t *testing.T) {
	ctx := context.Background()
	fr := newFaultyRegistry(t)
	for _, tc := range []struct{ name, to, from, suffix string }{
		{"registry-zstd", "type=registry,ref=" + fr.host() + "/team/z:cache,compression=zstd", fr.host() + "/team/z:cache", "+zstd"},
		{"registry-gzip", "type=registry,ref=" + fr.host() + "/team/g:cache,compression=gzip", fr.host() + "/team/g:cache", ".gzip"},
		{"local-zstd", "type=local,dest=DIR,compression=zstd", "type=local,src=DIR", "+zstd"},
		{"local-gzip", "type=local,dest=DIR,compression=gzip", "type=local,src=DIR", ".gzip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src, keys := cachedStore(t, 2)
			out, err := ParseCacheSpec(strings.ReplaceAll(tc.to, "DIR", dir), true)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ExportCache(ctx, src, out, v1.Hash{}, CacheKeys{All: keys}, WithConfig(nil), fastRetry()); err != nil {
				t.Fatal(err)
			}
			dst := withFetcher(t, openStore(t))
			in, _ := ParseCacheSpec(strings.ReplaceAll(tc.from, "DIR", dir), false)
			if got, err := ImportCache(ctx, dst, in, WithConfig(nil), fastRetry()); err != nil || got.Records != 2 {
				t.Fatalf("import: %+v %v", got, err)
			}
			for _, k := range keys {
				rec, _, _ := dst.CacheGet(k)
				if mt := string(rec.Layer.MediaType); !strings.HasSuffix(mt, tc.suffix) {
					t.Errorf("record %s: layer media type %s, want *%s", k, mt, tc.suffix)
				}
				readLayer(t, dst, k)
			}
		})
	}
}
