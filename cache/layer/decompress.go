package layer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

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
	br := readBufs.Get().(*bufio.Reader)
	br.Reset(in)
	rc, err := decoder(br)
	if err != nil {
		putReadBuf(br)
		return nil, err
	}
	return &readCloser{Reader: &limitReader{r: rc, in: in, lim: lim}, dec: rc, br: br}, nil
}

func decoder(br *bufio.Reader) (io.ReadCloser, error) {
	head, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("read layer: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("read gzip layer: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(head, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("read zstd layer: %w", err)
		}
		return zr.IOReadCloser(), nil
	default:
		return io.NopCloser(br), nil
	}
}

// readBufs holds the 1 MiB read buffers of closed decoders: a build opens a layer per
// step, and for a small layer a fresh buffer (page faults, clearing) costs more than the
// decoding does.
var readBufs = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 1<<20) }}

func putReadBuf(br *bufio.Reader) {
	br.Reset(nil)
	readBufs.Put(br)
}

// errDecoderClosed is what a read after Close returns: the buffer is someone else's by then.
var errDecoderClosed = errors.New("read of a closed layer decoder")

type closedDecoder struct{}

func (closedDecoder) Read([]byte) (int, error) { return 0, errDecoderClosed }

// readCloser reads the limited decoder; Close releases the decoder and hands the buffer back.
type readCloser struct {
	io.Reader
	dec io.Closer
	br  *bufio.Reader
}

func (r *readCloser) Close() error {
	if r.br == nil {
		return nil
	}
	err := r.dec.Close()
	putReadBuf(r.br)
	r.br = nil
	r.Reader = closedDecoder{}
	return err
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
