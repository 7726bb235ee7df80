package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/kiln-build/kiln/cache"
)

// tagRandomImage stores a random one-layer image in root as name.
func tagRandomImage(t *testing.T, root, name string) {
	t.Helper()
	s, err := cache.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := s.WriteImage(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := cache.ParseName(name)
	if err := s.Tag(context.Background(), n, desc); err != nil {
		t.Fatal(err)
	}
}

func imageNames(t *testing.T, root string) string {
	t.Helper()
	var names []string
	for _, r := range imageRows(t, root) {
		names = append(names, r.Repository)
	}
	return strings.Join(names, " ")
}

// system prune asks first (no answer: nothing happens), then removes stopped containers;
// image prune -a spares the images containers use, as docker's.
func TestSystemAndImagePrune(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	tagRandomImage(t, root, "unused")
	id := strings.TrimSpace(ok(t, root, "run", "-d", "--name", "done", "busybox", "true").stdout)
	waitFor(t, "done to exit", func() bool { return inspectOne(t, root, "done").State.Status == "exited" })
	r := kiln(t, root, strings.NewReader("n\n"), "system", "prune")
	if r.code != 0 || !strings.Contains(r.stderr, "Are you sure you want to continue? [y/N]") || r.stdout != "" {
		t.Fatalf("system prune answered n: exit %d\nstdout %q\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if _, found := psRows(t, root)["done"]; !found {
		t.Fatal("system prune answered n removed the container")
	}
	r = ok(t, root, "system", "prune", "-f")
	if !strings.Contains(r.stdout, "Deleted Containers:\n"+id+"\n") || !strings.Contains(r.stdout, "Total reclaimed space:") {
		t.Fatalf("system prune -f: %q", r.stdout)
	}
	if got := imageNames(t, root); got != "busybox unused" {
		t.Fatalf("system prune without -a removed named images: %q", got)
	}

	ok(t, root, "run", "-d", "--name", "up", "busybox", "sleep", "300")
	t.Cleanup(func() { kiln(t, root, nil, "rm", "-f", "up") })
	r = ok(t, root, "image", "prune", "-a", "-f")
	if !strings.Contains(r.stdout, "untagged: unused:latest\ndeleted: sha256:") || strings.Contains(r.stdout, "busybox") {
		t.Fatalf("image prune -a: %q", r.stdout)
	}
	if got := imageNames(t, root); got != "busybox" {
		t.Fatalf("image prune -a left %q, want the running container's busybox only", got)
	}
	ok(t, root, "exec", "up", "true")
	ok(t, root, "rm", "-f", "up")
	ok(t, root, "system", "prune", "-a", "-f")
	if got := imageNames(t, root); got != "" {
		t.Fatalf("system prune -a with no containers left %q", got)
	}
}

// builder prune drops the build cache: --filter until= only old records; other filters are usage errors.
func TestBuilderPrune(t *testing.T) {
	root := t.TempDir()
	s, err := cache.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b"} {
		if err := s.CachePut("sha256:"+strings.Repeat(k, 64), cache.CacheRecord{}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	old := time.Now().Add(-48 * time.Hour)
	err = filepath.WalkDir(filepath.Join(root, "cache"), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), strings.Repeat("a", 64)) {
			return os.Chtimes(p, old, old)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := kiln(t, root, nil, "builder", "prune", "-f", "--filter", "type=regular"); r.code != 2 {
		t.Fatalf("unknown filter: exit %d, %s", r.code, r.stderr)
	}
	if r := ok(t, root, "builder", "prune", "-f", "--filter", "until=24h"); !strings.Contains(r.stdout, "Deleted build cache objects: 1\n") {
		t.Fatalf("until=24h: %q", r.stdout)
	}
	if r := ok(t, root, "builder", "prune", "-f"); !strings.Contains(r.stdout, "Deleted build cache objects: 1\n") {
		t.Fatalf("builder prune: %q", r.stdout)
	}
}

// One parser reads docker's time arguments (logs --since/--until, --filter until=).
func TestParseTime(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Time{
		"10m":                  now.Add(-10 * time.Minute),
		"2025-05-31T12:00:00Z": now.Add(-24 * time.Hour),
		"2025-05-31":           now.Add(-36 * time.Hour),
		"1748779200":           now,
	} {
		if got, err := parseTime(v, now); err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", v, got, err, want)
		}
	}
	if _, err := parseTime("yesterday", now); err == nil {
		t.Error("parseTime accepted yesterday")
	}
	if r := kiln(t, t.TempDir(), nil, "logs", "--since", "yesterday", "c"); r.code != 2 {
		t.Errorf("logs --since yesterday: exit %d %s", r.code, r.stderr)
	}
}
