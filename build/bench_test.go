package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// makeContext20k writes 20,000 small files in 100 directories.
func makeContext20k(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	for d := range 100 {
		sub := filepath.Join(dir, fmt.Sprintf("d%03d", d))
		if err := os.Mkdir(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 200 {
			body := fmt.Sprintf("file %d/%d\n%0512d\n", d, f, f)
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%03d.txt", f)), []byte(body), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	return dir
}

// hashContext selects and hashes the whole context, as COPY . / does.
func hashContext(b *testing.B, dir string, state StateStore) {
	b.Helper()
	c, err := OpenContext(dir, nil, state)
	if err != nil {
		b.Fatal(err)
	}
	sel, err := c.Select(context.Background(), []string{"."})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.hashAll(context.Background(), sel); err != nil {
		b.Fatal(err)
	}
	if err := c.Save(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkContextHash20k measures hashing a 20,000-file context with no stat cache (cold)
// and with the stat cache of a previous build (warm: no file is read again).
func BenchmarkContextHash20k(b *testing.B) {
	dir := makeContext20k(b)
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			hashContext(b, dir, &memState{})
		}
	})
	b.Run("warm", func(b *testing.B) {
		state := &memState{}
		hashContext(b, dir, state)
		b.ResetTimer()
		for b.Loop() {
			hashContext(b, dir, state)
		}
	})
}
