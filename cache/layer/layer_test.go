package layer

import (
	"archive/tar"
	"bytes"
	stdgzip "compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"golang.org/x/sys/unix"
)

// buildTree makes a tree with every kind of entry Diff must handle.
func buildTree(t *testing.T, dir string) {
	t.Helper()
	putFile(t, filepath.Join(dir, "etc/motd"), "hello\n", 0o644)
	putFile(t, filepath.Join(dir, "bin/tool"), "#!/bin/sh\n", 0o4755)
	putFile(t, filepath.Join(dir, "empty"), "", 0o600)
	putFile(t, filepath.Join(dir, "deep/a/b/c/d/e/f"), strings.Repeat("x", 100000), 0o640)
	must(t, os.Link(filepath.Join(dir, "etc/motd"), filepath.Join(dir, "etc/motd.link")))
	must(t, os.Symlink("../etc/motd", filepath.Join(dir, "bin/motd")))
	must(t, os.Symlink("/nonexistent/abs", filepath.Join(dir, "dangling")))
	must(t, unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	must(t, unix.Lsetxattr(filepath.Join(dir, "etc/motd"), "user.x", []byte("attr"), 0))
	must(t, os.Chmod(filepath.Join(dir, "deep"), 0o750))
	if os.Geteuid() == 0 {
		must(t, os.Lchown(filepath.Join(dir, "empty"), 1000, 1001))
		must(t, os.Lchown(filepath.Join(dir, "bin/motd"), 7, 8))
		// cap_net_bind_service+ep, VFS_CAP_REVISION_2: binary, with NUL bytes.
		capNetBind := []byte{0, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
		putFile(t, filepath.Join(dir, "bin/ping"), "ping", 0o755)
		must(t, unix.Lsetxattr(filepath.Join(dir, "bin/ping"), "security.capability", capNetBind, 0))
		must(t, unix.Chmod(filepath.Join(dir, "bin/tool"), 0o4755)) // after the chowns, which may clear setuid
	}
}

func TestDiffApplyRoundTrip(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	buildTree(t, src)
	data, p := packDir(t, src, WriteOptions{})
	if p.Empty || p.MediaType != Uncompressed.MediaType() || p.Size != int64(len(data)) || p.Digest != p.DiffID {
		t.Fatalf("Packed = %+v for %d bytes", p, len(data))
	}
	n, err := Apply(context.Background(), bytes.NewReader(data), dst, ApplyOptions{Whiteouts: DeleteWhiteouts})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || n > int64(len(data)) {
		t.Errorf("Apply read %d of %d bytes", n, len(data))
	}
	if d := diffTrees(snapshotTree(t, src), snapshotTree(t, dst)); d != "" {
		t.Errorf("round trip differs:\n%s", d)
	}
}

func TestPackIsDeterministic(t *testing.T) {
	epoch := time.Unix(1700000000, 0)
	var ids []Packed
	for i := range 2 {
		dir := t.TempDir()
		buildTree(t, dir)
		future := time.Now().Add(time.Duration(i+1) * time.Hour)
		_ = filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error {
			_ = unix.Lutimes(p, []unix.Timeval{unix.NsecToTimeval(future.UnixNano()), unix.NsecToTimeval(future.UnixNano())})
			return nil
		})
		for _, c := range []Compression{Gzip, Zstd} {
			var buf bytes.Buffer
			p, err := Pack(context.Background(), &buf, c, 0, WriteOptions{SourceDateEpoch: &epoch}, func(w *Writer) error {
				return Diff(context.Background(), dir, w)
			})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, p)
		}
	}
	if ids[0] != ids[2] || ids[1] != ids[3] {
		t.Errorf("same tree packed differently:\n%+v\n%+v", ids[0:2], ids[2:4])
	}
	if ids[0].DiffID != ids[1].DiffID || ids[0].Digest == ids[1].Digest {
		t.Errorf("gzip and zstd must share the diff ID and differ in digest: %+v", ids[0:2])
	}
}

func TestPackEmptyAndDecompress(t *testing.T) {
	for _, c := range []Compression{Uncompressed, Gzip, Zstd} {
		var buf bytes.Buffer
		p, err := Pack(context.Background(), &buf, c, 0, WriteOptions{}, func(*Writer) error { return nil })
		if err != nil || !p.Empty {
			t.Fatalf("%s: %+v %v", c, p, err)
		}
		rc, err := Decompress(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		raw := readAll(t, rc)
		if len(raw) != 1024 || bytes.Count(raw, []byte{0}) != 1024 {
			t.Errorf("%s: empty layer decompresses to %d bytes", c, len(raw))
		}
	}
	if _, err := ParseCompression("lz4"); err == nil {
		t.Error("ParseCompression accepted lz4")
	}
	for _, s := range []string{"gzip", "zstd", "uncompressed"} {
		c, err := ParseCompression(s)
		if err != nil || c.String() != s {
			t.Errorf("ParseCompression(%q) = %v, %v", s, c, err)
		}
	}
}

func TestApplyWhiteouts(t *testing.T) {
	lower := t.TempDir()
	putFile(t, filepath.Join(lower, "keep"), "k", 0o644)
	putFile(t, filepath.Join(lower, "gone"), "g", 0o644)
	putFile(t, filepath.Join(lower, "opq/old"), "o", 0o644)
	putFile(t, filepath.Join(lower, "dir/x"), "x", 0o644)
	data := makeTar(t, []tarEntry{
		{name: ".wh.gone", typ: tar.TypeReg},
		{name: "opq/", typ: tar.TypeDir, mode: 0o755},
		{name: "opq/.wh..wh..opq", typ: tar.TypeReg},
		{name: "opq/new", typ: tar.TypeReg, body: "n"},
		{name: "dir/.wh.x", typ: tar.TypeReg},
	})
	mustApply(t, data, lower, DeleteWhiteouts)
	got := snapshotTree(t, lower)
	for _, p := range []string{"gone", "opq/old", "dir/x"} {
		if _, ok := got[p]; ok {
			t.Errorf("%s survived its whiteout", p)
		}
	}
	for _, p := range []string{"keep", "opq/new", "dir"} {
		if _, ok := got[p]; !ok {
			t.Errorf("%s was removed", p)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: overlay whiteouts are 0/0 device nodes and trusted.* xattrs")
	}
	snap := t.TempDir()
	mustApply(t, data, snap, OverlayWhiteouts)
	got = snapshotTree(t, snap)
	if !strings.Contains(got["gone"], "dev 0") || !strings.Contains(got["dir/x"], "dev 0") {
		t.Errorf("whiteouts not 0/0 devices: %q %q", got["gone"], got["dir/x"])
	}
	if !strings.Contains(got["opq"], `trusted.overlay.opaque="y"`) {
		t.Errorf("opaque dir lacks the xattr: %q", got["opq"])
	}
}

func TestApplyReplacesExisting(t *testing.T) {
	dir := t.TempDir()
	putFile(t, filepath.Join(dir, "a/inner"), "i", 0o644)
	must(t, os.Symlink("/etc", filepath.Join(dir, "link")))
	putFile(t, filepath.Join(dir, "d/keep"), "k", 0o644)
	data := makeTar(t, []tarEntry{
		{name: "a", typ: tar.TypeReg, body: "now a file"},
		{name: "link", typ: tar.TypeReg, body: "no longer a link"},
		{name: "d/", typ: tar.TypeDir, mode: 0o700},
	})
	mustApply(t, data, dir, DeleteWhiteouts)
	if b, _ := os.ReadFile(filepath.Join(dir, "a")); string(b) != "now a file" {
		t.Errorf("a = %q", b)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "link")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("link not replaced: %v %v", fi, err)
	}
	fi, err := os.Stat(filepath.Join(dir, "d"))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("existing dir metadata not updated: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "d/keep")); err != nil {
		t.Errorf("existing dir's contents lost: %v", err)
	}
}

// writeAll writes p through w and closes it.
func writeAll(t *testing.T, w io.WriteCloser, p []byte) {
	t.Helper()
	_, err := w.Write(p)
	must(t, err)
	must(t, w.Close())
}

// decompressed compresses data with c and opens it again through Decompress.
func decompressed(t *testing.T, c Compression, data []byte) io.ReadCloser {
	t.Helper()
	var buf bytes.Buffer
	w, err := compressor(&buf, c, 0)
	must(t, err)
	writeAll(t, w, data)
	rc, err := Decompress(&buf)
	must(t, err)
	return rc
}

func TestDecompressDetects(t *testing.T) {
	data := makeTar(t, []tarEntry{{name: "f", typ: tar.TypeReg, body: "x"}})
	for _, c := range []Compression{Uncompressed, Gzip, Zstd} {
		rc := decompressed(t, c, data)
		if got := readAll(t, rc); !bytes.Equal(got, data) {
			t.Errorf("%s: round trip differs", c)
		}
	}
	if _, err := Decompress(bytes.NewReader([]byte{0x1f, 0x8b, 0, 0})); err == nil {
		t.Error("truncated gzip accepted")
	}
	rc, err := Decompress(bytes.NewReader(nil))
	must(t, err)
	if b, _ := io.ReadAll(rc); len(b) != 0 {
		t.Error("empty input gave data")
	}
}

// Decoders share pooled read buffers: one still open must keep its own while others are
// opened and closed, and a closed one must not read from a buffer it gave back.
func TestDecompressBufferReuse(t *testing.T) {
	open := func(body string) (io.ReadCloser, []byte) {
		t.Helper()
		data := makeTar(t, []tarEntry{{name: "f", typ: tar.TypeReg, body: body}})
		return decompressed(t, Gzip, data), data
	}
	long, longData := open(strings.Repeat("long ", 300000))
	head := make([]byte, 1000)
	_, err := io.ReadFull(long, head)
	must(t, err)
	for i := range 5 {
		rc, data := open(strings.Repeat("x", i*1000))
		if got := readAll(t, rc); !bytes.Equal(got, data) {
			t.Fatalf("decoder %d: round trip differs", i)
		}
		must(t, rc.Close())
		if _, err := rc.Read(make([]byte, 1)); !errors.Is(err, errDecoderClosed) {
			t.Fatalf("read after Close: %v, want errDecoderClosed", err)
		}
		must(t, rc.Close())
	}
	rest, err := io.ReadAll(long)
	must(t, err)
	if got := append(head, rest...); !bytes.Equal(got, longData) {
		t.Error("an open decoder's stream changed while others reused buffers")
	}
	must(t, long.Close())
}

// TestCompressionIsReproducible guards layer digests: parallel gzip and async zstd output
// must not depend on the core count or on how the tar writer chunks its writes, and gzip
// must stay readable by the standard library.
func TestCompressionIsReproducible(t *testing.T) {
	data := make([]byte, 5<<20+12345)
	for i := range data {
		data[i] = byte(i*7/13) ^ byte(i>>11) // compressible but not trivial
	}
	compress := func(c Compression, procs, chunk int) []byte {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		var buf bytes.Buffer
		w, err := compressor(&buf, c, 0)
		must(t, err)
		for p := data; len(p) > 0; p = p[min(chunk, len(p)):] {
			_, err := w.Write(p[:min(chunk, len(p))])
			must(t, err)
		}
		must(t, w.Close())
		return buf.Bytes()
	}
	for _, c := range []Compression{Gzip, Zstd} {
		want := compress(c, 1, len(data))
		for _, tc := range [][2]int{{2, 7777}, {4, 1 << 20}, {8, 3 << 19}} {
			if got := compress(c, tc[0], tc[1]); !bytes.Equal(got, want) {
				t.Errorf("%s, GOMAXPROCS=%d, writes of %d: output differs", c, tc[0], tc[1])
			}
		}
		if c != Gzip {
			continue
		}
		zr, err := stdgzip.NewReader(bytes.NewReader(want))
		must(t, err)
		if got := readAll(t, zr); !bytes.Equal(got, data) {
			t.Error("standard gzip reads different data")
		}
	}
}

// TestApplyUnprivileged runs the code path of a rootless unpack: devices and whiteout
// devices are skipped, ownership is left alone, and nothing fails.
func TestApplyUnprivileged(t *testing.T) {
	dir := t.TempDir()
	putFile(t, filepath.Join(dir, "gone"), "g", 0o644)
	data := makeTar(t, []tarEntry{
		{name: "dev/", typ: tar.TypeDir, mode: 0o755},
		{name: "dev/null", typ: tar.TypeChar, mode: 0o666},
		{name: "dev/sda", typ: tar.TypeBlock, mode: 0o660},
		{name: "dev/fifo", typ: tar.TypeFifo, mode: 0o600},
		{name: ".wh.gone", typ: tar.TypeReg},
		{name: "f", typ: tar.TypeReg, body: "x", mode: 0o4755},
	})
	if _, err := apply(context.Background(), bytes.NewReader(data), dir, ApplyOptions{}, 1000); err != nil {
		t.Fatal(err)
	}
	got := snapshotTree(t, dir)
	for _, p := range []string{"dev/null", "dev/sda", "gone"} {
		if _, ok := got[p]; ok {
			t.Errorf("%s exists after an unprivileged unpack: %s", p, got[p])
		}
	}
	if !strings.HasPrefix(got["dev/fifo"], "p") || !strings.HasPrefix(got["f"], "urwx") {
		t.Errorf("fifo or setuid file wrong: %q %q", got["dev/fifo"], got["f"])
	}
}

// TestPackFailureReleasesEncoders checks that a failed fill does not leak the parallel
// encoders' goroutines: a build may fail many steps in one process.
func TestPackFailureReleasesEncoders(t *testing.T) {
	before := runtime.NumGoroutine()
	body := bytes.Repeat([]byte("data"), 1<<19) // 2 MiB: more than one pgzip block
	for range 20 {
		for _, c := range []Compression{Gzip, Zstd} {
			_, err := Pack(context.Background(), io.Discard, c, 0, WriteOptions{}, func(w *Writer) error {
				must(t, w.WriteHeader(&tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)) * 2}))
				_, err := w.Write(body)
				must(t, err)
				return io.ErrUnexpectedEOF
			})
			if err != io.ErrUnexpectedEOF {
				t.Fatalf("%s: Pack = %v, want fill's error", c, err)
			}
		}
	}
	// Finished encoder goroutines exit shortly after Pack returns: poll until they have.
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(5 * time.Second); n > before+4 && time.Now().Before(deadline); n = runtime.NumGoroutine() {
		runtime.Gosched()
	}
	if n > before+4 {
		t.Errorf("%d goroutines after 40 failed packs, %d before", n, before)
	}
}

// TestGzipReuseIsReproducible: a pooled gzip writer, reused after streams of other sizes and
// levels, writes the same bytes as a fresh one, so layer digests (and cache keys) stay put.
func TestGzipReuseIsReproducible(t *testing.T) {
	data := make([]byte, 3<<20+777)
	for i := range data {
		data[i] = byte(i*5/11) ^ byte(i>>9)
	}
	compress := func(w io.WriteCloser, p []byte) []byte {
		t.Helper()
		var buf bytes.Buffer
		w.(*pooledGzip).Reset(&buf)
		_, err := w.Write(p)
		must(t, err)
		must(t, w.Close())
		return buf.Bytes()
	}
	var fresh bytes.Buffer
	zw, err := pgzip.NewWriterLevel(&fresh, defaultGzipLevel)
	must(t, err)
	must(t, zw.SetConcurrency(gzipBlock, max(2, runtime.GOMAXPROCS(0))))
	writeAll(t, zw, data)
	want := fresh.Bytes()
	var last *pooledGzip
	reused := 0
	for round := range 6 {
		other, err := compressor(io.Discard, Gzip, 1+round%3) // other levels and sizes in between
		must(t, err)
		compress(other, data[:round*100000+1])
		w, err := compressor(io.Discard, Gzip, 0)
		must(t, err)
		if w == last {
			reused++
		}
		last = w.(*pooledGzip)
		if got := compress(w, data); !bytes.Equal(got, want) {
			t.Fatalf("round %d: a reused gzip writer's output differs from a fresh one's", round)
		}
	}
	if reused == 0 {
		t.Error("no gzip writer was reused: the pool does not take them back")
	}
}

// A pooled zstd encoder, reused after streams of other sizes and levels, must write what a
// fresh one writes: layer digests depend on it.
func TestZstdReuseIsReproducible(t *testing.T) {
	data := make([]byte, 3<<20+777)
	for i := range data {
		data[i] = byte(i*5/11) ^ byte(i>>9)
	}
	compress := func(c int, p []byte) ([]byte, *pooledZstd) {
		t.Helper()
		var buf bytes.Buffer
		w, err := compressor(&buf, Zstd, c)
		must(t, err)
		writeAll(t, w, p)
		return buf.Bytes(), w.(*pooledZstd)
	}
	var fresh bytes.Buffer
	zw, err := zstd.NewWriter(&fresh, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(2))
	must(t, err)
	writeAll(t, zw, data)
	want := fresh.Bytes()
	var last *pooledZstd
	reused := 0
	for round := range 6 {
		compress([]int{1, 7, 19}[round%3], data[:round*100000+1]) // other levels and sizes in between
		got, w := compress(0, data)
		if w == last {
			reused++
		}
		last = w
		if !bytes.Equal(got, want) {
			t.Fatalf("round %d: a reused zstd encoder's output differs from a fresh one's", round)
		}
	}
	if reused == 0 {
		t.Error("no zstd encoder was reused: the pool does not take them back")
	}
}
