package cache

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/kiln-build/kiln/internal/corpus"
	"github.com/kiln-build/kiln/internal/testimage"
)

func TestImageRoundTrip(t *testing.T) {
	rnd, err := random.Image(1024, 5)
	if err != nil {
		t.Fatal(err)
	}
	for name, img := range map[string]v1.Image{"busybox": testimage.Busybox(t), "random": rnd, "oci-zstd-and-plain": ociImage(t)} {
		t.Run(name, func(t *testing.T) {
			s := openStore(t)
			desc, err := s.WriteImage(context.Background(), img)
			if err != nil {
				t.Fatal(err)
			}
			wantDigest, _ := img.Digest()
			if desc.Digest != wantDigest {
				t.Fatalf("descriptor digest %s, want %s", desc.Digest, wantDigest)
			}
			got, err := s.Image(desc.Digest)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Image(got); err != nil && name != "oci-zstd-and-plain" {
				t.Fatalf("validate stored image: %v", err)
			}
			checkLayers(t, got) // validate.Image only knows gzip layers
			if d, _ := got.Digest(); d != wantDigest {
				t.Fatalf("stored image digest %s", d)
			}
			// A second write finds every blob present.
			if _, err := s.WriteImage(context.Background(), img); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestIndexRoundTrip(t *testing.T) {
	s := openStore(t)
	idx, err := random.Index(512, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := s.WriteIndex(context.Background(), idx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Index(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(got); err != nil {
		t.Fatalf("validate stored index: %v", err)
	}
	if _, err := s.Image(desc.Digest); err == nil {
		t.Fatal("Image() of an index succeeded")
	}
	im, _ := got.IndexManifest()
	if _, err := s.Index(im.Manifests[0].Digest); err == nil {
		t.Fatal("Index() of an image succeeded")
	}
}

func TestImageNotFound(t *testing.T) {
	s := openStore(t)
	h, _, _ := v1.SHA256(bytes.NewReader(nil))
	if _, err := s.Image(h); !errors.Is(err, ErrNotFound) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
}

// A layer whose bytes do not match its digest must not be stored, nor the manifest.
func TestWriteImageCorruptLayer(t *testing.T) {
	s := openStore(t)
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := img.Layers()
	other, _ := random.Layer(256, types.DockerLayer)
	bad, err := mutate.Append(img, mutate.Addendum{Layer: lyingLayer{Layer: other, digest: mustDigest(t, ls[0])}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteImage(context.Background(), bad); err == nil {
		t.Fatal("corrupt layer accepted")
	}
	d, _ := bad.Digest()
	if s.HasBlob(d) {
		t.Fatal("manifest stored although a layer failed")
	}
}

// lyingLayer claims another layer's digest.
type lyingLayer struct {
	v1.Layer
	digest v1.Hash
}

func (l lyingLayer) Digest() (v1.Hash, error) { return l.digest, nil }

func mustDigest(t *testing.T, l v1.Layer) v1.Hash {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// ociImage has an OCI manifest with one zstd and one uncompressed layer.
func ociImage(t *testing.T) v1.Image {
	t.Helper()
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	zl, err := tarball.LayerFromOpener(tarOpener(t, "a.txt", "zstd layer"), tarball.WithCompression("zstd"), tarball.WithMediaType(types.OCILayerZStd))
	if err != nil {
		t.Fatal(err)
	}
	plain := static.NewLayer(tarBytes(t, "b.txt", "plain layer"), types.OCIUncompressedLayer)
	img, err := mutate.AppendLayers(base, zl, plain)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// tarBytes is an uncompressed layer tar holding one file.
func tarBytes(t testing.TB, name, content string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	io.WriteString(tw, content)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tarOpener(t testing.TB, name, content string) tarball.Opener {
	data := tarBytes(t, name, content)
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
}

// checkLayers verifies every stored layer against its digest and diff ID.
func checkLayers(t *testing.T, img v1.Image) {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range ls {
		for _, pair := range []struct {
			open func() (io.ReadCloser, error)
			want func() (v1.Hash, error)
		}{{l.Compressed, l.Digest}, {l.Uncompressed, l.DiffID}} {
			rc, err := pair.open()
			if err != nil {
				t.Fatalf("layer %d: %v", i, err)
			}
			got, _, err := v1.SHA256(rc)
			rc.Close()
			want, werr := pair.want()
			if err != nil || werr != nil || got != want {
				t.Fatalf("layer %d: content hashes to %s, want %s (%v, %v)", i, got, want, err, werr)
			}
		}
	}
}

// TestWriteImageChecksDescriptors: an image whose config or layer differs from what its
// manifest names (a tampered OCI layout) is refused, and its manifest never stored. ConfigName
// of a layout image hashes the config bytes, so checking against it alone let the config
// through under another digest.
func TestWriteImageChecksDescriptors(t *testing.T) {
	for _, name := range []string{"config-digest-mismatch", "size-mismatch", "layer-digest-mismatch"} {
		t.Run(name, func(t *testing.T) {
			img := corpusImage(t, filepath.Join("..", "testdata", "malicious", name+".oci.tar"))
			s := openStore(t)
			if _, err := s.WriteImage(context.Background(), img); err == nil {
				t.Fatal("tampered image accepted")
			}
			if d, _ := img.Digest(); s.HasBlob(d) {
				t.Error("its manifest was stored")
			}
		})
	}
}

// corpusImage opens the one image of an oci-archive from the malicious corpus.
func corpusImage(t *testing.T, archive string) v1.Image {
	t.Helper()
	raw, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	members, err := corpus.Members(raw)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, data := range members { // the corpus's own archive names
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) != 1 {
		t.Fatalf("index: %v %+v", err, m)
	}
	img, err := lp.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
