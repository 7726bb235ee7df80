package layer

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// Decompress detects gzip, zstd or a plain tar by its first bytes and returns the
// uncompressed stream, bounded by LimitsFromEnv. Closing it releases the decoder, not r.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	lim, err := LimitsFromEnv()
	if err != nil {
		return nil, err
	}
	return DecompressLimited(r, lim)
}

// DecompressLimited is Decompress with explicit limits: reading past them fails with an
// error wrapping ErrTooLarge.
func DecompressLimited(r io.Reader, lim Limits) (io.ReadCloser, error) {
	in := &countingReader{r: r}
	br := bufio.NewReaderSize(in, 1<<20)
	head, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("read layer: %w", err)
	}
	var rc io.ReadCloser
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("read gzip layer: %w", err)
		}
		rc = zr
	case bytes.HasPrefix(head, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("read zstd layer: %w", err)
		}
		rc = zr.IOReadCloser()
	default:
		rc = io.NopCloser(br)
	}
	return readCloser{&limitReader{r: rc, in: in, lim: lim}, rc}, nil
}

// readCloser joins a reader with the closer of what it reads from.
type readCloser struct {
	io.Reader
	io.Closer
}

// OpenUncompressed opens a layer blob through open and returns its uncompressed tar;
// closing the result closes the blob too.
func OpenUncompressed(open func() (io.ReadCloser, error)) (io.ReadCloser, error) {
	rc, err := open()
	if err != nil {
		return nil, err
	}
	r, err := Decompress(rc)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return bothCloser{r, rc}, nil
}

// bothCloser reads from the decoder and closes the decoder, then the blob.
type bothCloser struct {
	io.ReadCloser
	blob io.Closer
}

func (b bothCloser) Close() error {
	err := b.ReadCloser.Close()
	if cerr := b.blob.Close(); err == nil {
		err = cerr
	}
	return err
}
