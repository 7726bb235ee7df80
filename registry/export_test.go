package registry

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
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kiln-build/kiln/cache/layer"
)

// tarLayer makes a layer of name → content entries, in order.
func tarLayer(t *testing.T, entries ...[2]string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e[0], Mode: 0o644, Size: int64(len(e[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// ExportDir flattens layer by layer (whiteouts applied) within the decompression limits.
func TestExportDirFlattensWithinLimits(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	img, err := mutate.AppendLayers(empty.Image,
		tarLayer(t, [2]string{"a", "1"}, [2]string{"b", "2"}),
		tarLayer(t, [2]string{".wh.a", ""}, [2]string{"b", "3"}, [2]string{"zeros", string(make([]byte, 2<<20))}))
	if err != nil {
		t.Fatal(err)
	}
	desc, err := s.WriteImage(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "out")
	if err := ExportDir(ctx, s, desc.Digest, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("whited-out a: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "b")); string(b) != "3" {
		t.Errorf("b = %q, want the upper layer's 3", b)
	}
	t.Setenv(layer.MaxSizeEnv, "1m")
	parent := t.TempDir()
	err = ExportDir(ctx, s, desc.Digest, filepath.Join(parent, "out2"))
	if !errors.Is(err, layer.ErrTooLarge) {
		t.Fatalf("export past the limit: %v", err)
	}
	if left, _ := os.ReadDir(parent); len(left) != 0 {
		t.Errorf("a failed export into a new dir left %v", left)
	}
	if err := ExportTar(ctx, s, desc.Digest, io.Discard); !errors.Is(err, layer.ErrTooLarge) {
		t.Errorf("tar export past the limit: %v", err)
	}
}
