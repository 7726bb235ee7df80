package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// mapFetcher serves blobs from memory, as a registry would, and counts its fetches.
type mapFetcher struct {
	blobs map[v1.Hash][]byte
	calls int
}

func (f *mapFetcher) Fetch(_ context.Context, b RemoteBlob) (io.ReadCloser, error) {
	f.calls++
	data, ok := f.blobs[b.Desc.Digest]
	if !ok {
		return nil, errors.New("404")
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func remoteDesc(data []byte) v1.Descriptor {
	sum := sha256.Sum256(data)
	return v1.Descriptor{MediaType: types.OCILayer, Size: int64(len(data)), Digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}}
}

// TestRemoteBlobs: a record whose layer only a remote record names is a hit; the blob is
// fetched the first time it is read, once, verified; a blob failing its digest is refused;
// GC keeps remote records that cache records name and drops the others.
func TestRemoteBlobs(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "root")
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	good, bad, loose := []byte("layer bytes"), []byte("other bytes"), []byte("nobody names me")
	gd, bd, ld := remoteDesc(good), remoteDesc(bad), remoteDesc(loose)
	f := &mapFetcher{blobs: map[v1.Hash][]byte{gd.Digest: good, bd.Digest: []byte("tampered"), ld.Digest: loose}}
	key := "sha256:" + hex.EncodeToString(make([]byte, 32))
	if err := s.CachePut(key, CacheRecord{Layer: &gd}); err == nil {
		t.Fatal("a record naming a blob neither stored nor remote was stored")
	}
	for _, d := range []v1.Descriptor{gd, bd, ld} {
		if err := s.PutRemote(RemoteBlob{Desc: d, Repo: "reg.example/team/cache"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CachePut(key, CacheRecord{Layer: &gd}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.CacheGet(key); !ok {
		t.Fatal("a record with a remote layer is a miss")
	}
	if _, err := s.OpenBlob(gd.Digest); err == nil {
		t.Fatal("opened a remote blob without a fetcher")
	}
	s.SetFetcher(f)
	for range 2 {
		rc, err := s.OpenBlob(gd.Digest)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, good) {
			t.Fatalf("read %q", got)
		}
	}
	if f.calls != 1 || s.FetchedBytes() != int64(len(good)) {
		t.Errorf("%d fetches, %d bytes: want one fetch of %d bytes", f.calls, s.FetchedBytes(), len(good))
	}
	if err := s.FetchBlob(ctx, bd.Digest); !errors.Is(err, ErrDigest) || s.HasBlob(bd.Digest) {
		t.Errorf("a blob failing its digest was stored (%v)", err)
	}
	if s.HasContent(bd.Digest) {
		t.Error("a remote blob that failed its digest is still offered")
	}
	if err := s.PutRemote(RemoteBlob{Desc: bd, Repo: "reg.example/team/cache"}); err != nil {
		t.Fatal(err)
	}
	key2 := "sha256:" + hex.EncodeToString(bytes.Repeat([]byte{1}, 32))
	if err := s.CachePut(key2, CacheRecord{Layer: &bd}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	x, err := OpenExclusive(root)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if _, err := x.GC(ctx, GCOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := x.Remote(ld.Digest); ok {
		t.Error("GC kept a remote record nothing names")
	}
	if _, ok := x.Remote(bd.Digest); !ok {
		t.Error("GC dropped the remote record a cache record names")
	}
	if !x.HasBlob(gd.Digest) {
		t.Error("GC dropped the fetched blob a cache record names")
	}
}

// TestGCKeepStorageIgnoresRemoteLayers: a record whose layer is only remote takes no disk,
// so --keep-storage does not drop it (it would free nothing).
func TestGCKeepStorageIgnoresRemoteLayers(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "root")
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	big := remoteDesc(bytes.Repeat([]byte("r"), 1<<20))
	if err := s.PutRemote(RemoteBlob{Desc: big, Repo: "reg.example/team/cache"}); err != nil {
		t.Fatal(err)
	}
	key := "sha256:" + hex.EncodeToString(bytes.Repeat([]byte{7}, 32))
	if err := s.CachePut(key, CacheRecord{Layer: &big}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	x, err := OpenExclusive(root)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if st, err := x.GC(ctx, GCOptions{KeepStorage: 1}); err != nil || st.CacheRecords != 0 {
		t.Errorf("GC = %+v, %v: a remote-only record was dropped to save space it does not use", st, err)
	}
	if _, ok, _ := x.CacheGet(key); !ok {
		t.Error("the remote-only record is gone")
	}
}
