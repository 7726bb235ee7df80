package cache

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestOpenCreatesLayout(t *testing.T) {
	s := openStore(t)
	var layout struct{ ImageLayoutVersion string }
	raw, err := os.ReadFile(filepath.Join(s.Root(), "oci-layout"))
	if err != nil || json.Unmarshal(raw, &layout) != nil || layout.ImageLayoutVersion != "1.0.0" {
		t.Fatalf("oci-layout: %s %v", raw, err)
	}
	if list, err := s.List(); err != nil || len(list) != 0 {
		t.Fatalf("fresh store lists %v, %v", list, err)
	}
	for _, d := range []string{"blobs/sha256", "snapshots", "cache/index", "tmp"} {
		if fi, err := os.Stat(filepath.Join(s.Root(), d)); err != nil || !fi.IsDir() {
			t.Errorf("%s: %v", d, err)
		}
	}
	// Reopening keeps the index.
	_, d := storeRandomImage(t, s, 1)
	if err := s.Tag(context.Background(), mustName(t, "keep"), d); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if list, _ := s2.List(); len(list) != 1 {
		t.Fatalf("reopen lost tags: %v", list)
	}
}

func TestDefaultRoot(t *testing.T) {
	t.Setenv(RootEnv, "/custom/root")
	if got := DefaultRoot(); got != "/custom/root" {
		t.Fatalf("with %s: %q", RootEnv, got)
	}
	t.Setenv(RootEnv, "")
	t.Setenv("XDG_DATA_HOME", "/xdg")
	want := "/xdg/kiln"
	if os.Geteuid() == 0 {
		want = "/var/lib/kiln"
	}
	if got := DefaultRoot(); got != want {
		t.Fatalf("DefaultRoot() = %q, want %q", got, want)
	}
}

// Open removes staging entries older than an hour, but only when no other Store holds the root.
func TestOpenCleansStaleTmp(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	// Entries directly under tmp/ are an older kiln's, owned by nobody.
	stale, recent := filepath.Join(s.tmpRoot(), "old-1"), filepath.Join(s.tmpRoot(), "new-1")
	for _, d := range []string{stale, recent} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * time.Hour)
	os.Chtimes(stale, past, past)

	held, err := Open(root) // s still open: nothing may go
	if err != nil {
		t.Fatal(err)
	}
	held.Close()
	if !exists(stale) {
		t.Fatal("stale entry removed while another Store held the root")
	}
	s.Close()
	s3, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	if exists(stale) || !exists(recent) {
		t.Fatalf("stale kept=%v recent kept=%v", exists(stale), exists(recent))
	}
}

func TestDiskUsage(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	img, d := storeRandomImage(t, s, 2)
	for _, n := range []string{"a", "b"} {
		if err := s.Tag(ctx, mustName(t, n), d); err != nil {
			t.Fatal(err)
		}
	}
	size, _ := img.Size()
	var want int64 = size
	m, _ := img.Manifest()
	want += m.Config.Size
	for _, l := range m.Layers {
		want += l.Size
	}
	cached, _ := storeRandomImage(t, s, 1)
	l, diff := firstLayer(t, cached)
	if err := s.CachePut("sha256:"+diff.Hex, CacheRecord{Layer: &l, DiffID: diff}); err != nil {
		t.Fatal(err)
	}
	fakeSnapshot(t, s, diff, 4096)
	u, err := s.DiskUsage()
	if err != nil {
		t.Fatal(err)
	}
	got := Usage{Images: UsageEntry{1, want}, Snapshots: UsageEntry{1, 4096}, Cache: UsageEntry{1, l.Size}}
	if u != got {
		t.Fatalf("DiskUsage = %+v, want %+v", u, got)
	}
}
