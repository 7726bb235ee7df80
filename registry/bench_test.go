package registry

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/testregistry"
)

const benchImageSize = 50 << 20

// storeRandomImage stores a one-layer image of 50 MB of random bytes (in 5 files) as "bench".
func storeRandomImage(b *testing.B, s *cache.Store) {
	b.Helper()
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	chunk := make([]byte, benchImageSize/5)
	for i := range 5 {
		rand.Read(chunk)
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("blob%d", i), Mode: 0o644, Size: int64(len(chunk)), Typeflag: tar.TypeReg})
		tw.Write(chunk)
	}
	tw.Close()
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	zw.Write(tarBuf.Bytes())
	zw.Close()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(gz.Bytes())), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		b.Fatal(err)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, l)
	if err != nil {
		b.Fatal(err)
	}
	desc, err := s.WriteImage(context.Background(), img)
	if err != nil {
		b.Fatal(err)
	}
	n, _ := cache.ParseName("bench")
	if err := s.Tag(context.Background(), n, desc); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRegistry50MB pushes and pulls a 50 MB image to Debian's docker-registry, with
// skopeo doing the same copies for comparison. Every iteration uses a fresh repository
// (push) or a fresh store (pull), so nothing is skipped.
func BenchmarkRegistry50MB(b *testing.B) {
	host := testregistry.Start(b)
	s := openStore(b)
	storeRandomImage(b, s)
	ctx := context.Background()
	if _, err := Push(ctx, s, "bench", host+"/bench/seed:1"); err != nil {
		b.Fatal(err)
	}
	// Uploads go to a fresh registry each time, so neither tool can mount the blob from an
	// earlier push (skopeo keeps its own blob-location cache and mounts too).
	b.Run("kiln-push", func(b *testing.B) {
		b.SetBytes(benchImageSize)
		for range b.N {
			b.StopTimer()
			fresh := testregistry.Start(b)
			b.StartTimer()
			if _, err := Push(ctx, s, "bench", fresh+"/bench/push:1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("kiln-push-mounted", func(b *testing.B) {
		for i := range b.N {
			if _, err := Push(ctx, s, "bench", fmt.Sprintf("%s/bench/mount%d:1", host, i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("kiln-pull", func(b *testing.B) {
		b.SetBytes(benchImageSize)
		for range b.N {
			b.StopTimer()
			dst := openStore(b)
			b.StartTimer()
			if _, err := Pull(ctx, dst, host+"/bench/seed:1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	if _, err := exec.LookPath("skopeo"); err != nil {
		b.Skip("needs skopeo for the comparison")
	}
	b.Run("skopeo-push", func(b *testing.B) {
		b.SetBytes(benchImageSize)
		for range b.N {
			b.StopTimer()
			fresh := testregistry.Start(b)
			b.StartTimer()
			skopeo(b, "copy", "--dest-tls-verify=false", "oci:"+s.Root()+":docker.io/library/bench:latest", "docker://"+fresh+"/bench/skopeo:1")
		}
	})
	b.Run("skopeo-pull", func(b *testing.B) {
		b.SetBytes(benchImageSize)
		for range b.N {
			b.StopTimer()
			dir := filepath.Join(b.TempDir(), "oci")
			b.StartTimer()
			skopeo(b, "copy", "--src-tls-verify=false", "docker://"+host+"/bench/seed:1", "oci:"+dir+":x")
		}
	})
}

func skopeo(b *testing.B, args ...string) {
	if out, err := exec.Command("skopeo", args...).CombinedOutput(); err != nil {
		b.Fatalf("skopeo %v: %v\n%s", args, err, out)
	}
}
