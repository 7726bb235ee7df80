package cache

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMountPackAndSeed: a cache mount packs to a content-addressed blob (the same again when
// unchanged) and seeds another store's empty mount with its files and record; a newer local
// mount is not replaced.
func TestMountPackAndSeed(t *testing.T) {
	ctx := context.Background()
	a, b := openStore(t), openStore(t)
	rec := MountRecord{ID: "go-build", Target: "/root/.cache/go-build", Sharing: "shared", Mode: 0o755}
	if err := os.MkdirAll(filepath.Join(a.MountDir(rec.ID), "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a.MountDir(rec.ID), "sub", "f"), []byte("cached"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.UseMount(rec); err != nil {
		t.Fatal(err)
	}
	d1, _, err := a.PackMount(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	d2, _, _ := a.PackMount(ctx, rec.ID)
	if d1.Digest != d2.Digest {
		t.Errorf("an unchanged mount packed to %s and %s", d1.Digest, d2.Digest)
	}
	used := a.UsedMounts()
	if len(used) != 1 || used[0].ID != rec.ID {
		t.Fatalf("used mounts %+v", used)
	}
	if !b.WantsSeed(rec.ID, used[0].Used) {
		t.Fatal("an absent mount does not want seeding")
	}
	blob, _ := a.OpenBlob(d1.Digest)
	defer blob.Close()
	if err := b.SeedMount(ctx, used[0], blob); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(b.MountDir(rec.ID), "sub", "f")); err != nil || string(got) != "cached" {
		t.Errorf("seeded file: %q %v", got, err)
	}
	list, err := b.ListMounts()
	if err != nil || len(list) != 1 || list[0].Size != 6 || list[0].Target != rec.Target {
		t.Errorf("listed %+v %v", list, err)
	}
	if b.WantsSeed(rec.ID, used[0].Used.Add(-time.Hour)) {
		t.Error("a newer local mount wants an older copy")
	}
}

// TestSeedMountConfinesHostileBlob: a mount blob whose paths climb out, are absolute, or go
// through a symlink to / writes nothing outside the mount's directory.
func TestSeedMountConfinesHostileBlob(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	outside := t.TempDir()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body string) {
		h.Size = int64(len(body))
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	rel, _ := filepath.Rel(s.MountDir("evil"), filepath.Join(outside, "climb"))
	add(&tar.Header{Name: rel}, "x")
	add(&tar.Header{Name: filepath.Join(outside, "abs")}, "x")
	add(&tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: outside, Size: 0}, "")
	add(&tar.Header{Name: "link/through"}, "x")
	add(&tar.Header{Name: "ok"}, "fine")
	tw.Close()
	err := s.SeedMount(ctx, MountRecord{ID: "evil", Mode: 0o755}, &buf)
	ents, _ := os.ReadDir(outside)
	if len(ents) != 0 {
		t.Fatalf("the seed wrote outside the mount (%v): %v", err, ents)
	}
	if err == nil {
		if got, _ := os.ReadFile(filepath.Join(s.MountDir("evil"), "ok")); string(got) != "fine" {
			t.Errorf("the confined file is %q", got)
		}
	}
	if _, statErr := os.Lstat(filepath.Join(filepath.Dir(s.MountDir("evil")), "climb")); statErr == nil {
		t.Error("a climbing path landed beside the mount")
	}
}

// seenMidway reads r and, once half of it is read, lists dir: what a seed in progress has
// made there by then.
type seenMidway struct {
	r          io.Reader
	dir        string
	half, read int
	seen       []string
}

func (s *seenMidway) Read(p []byte) (int, error) {
	n, err := s.r.Read(p[:min(len(p), 4096)]) // small reads, so half-way is mid-seed
	if s.read += n; s.read >= s.half && s.seen == nil {
		ents, _ := os.ReadDir(s.dir)
		s.seen = []string{}
		for _, e := range ents {
			s.seen = append(s.seen, e.Name())
		}
	}
	return n, err
}

// TestSeedStagesInOwnStaging: a seed in progress lives in the Store's own staging, which the
// next kiln removes if this process dies, never beside the mounts where nothing sweeps it.
func TestSeedStagesInOwnStaging(t *testing.T) {
	s := openStore(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := bytes.Repeat([]byte("x"), 1<<20) // larger than any read-ahead: EOF comes mid-seed
	tw.WriteHeader(&tar.Header{Name: "f", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
	tw.Write(body)
	tw.Close()
	if err := os.MkdirAll(s.Mounts(), 0o700); err != nil {
		t.Fatal(err)
	}
	r := &seenMidway{r: &buf, dir: s.Mounts(), half: buf.Len() / 2}
	if err := s.SeedMount(context.Background(), MountRecord{ID: "m", Mode: 0o755}, r); err != nil {
		t.Fatal(err)
	}
	if r.seen == nil {
		t.Fatal("the seed never read half its tar")
	}
	for _, name := range r.seen {
		if strings.HasPrefix(name, "seed-") {
			t.Errorf("a seed in progress staged %s under cache/mounts", name)
		}
	}
}
