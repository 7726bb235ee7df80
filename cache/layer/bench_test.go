package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// benchTree copies files of the Go installation (source text, test data, compiled tools: a
// realistic mix for a toolchain layer) into dir until it holds limit bytes; it returns the
// bytes copied.
func benchTree(b *testing.B, dir string, limit int64) int64 {
	b.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		b.Skipf("no Go installation to copy: %v", err)
	}
	goroot := strings.TrimSpace(string(out))
	var total int64
	err = filepath.WalkDir(goroot, func(p string, d fs.DirEntry, err error) error {
		if err != nil || total >= limit {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(goroot, p)
		dst := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		total += int64(len(data))
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		b.Fatal(err)
	}
	if total < limit/2 {
		b.Skipf("GOROOT holds only %d bytes of files", total)
	}
	return total
}

// BenchmarkPack200MB measures Diff plus compression of a 200 MB tree per encoding; the
// tree stays in the page cache, so this is the CPU cost a build pays per layer.
func BenchmarkPack200MB(b *testing.B) {
	dir := b.TempDir()
	size := benchTree(b, dir, 200<<20)
	fill := func(w *Writer) error { return Diff(context.Background(), dir, w) }
	run := func(name string, pack func() (int64, error)) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size)
			var out int64
			for b.Loop() {
				n, err := pack()
				if err != nil {
					b.Fatal(err)
				}
				out = n
			}
			b.ReportMetric(float64(out)/float64(size)*100, "%size")
		})
	}
	for _, tc := range []struct {
		c     Compression
		level int
	}{{Uncompressed, 0}, {Gzip, 0}, {Gzip, 6}, {Zstd, 0}} {
		run(fmt.Sprintf("%s-%d", tc.c, tc.level), func() (int64, error) {
			p, err := Pack(context.Background(), io.Discard, tc.c, tc.level, WriteOptions{}, fill)
			return p.Size, err
		})
	}
	for _, level := range []int{1, 6} {
		run(fmt.Sprintf("gzip-single-%d", level), func() (int64, error) { return packSingleGzip(dir, level) })
	}
}

// packSingleGzip is the one-stream gzip Pack was measured against (it uses pgzip).
func packSingleGzip(dir string, level int) (int64, error) {
	cw := &hashWriter{w: io.Discard, h: nopHash{}}
	zw, err := gzip.NewWriterLevel(cw, level)
	if err != nil {
		return 0, err
	}
	w := NewWriter(zw, WriteOptions{})
	if err := Diff(context.Background(), dir, w); err != nil {
		return 0, err
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	err = zw.Close()
	return cw.n, err
}

// nopHash lets hashWriter count bytes without hashing them.
type nopHash struct{}

func (nopHash) Write(p []byte) (int, error) { return len(p), nil }
func (nopHash) Sum(b []byte) []byte         { return b }
func (nopHash) Reset()                      {}
func (nopHash) Size() int                   { return 0 }
func (nopHash) BlockSize() int              { return 64 }

// BenchmarkPackSmall measures the fixed cost of a small COPY layer, where parallel gzip's
// block buffers could outweigh its speed.
func BenchmarkPackSmall(b *testing.B) {
	dir := b.TempDir()
	for i := range 10 {
		putFile(b, filepath.Join(dir, fmt.Sprintf("f%d", i)), strings.Repeat("config line\n", 100), 0o644)
	}
	for _, c := range []Compression{Gzip, Zstd} {
		b.Run(c.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, err := Pack(context.Background(), io.Discard, c, 0, WriteOptions{}, func(w *Writer) error {
					return Diff(context.Background(), dir, w)
				})
				must(b, err)
			}
		})
	}
	b.Run("gzip-single", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, err := packSingleGzip(dir, 1)
			must(b, err)
		}
	})
}

// BenchmarkApply20kFiles measures unpacking a layer of 20,000 small files in 200 dirs,
// the shape of a node_modules or site-packages layer, where per-file syscalls dominate.
func BenchmarkApply20kFiles(b *testing.B) {
	var buf bytes.Buffer
	w := NewWriter(&buf, WriteOptions{})
	body := bytes.Repeat([]byte("module.exports = {};\n"), 50)
	for d := range 200 {
		must(b, w.WriteHeader(&tar.Header{Name: fmt.Sprintf("pkg%03d/", d), Typeflag: tar.TypeDir, Mode: 0o755}))
		for f := range 100 {
			hdr := &tar.Header{Name: fmt.Sprintf("pkg%03d/f%03d.js", d, f), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}
			must(b, w.WriteHeader(hdr))
			_, err := w.Write(body)
			must(b, err)
		}
	}
	must(b, w.Close())
	data := buf.Bytes()
	base := b.TempDir()
	b.SetBytes(int64(len(data)))
	i := 0
	for b.Loop() {
		b.StopTimer()
		dir := filepath.Join(base, fmt.Sprint(i))
		i++
		must(b, os.Mkdir(dir, 0o755))
		b.StartTimer()
		if _, err := Apply(context.Background(), bytes.NewReader(data), dir, ApplyOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
