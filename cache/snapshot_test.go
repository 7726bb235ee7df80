package cache

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache/layer"
)

// gzipLayer makes a gzip layer blob from name → content and returns it with its diff ID.
func gzipLayer(t *testing.T, files map[string]string) ([]byte, v1.Hash) {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for name, content := range files {
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if strings.HasSuffix(name, "/") {
			hdr = &tar.Header{Name: name, Mode: 0o755, Typeflag: tar.TypeDir, Format: tar.FormatPAX}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	diffID, _, err := v1.SHA256(bytes.NewReader(raw.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return gz.Bytes(), diffID
}

func TestSnapshotUnpacksOnceForConcurrentCallers(t *testing.T) {
	s := openStore(t)
	blob, diffID := gzipLayer(t, map[string]string{"etc/": "", "etc/motd": "hi\n"})
	var opens atomic.Int32
	open := func() (io.ReadCloser, error) {
		opens.Add(1)
		return io.NopCloser(bytes.NewReader(blob)), nil
	}
	var wg sync.WaitGroup
	dirs := make([]string, 8)
	errs := make([]error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dirs[i], errs[i] = s.Snapshot(context.Background(), diffID, open)
		}()
	}
	wg.Wait()
	for i := range 8 {
		if errs[i] != nil || dirs[i] != dirs[0] {
			t.Fatalf("caller %d: %q, %v", i, dirs[i], errs[i])
		}
	}
	if n := opens.Load(); n != 1 {
		t.Errorf("blob opened %d times, want 1", n)
	}
	got, err := os.ReadFile(filepath.Join(dirs[0], "etc", "motd"))
	if err != nil || string(got) != "hi\n" {
		t.Errorf("snapshot content %q, %v", got, err)
	}
	if !s.HasSnapshot(diffID) {
		t.Error("HasSnapshot is false after Snapshot")
	}
}

func TestSnapshotRejectsWrongDiffID(t *testing.T) {
	s := openStore(t)
	blob, _ := gzipLayer(t, map[string]string{"a": "a"})
	_, other := gzipLayer(t, map[string]string{"b": "b"})
	_, err := s.Snapshot(context.Background(), other, func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(blob)), nil
	})
	if err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("Snapshot of mismatching content: %v", err)
	}
	if s.HasSnapshot(other) {
		t.Error("a snapshot with the wrong content became visible")
	}
	if n := countFiles(t, stagingDir(t, s)); n != 0 {
		t.Errorf("%d staging entries left behind", n)
	}
}

func TestCommitSnapshot(t *testing.T) {
	s := openStore(t)
	_, diffID := gzipLayer(t, map[string]string{"x": "x"})
	mk := func(content string) string {
		dir, err := s.TempDir("upper-")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "x"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	first := mk("x")
	got, err := s.CommitSnapshot(diffID, first)
	if err != nil || got != s.snapshotPath(diffID) {
		t.Fatalf("CommitSnapshot = %q, %v", got, err)
	}
	second := mk("other")
	if _, err := s.CommitSnapshot(diffID, second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(second); !os.IsNotExist(err) {
		t.Errorf("duplicate dir not removed: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(got, "x")); string(b) != "x" {
		t.Errorf("existing snapshot replaced: %q", b)
	}
}

// A layer past the decompression limit fails with a clear error and leaves nothing behind.
func TestSnapshotRefusesDecompressionBomb(t *testing.T) {
	t.Setenv(layer.MaxSizeEnv, "1m")
	s := openStore(t)
	blob, diffID := gzipLayer(t, map[string]string{"zeros": strings.Repeat("\x00", 4<<20)})
	_, err := s.Snapshot(context.Background(), diffID, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob)), nil })
	if !errors.Is(err, layer.ErrTooLarge) || !strings.Contains(err.Error(), layer.MaxSizeEnv) {
		t.Fatalf("Snapshot of a %d-byte blob holding 4 MiB: %v", len(blob), err)
	}
	if s.HasSnapshot(diffID) || countFiles(t, stagingDir(t, s)) != 0 {
		t.Fatalf("snapshot kept=%v, staging entries %d", s.HasSnapshot(diffID), countFiles(t, stagingDir(t, s)))
	}
}
