package layer

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// zeroLayer is a gzip layer holding one file of size zero bytes: a bomb when size is large.
func zeroLayer(t testing.TB, size int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: "zeros", Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for left := size; left > 0; left -= int64(len(chunk)) {
		if _, err := tw.Write(chunk[:min(left, int64(len(chunk)))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func decompressAll(t *testing.T, blob []byte, lim Limits) (int64, error) {
	t.Helper()
	rc, err := DecompressLimited(bytes.NewReader(blob), lim)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	return io.Copy(io.Discard, rc)
}

func TestDecompressStopsBomb(t *testing.T) {
	bomb := zeroLayer(t, 64<<20)
	lim := Limits{MaxRatio: 100, RatioAfter: 4 << 20}
	n, err := decompressAll(t, bomb, lim)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("%d-byte gzip expanded to %d bytes without error (%v)", len(bomb), n, err)
	}
	if !strings.Contains(err.Error(), MaxRatioEnv) {
		t.Errorf("error does not say how to raise the limit: %v", err)
	}
	if stop := max(lim.RatioAfter, lim.MaxRatio*int64(len(bomb))); n > stop+1<<20 {
		t.Errorf("read %d bytes before stopping, want about %d", n, stop)
	}
	// The same run of zeros is fine below the threshold, and with the ratio off.
	if _, err := decompressAll(t, bomb, Limits{MaxRatio: 100, RatioAfter: 128 << 20}); err != nil {
		t.Errorf("below the ratio threshold: %v", err)
	}
	if _, err := decompressAll(t, bomb, Limits{}); err != nil {
		t.Errorf("without limits: %v", err)
	}
}

func TestDecompressMaxSize(t *testing.T) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	_ = tw.WriteHeader(&tar.Header{Name: "f", Mode: 0o644, Size: 3 << 20, Typeflag: tar.TypeReg})
	_, _ = tw.Write(make([]byte, 3<<20))
	_ = tw.Close()
	_, err := decompressAll(t, raw.Bytes(), Limits{MaxSize: 1 << 20})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), MaxSizeEnv) {
		t.Fatalf("plain 3 MiB tar past a 1 MiB limit: %v", err)
	}
}

func TestLimitsFromEnv(t *testing.T) {
	t.Setenv(MaxSizeEnv, "2g")
	t.Setenv(MaxRatioEnv, "0")
	l, err := LimitsFromEnv()
	if err != nil || l.MaxSize != 2<<30 || l.MaxRatio != 0 {
		t.Fatalf("LimitsFromEnv = %+v, %v", l, err)
	}
	t.Setenv(MaxRatioEnv, "lots")
	if _, err := LimitsFromEnv(); err == nil || !strings.Contains(err.Error(), MaxRatioEnv) {
		t.Fatalf("bad ratio accepted: %v", err)
	}
}
