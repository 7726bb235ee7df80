package cache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// fakeSnapshot makes snapshots/<hex> holding one file of size n.
func fakeSnapshot(t *testing.T, s *Store, diffID v1.Hash, n int) {
	t.Helper()
	dir := s.snapshotPath(diffID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), make([]byte, n), 0o644); err != nil {
		t.Fatal(err)
	}
}

// firstLayer returns the descriptor and diff ID of an image's first layer.
func firstLayer(t *testing.T, img v1.Image) (v1.Descriptor, v1.Hash) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return m.Layers[0], cf.RootFS.DiffIDs[0]
}

// reopenExclusive closes s and reopens its root for GC.
func reopenExclusive(t *testing.T, s *Store) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	x, err := OpenExclusive(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

func TestGC(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	kept, keptDesc := storeRandomImage(t, s, 2)
	if err := s.Tag(ctx, mustName(t, "kept"), keptDesc); err != nil {
		t.Fatal(err)
	}
	_, goneDesc := storeRandomImage(t, s, 2) // untagged: 4 blobs to go
	cached, _ := storeRandomImage(t, s, 1)   // untagged, but a cache record holds its layer
	cl, cdiff := firstLayer(t, cached)
	key := "sha256:" + strings.Repeat("a", 64)
	if err := s.CachePut(key, CacheRecord{Layer: &cl, DiffID: cdiff}); err != nil {
		t.Fatal(err)
	}
	_, keptDiff := firstLayer(t, kept)
	orphan := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("9", 64)}
	fakeSnapshot(t, s, keptDiff, 10)
	fakeSnapshot(t, s, cdiff, 10)
	fakeSnapshot(t, s, orphan, 1000)

	x := reopenExclusive(t, s)
	dry, err := x.GC(ctx, GCOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	// gone: its manifest, config, 2 layers; cached image: manifest and config.
	want := GCStats{Blobs: 6, Snapshots: 1}
	if dry.Blobs != want.Blobs || dry.Snapshots != want.Snapshots || dry.CacheRecords != 0 || dry.Bytes < 1000 {
		t.Fatalf("dry run = %+v, want %+v", dry, want)
	}
	if !x.HasBlob(goneDesc.Digest) || !exists(x.snapshotPath(orphan)) {
		t.Fatal("dry run removed something")
	}
	st, err := x.GC(ctx, GCOptions{})
	if err != nil || !reflect.DeepEqual(st, dry) {
		t.Fatalf("GC = %+v, %v; want %+v", st, err, dry)
	}
	if x.HasBlob(goneDesc.Digest) || exists(x.snapshotPath(orphan)) {
		t.Fatal("unreferenced blob or snapshot survived")
	}
	img, err := x.Image(keptDesc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("tagged image damaged by GC: %v", err)
	}
	if _, ok, _ := x.CacheGet(key); !ok || !exists(x.snapshotPath(cdiff)) || !exists(x.snapshotPath(keptDiff)) {
		t.Fatal("cache record, its layer or a kept snapshot was collected")
	}

	st, err = x.GC(ctx, GCOptions{All: true})
	if err != nil || st.CacheRecords != 1 || st.Blobs != 1 || st.Snapshots != 1 {
		t.Fatalf("GC All = %+v, %v", st, err)
	}
	if _, ok, _ := x.CacheGet(key); ok || x.HasBlob(cl.Digest) {
		t.Fatal("GC All kept the cache")
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("tagged image damaged by GC All: %v", err)
	}
}

func TestGCNeedsExclusive(t *testing.T) {
	s := openStore(t)
	if _, err := s.GC(context.Background(), GCOptions{}); err == nil {
		t.Fatal("GC ran on a shared store")
	}
	if _, err := OpenExclusive(s.Root()); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "retry when it finishes") {
		t.Fatalf("OpenExclusive while open: %v", err)
	}
	root := s.Root()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	x, err := OpenExclusive(root)
	if err != nil {
		t.Fatalf("OpenExclusive after Close: %v", err)
	}
	// Open waits for the GC to finish rather than failing.
	opened := make(chan *Store)
	go func() {
		s2, err := Open(root)
		if err != nil {
			t.Error(err)
		}
		opened <- s2
	}()
	select {
	case <-opened:
		t.Fatal("Open did not wait for the exclusive holder")
	case <-time.After(100 * time.Millisecond):
	}
	x.Close()
	select {
	case s2 := <-opened:
		if s2 != nil {
			s2.Close()
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Open still blocked after the exclusive holder closed")
	}
}

func TestGCKeepStorage(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	keys, layers := agedRecords(t, s, 3*time.Hour, 2*time.Hour, time.Hour)
	x := reopenExclusive(t, s)
	st, err := x.GC(ctx, GCOptions{KeepStorage: layers[2].Size})
	if err != nil || st.CacheRecords != 2 {
		t.Fatalf("GC = %+v, %v; want the 2 oldest records dropped", st, err)
	}
	for i, key := range keys {
		_, ok, _ := x.CacheGet(key)
		if ok != (i == 2) || x.HasBlob(layers[i].Digest) != (i == 2) {
			t.Errorf("record %d: present=%v blob=%v", i, ok, x.HasBlob(layers[i].Digest))
		}
	}
}

// GC drops staging leftovers from before it opened, and corrupt cache records.
func TestGCCleansTmpAndCorruptRecords(t *testing.T) {
	s := openStore(t)
	stale, err := s.TempDir("stale-")
	if err != nil {
		t.Fatal(err)
	}
	key := "sha256:" + strings.Repeat("c", 64)
	p, _ := s.recordPath(key)
	os.WriteFile(p, []byte("garbage"), 0o644)
	past := time.Now().Add(-time.Minute)
	os.Chtimes(stale, past, past)
	x := reopenExclusive(t, s)
	fresh, _ := x.TempDir("fresh-")
	st, err := x.GC(context.Background(), GCOptions{})
	if err != nil || st.CacheRecords != 1 {
		t.Fatalf("GC = %+v, %v", st, err)
	}
	if exists(stale) || !exists(fresh) || exists(p) {
		t.Fatalf("stale kept=%v fresh kept=%v corrupt record kept=%v", exists(stale), exists(fresh), exists(p))
	}
}

// A tagged index keeps its child images and their layers.
func TestGCKeepsIndexChildren(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	idx, err := random.Index(256, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := s.WriteIndex(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, mustName(t, "multi"), desc); err != nil {
		t.Fatal(err)
	}
	before := countFiles(t, s.blobDir())
	x := reopenExclusive(t, s)
	if st, err := x.GC(ctx, GCOptions{All: true}); err != nil || st.Blobs != 0 {
		t.Fatalf("GC = %+v, %v", st, err)
	}
	got, err := x.Index(desc.Digest)
	if err != nil || countFiles(t, x.blobDir()) != before {
		t.Fatalf("index damaged: %v", err)
	}
	if err := validate.Index(got); err != nil {
		t.Fatal(err)
	}
	if _, _, err := x.Lookup("multi"); err != nil {
		t.Fatal(err)
	}
}
