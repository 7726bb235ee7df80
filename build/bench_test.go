package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/cache/layer"
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

// bigBase stores "base": one gzip layer of about 51 MB (12,000 files of 10 KiB, compressible
// about as much as binaries, in 100 directories: the size of the lab's debian base layer).
func bigBase(b *testing.B) *cache.Store {
	b.Helper()
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	tw := tar.NewWriter(gz)
	rnd := rand.New(rand.NewPCG(1, 2))
	body := make([]byte, 10<<10)
	for _, h := range []*tar.Header{{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644, Size: 30}} {
		tw.WriteHeader(h)
	}
	io.WriteString(tw, "root:x:0:0:root:/root:/bin/sh\n")
	for i := range 12000 {
		for j := range body {
			body[j] = 'a' + byte(rnd.Uint32()%8)
		}
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("usr/d%02d/f%05d", i%100, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}); err != nil {
			b.Fatal(err)
		}
		tw.Write(body)
	}
	tw.Close()
	gz.Close()
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		b.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		b.Fatal(err)
	}
	s, err := cache.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	desc, err := s.WriteImage(context.Background(), img)
	if err != nil {
		b.Fatal(err)
	}
	n, _ := cache.ParseName("base")
	if err := s.Tag(context.Background(), n, desc); err != nil {
		b.Fatal(err)
	}
	b.Logf("base layer: %d MB compressed", len(data)>>20)
	return s
}

// BenchmarkCopyChain builds N COPY steps of one small file each over the big base, cold (no
// cache): with the memoized view the base layer is read once, so 10 steps cost about what
// one does, not 10 times as much.
func BenchmarkCopyChain(b *testing.B) {
	s := bigBase(b)
	dir := b.TempDir()
	for i := range 10 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", i)), []byte("x"), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for _, n := range []int{1, 10} {
		bf := "FROM base\n"
		for i := range n {
			bf += fmt.Sprintf("COPY f%d /f%d\n", i, i)
		}
		if err := os.WriteFile(filepath.Join(dir, "Buildfile"), []byte(bf), 0o644); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("copies=%d", n), func(b *testing.B) {
			for b.Loop() {
				_, err := Build(context.Background(), Options{ContextDir: dir, Buildfile: filepath.Join(dir, "Buildfile"),
					Store: s, Resolver: storeResolver{s}, NoCache: true, Jobs: 2, Compression: layer.Gzip})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHiddenUnder20k measures listing what a context bind mount must hide (the
// whiteout layer's contents) in a 20,000-file context: directory entries only, no copy.
func BenchmarkHiddenUnder20k(b *testing.B) {
	dir := makeContext20k(b)
	c, err := OpenContext(dir, []string{"**/f1*.txt", "d09*"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for b.Loop() {
		hidden, err := c.hiddenUnder(context.Background(), ".")
		if err != nil || len(hidden) == 0 {
			b.Fatal(len(hidden), err)
		}
	}
}
