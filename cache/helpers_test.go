package cache

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// openStore opens a fresh store in a temp dir, closed when the test ends.
func openStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "root"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// storeRandomImage writes a random image with n layers and returns its manifest descriptor.
func storeRandomImage(t testing.TB, s *Store, n int64) (v1.Image, v1.Descriptor) {
	t.Helper()
	img, err := random.Image(512, n)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := s.WriteImage(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	return img, desc
}

func mustName(t testing.TB, s string) Name {
	t.Helper()
	n, err := ParseName(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// countFiles counts the regular files and dirs directly under dir.
func countFiles(t testing.TB, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// stagingDir is s's own staging dir under tmp/.
func stagingDir(t testing.TB, s *Store) string {
	t.Helper()
	d, err := s.tmpDir()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
