package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestBlobRoundTrip(t *testing.T) {
	s := openStore(t)
	data := []byte("hello blob")
	want, _, _ := v1.SHA256(bytes.NewReader(data))
	h, n, err := s.WriteBlob(context.Background(), bytes.NewReader(data), want)
	if err != nil || h != want || n != int64(len(data)) {
		t.Fatalf("WriteBlob = %v, %d, %v", h, n, err)
	}
	if !s.HasBlob(h) {
		t.Fatal("HasBlob false after write")
	}
	if size, err := s.BlobSize(h); err != nil || size != int64(len(data)) {
		t.Fatalf("BlobSize = %d, %v", size, err)
	}
	rc, err := s.OpenBlob(h)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("read %q", got)
	}
	// Present and wanted: returns without reading the (here failing) reader.
	if _, _, err := s.WriteBlob(context.Background(), iotestErrReader{}, want); err != nil {
		t.Fatalf("rewrite of present blob read its source: %v", err)
	}
	if countFiles(t, stagingDir(t, s)) != 0 {
		t.Fatal("tmp not empty after commits")
	}
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("must not be read") }

func TestBlobMismatchStoresNothing(t *testing.T) {
	s := openStore(t)
	wrong, _, _ := v1.SHA256(strings.NewReader("something else"))
	_, _, err := s.WriteBlob(context.Background(), strings.NewReader("payload"), wrong)
	if err == nil || !strings.Contains(err.Error(), "mismatch") {
		t.Fatalf("want digest mismatch error, got %v", err)
	}
	if n := countFiles(t, s.blobDir()); n != 0 {
		t.Fatalf("%d blobs stored after mismatch", n)
	}
	if n := countFiles(t, stagingDir(t, s)); n != 0 {
		t.Fatalf("%d temp files left after mismatch", n)
	}
}

func TestBlobWriterAbandoned(t *testing.T) {
	s := openStore(t)
	w, err := s.NewBlobWriter()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(bytes.Repeat([]byte("x"), 1<<20)); err != nil {
		t.Fatal(err)
	}
	// A killed process never reaches Close: only tmp/ holds the bytes, blobs/ has nothing.
	if n := countFiles(t, s.blobDir()); n != 0 {
		t.Fatalf("abandoned writer left %d entries under blobs/", n)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := countFiles(t, stagingDir(t, s)); n != 0 {
		t.Fatalf("Close left %d temp files", n)
	}
	if _, _, err := w.Commit(v1.Hash{}); err == nil {
		t.Fatal("Commit after Close succeeded")
	}
}

func TestBlobCommitWithoutWant(t *testing.T) {
	s := openStore(t)
	w, err := s.NewBlobWriter()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	io.WriteString(w, "abc")
	h, n, err := w.Commit(v1.Hash{})
	want, _, _ := v1.SHA256(strings.NewReader("abc"))
	if err != nil || h != want || n != 3 {
		t.Fatalf("Commit = %v %d %v", h, n, err)
	}
	fi, err := os.Stat(s.blobPath(h))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("blob file %v %v", fi, err)
	}
}

func TestOpenBlobNotFound(t *testing.T) {
	s := openStore(t)
	h, _, _ := v1.SHA256(strings.NewReader("absent"))
	if _, err := s.OpenBlob(h); !errors.Is(err, ErrNotFound) {
		t.Fatalf("OpenBlob absent: %v", err)
	}
	if _, err := s.BlobSize(h); !errors.Is(err, ErrNotFound) {
		t.Fatalf("BlobSize absent: %v", err)
	}
	bad := v1.Hash{Algorithm: "sha256", Hex: "../../../etc/passwd"}
	if _, err := s.OpenBlob(bad); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("path-escaping digest accepted: %v", err)
	}
}

func TestWriteBlobCancelled(t *testing.T) {
	s := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.WriteBlob(ctx, strings.NewReader("x"), v1.Hash{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	if countFiles(t, s.blobDir())+countFiles(t, stagingDir(t, s)) != 0 {
		t.Fatal("cancelled write left files")
	}
}
