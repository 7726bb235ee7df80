package layer

import (
	"archive/tar"
	"io"
	"time"
)

// WriteOptions control determinism.
type WriteOptions struct {
	SourceDateEpoch *time.Time // when set, every mtime is clamped to at most this time
}

// Writer writes deterministic tar entries: PAX format, numeric uid/gid only, no atime or
// ctime, mtimes truncated to seconds and clamped by SourceDateEpoch, device numbers only for
// devices. Callers write entries in a stable order (Diff sorts by path).
type Writer struct {
	tw      *tar.Writer
	opts    WriteOptions
	entries int
}

// NewWriter starts a tar stream on w.
func NewWriter(w io.Writer, opts WriteOptions) *Writer {
	return &Writer{tw: tar.NewWriter(w), opts: opts}
}

// WriteHeader normalizes hdr (a copy; the caller's is untouched) and writes it.
func (w *Writer) WriteHeader(hdr *tar.Header) error {
	h := *hdr
	h.Format = tar.FormatPAX
	h.Uname, h.Gname = "", ""
	h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
	h.ModTime = h.ModTime.Truncate(time.Second)
	if e := w.opts.SourceDateEpoch; e != nil && h.ModTime.After(*e) {
		h.ModTime = *e
	}
	if h.ModTime.Before(time.Unix(0, 0)) {
		h.ModTime = time.Unix(0, 0)
	}
	h.ModTime = h.ModTime.UTC()
	if h.Typeflag != tar.TypeChar && h.Typeflag != tar.TypeBlock {
		h.Devmajor, h.Devminor = 0, 0
	}
	if h.PAXRecords != nil {
		recs := make(map[string]string, len(h.PAXRecords))
		for k, v := range h.PAXRecords {
			if k != "atime" && k != "ctime" {
				recs[k] = v
			}
		}
		h.PAXRecords = recs
	}
	//lint:ignore SA1019 clearing the deprecated field: PAXRecords carry xattrs, Xattrs would duplicate them
	h.Xattrs = nil
	w.entries++
	return w.tw.WriteHeader(&h)
}

// Write writes the current entry's content.
func (w *Writer) Write(p []byte) (int, error) { return w.tw.Write(p) }

// ReadFrom copies the current entry's content from r with a large buffer.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	buf := getBuf()
	defer putBuf(buf)
	return io.CopyBuffer(onlyWriter{w.tw}, r, *buf)
}

// Close ends the tar stream; it does not close the underlying writer.
func (w *Writer) Close() error { return w.tw.Close() }

// Entries counts the headers written so far.
func (w *Writer) Entries() int { return w.entries }

// onlyWriter hides ReadFrom so io.CopyBuffer uses the given buffer.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }
