package cache

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// storeDangling writes an image and lists it in index.json without a name, as an untagged
// commit or load leaves it.
func storeDangling(t *testing.T, s *Store) v1.Descriptor {
	t.Helper()
	_, desc := storeRandomImage(t, s, 1)
	if err := s.KeepUntagged(context.Background(), desc); err != nil {
		t.Fatal(err)
	}
	return desc
}

// `image prune` removes only unnamed entries; `image prune -a` every image without a
// container; a leased (container's) image survives both.
func TestGCPruneImages(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	leased, _, _ := leasedImage(t, s, "busybox")
	_, tagged := storeRandomImage(t, s, 1)
	if err := s.Tag(ctx, mustName(t, "app"), tagged); err != nil {
		t.Fatal(err)
	}
	dangling := storeDangling(t, s)

	x := reopenExclusive(t, s)
	st, err := x.GC(ctx, GCOptions{Images: DanglingImages})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Images) != 1 || st.Images[0].Digest != dangling.Digest || !st.Images[0].Name.IsZero() {
		t.Fatalf("dangling prune removed %+v, want only %s", st.Images, dangling.Digest)
	}
	if x.HasBlob(dangling.Digest) || !x.HasBlob(tagged.Digest) {
		t.Fatalf("after dangling prune: dangling blob %v, tagged blob %v", x.HasBlob(dangling.Digest), x.HasBlob(tagged.Digest))
	}

	st, err = x.GC(ctx, GCOptions{Images: UnusedImages})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Images) != 1 || st.Images[0].Name.String() != mustName(t, "app").String() {
		t.Fatalf("prune -a removed %+v, want only app", st.Images)
	}
	if x.HasBlob(tagged.Digest) || !x.HasBlob(leased.Digest) {
		t.Fatalf("after prune -a: app blob %v, leased blob %v", x.HasBlob(tagged.Digest), x.HasBlob(leased.Digest))
	}
	if _, _, err := x.Lookup("busybox"); err != nil {
		t.Fatalf("the container's image lost its tag: %v", err)
	}
}

// `builder prune --filter until=D` drops only records unused for longer than D.
func TestGCUnusedFor(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	keys, _ := agedRecords(t, s, 48*time.Hour, time.Hour)
	x := reopenExclusive(t, s)
	st, err := x.GC(ctx, GCOptions{UnusedFor: 24 * time.Hour})
	if err != nil || st.CacheRecords != 1 {
		t.Fatalf("GC = %+v, %v; want the 48h-old record dropped", st, err)
	}
	if _, ok, _ := x.CacheGet(keys[0]); ok {
		t.Error("the old record survived")
	}
	if _, ok, _ := x.CacheGet(keys[1]); !ok {
		t.Error("the recent record was dropped")
	}
}

// agedRecords stores one cache record (with a fresh one-layer image) per age, last used that long ago.
func agedRecords(t *testing.T, s *Store, ages ...time.Duration) ([]string, []v1.Descriptor) {
	t.Helper()
	var keys []string
	var layers []v1.Descriptor
	for i, age := range ages {
		img, _ := storeRandomImage(t, s, 1)
		l, d := firstLayer(t, img)
		key := "sha256:" + strings.Repeat(string(rune('a'+i)), 64)
		if err := s.CachePut(key, CacheRecord{Layer: &l, DiffID: d}); err != nil {
			t.Fatal(err)
		}
		p, _ := s.recordPath(key)
		old := time.Now().Add(-age)
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
		keys, layers = append(keys, key), append(layers, l)
	}
	return keys, layers
}
