package build

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
)

// testLayer makes a plain-tar layer whose opens are counted.
func testLayer(t *testing.T, opens *atomic.Int32, hdrs ...*tar.Header) layerRef {
	t.Helper()
	data := tarOf(t, hdrs...)
	sum := sha256.Sum256([]byte(data))
	h := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	return layerRef{desc: v1.Descriptor{Digest: h}, diffID: h, open: func() (io.ReadCloser, error) {
		opens.Add(1)
		return io.NopCloser(bytes.NewReader([]byte(data))), nil
	}}
}

// TestViewCacheReadsEachLayerOnce: however many steps ask for views of a chain and of its
// extensions, at once or one after another, each layer is read once per build (#11).
func TestViewCacheReadsEachLayerOnce(t *testing.T) {
	var o1, o2 atomic.Int32
	l1 := testLayer(t, &o1, &tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg}, &tar.Header{Name: "a", Typeflag: tar.TypeReg})
	l2 := testLayer(t, &o2, &tar.Header{Name: ".wh.a", Typeflag: tar.TypeReg}, &tar.Header{Name: "b", Typeflag: tar.TypeReg})
	c := newViewCache(nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			v, err := c.get(context.Background(), []layerRef{l1, l2})
			if err != nil {
				t.Error(err)
				return
			}
			if _, _, ok := v.resolve("/a"); ok {
				t.Error("a whiteout in the top layer did not hide /a")
			}
		})
	}
	wg.Wait()
	v1, err := c.get(context.Background(), []layerRef{l1})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := v1.resolve("/a"); !ok {
		t.Error("the view below was changed by the view above it")
	}
	if o1.Load() != 1 || o2.Load() != 1 {
		t.Errorf("layers read %d and %d times, want once each", o1.Load(), o2.Load())
	}
}

// TestViewFromSnapshotMatchesTar: a view read from an unpacked snapshot (whiteouts as
// devices and opaque xattrs) says what the view read from the layer's tar says.
func TestViewFromSnapshotMatchesTar(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: snapshots hold whiteouts only as root")
	}
	var n atomic.Int32
	base := testLayer(t, &n, &tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		&tar.Header{Name: "etc/group", Typeflag: tar.TypeReg}, &tar.Header{Name: "old/", Typeflag: tar.TypeDir, Mode: 0o755},
		&tar.Header{Name: "old/x", Typeflag: tar.TypeReg}, &tar.Header{Name: "gone", Typeflag: tar.TypeReg})
	top := testLayer(t, &n, &tar.Header{Name: ".wh.gone", Typeflag: tar.TypeReg},
		&tar.Header{Name: "old/", Typeflag: tar.TypeDir, Mode: 0o755}, &tar.Header{Name: "old/.wh..wh..opq", Typeflag: tar.TypeReg},
		&tar.Header{Name: "old/y", Typeflag: tar.TypeReg}, &tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg},
		&tar.Header{Name: "lnk", Typeflag: tar.TypeSymlink, Linkname: "etc"})
	st, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Snapshot(context.Background(), top.diffID, top.open); err != nil {
		t.Fatal(err)
	}
	fromTar, err := newViewCache(nil).get(context.Background(), []layerRef{base, top})
	if err != nil {
		t.Fatal(err)
	}
	before := n.Load()
	fromSnap, err := newViewCache(st).get(context.Background(), []layerRef{base, top})
	if err != nil {
		t.Fatal(err)
	}
	if n.Load() != before+1 {
		t.Errorf("the top layer's blob was read although its snapshot exists")
	}
	if len(fromTar.entries) != len(fromSnap.entries) {
		t.Errorf("entries: tar %v, snapshot %v", fromTar.entries, fromSnap.entries)
	}
	for name, e := range fromTar.entries {
		if s, ok := fromSnap.entries[name]; !ok || s.typ != e.typ || s.link != e.link {
			t.Errorf("%s: tar %+v, snapshot %+v", name, e, s)
		}
	}
	if string(fromSnap.files["etc/passwd"]) != "etc/passwd" {
		t.Errorf("account file from the snapshot: %q", fromSnap.files["etc/passwd"])
	}
}
