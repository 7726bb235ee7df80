package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/ulikunitz/xz"

	"github.com/kiln-build/kiln/cache/layer"
)

// Magic numbers of the compressions ADD understands beyond layers' own (gzip, zstd).
var (
	magicBzip2 = []byte("BZh")
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// isArchive reports whether a local file is a tar archive, plain or compressed, which ADD
// extracts instead of copying (docker's rule: by content, not by file name).
func isArchive(e *fileEntry) bool {
	f, err := e.open()
	if err != nil {
		return false
	}
	defer f.Close()
	r, err := decompressAny(bufio.NewReader(f))
	if err != nil {
		return false
	}
	defer r.Close()
	_, err = tar.NewReader(r).Next()
	return err == nil
}

// decompressAny detects the compression by magic number: bzip2 and xz here, gzip, zstd and
// plain tar as for layers.
func decompressAny(br *bufio.Reader) (io.ReadCloser, error) {
	head, _ := br.Peek(6)
	switch {
	case bytes.HasPrefix(head, magicBzip2):
		return io.NopCloser(bzip2.NewReader(br)), nil
	case bytes.HasPrefix(head, magicXz):
		r, err := xz.NewReader(br)
		return io.NopCloser(r), err
	}
	return layer.Decompress(br)
}

// eachEntry calls fn for every entry of the tar stream r, stopping when ctx ends.
func eachEntry(ctx context.Context, r io.Reader, fn func(*tar.Header, io.Reader) error) error {
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(hdr, tr); err != nil {
			return err
		}
	}
}

// extractArchive writes an archive's entries under dest, as docker does: extracted as if
// dest were the root, so a link in the archive to ".." or to an absolute path stays a link
// and later entries through it land inside dest, never outside it. layer.Apply does that
// resolution into a staging directory under tmp, layer.Diff reads the result back. Hard
// links are rewritten to the same place; an entry that check refuses fails the ADD.
// Ownership is kept unless --chown was given.
func extractArchive(ctx context.Context, e *fileEntry, dest, tmp string, chown bool, uid, gid int, check *layer.Checker, w *layer.Writer) error {
	f, err := e.open()
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := decompressAny(bufio.NewReader(f))
	if err != nil {
		return err
	}
	defer r.Close()
	stage, err := os.MkdirTemp(tmp, "unpack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	if err := applyClamped(ctx, r, stage); err != nil {
		return fmt.Errorf("read archive: %w", err)
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		lw := layer.NewWriter(pw, layer.WriteOptions{})
		err := layer.Diff(ctx, stage, lw)
		if err == nil {
			err = lw.Close()
		}
		pw.CloseWithError(err)
	}()
	err = eachEntry(ctx, pr, func(hdr *tar.Header, content io.Reader) error {
		if !rebaseEntry(hdr, dest) {
			return nil
		}
		if chown {
			hdr.Uid, hdr.Gid = uid, gid
		}
		hdr.Uname, hdr.Gname = "", ""
		if err := check.Check(hdr); err != nil {
			return err
		}
		if err := w.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			_, err := io.Copy(w, content)
			return err
		}
		return nil
	})
	pr.CloseWithError(errors.New("archive read stopped")) // ends the writer if we stopped early
	<-done
	if err != nil {
		return fmt.Errorf("read archive: %w", err)
	}
	return nil
}

// applyClamped extracts the archive r into dir with layer.Apply, its names made relative to
// dir first ("../x" is "x"), as an extraction chrooted into the destination sees them.
func applyClamped(ctx context.Context, r io.Reader, dir string) error {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		tw := tar.NewWriter(pw)
		err := eachEntry(ctx, r, func(hdr *tar.Header, content io.Reader) error {
			if !rebaseEntry(hdr, "/") {
				return nil
			}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			_, err := io.Copy(tw, content)
			return err
		})
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	_, err := layer.Apply(ctx, pr, dir, layer.ApplyOptions{Whiteouts: layer.DeleteWhiteouts})
	pr.CloseWithError(errors.New("archive extraction stopped")) // ends the reader if Apply stopped early
	<-done
	return err
}

// rebaseEntry moves an archive entry under dest; it reports false for entries to skip.
func rebaseEntry(hdr *tar.Header, dest string) bool {
	name := path.Clean("/" + hdr.Name)
	if name == "/" {
		return false
	}
	isDir := hdr.Typeflag == tar.TypeDir
	hdr.Name = strings.TrimPrefix(path.Join(dest, name), "/")
	if isDir {
		hdr.Name += "/"
	}
	if hdr.Typeflag == tar.TypeLink {
		hdr.Linkname = strings.TrimPrefix(path.Join(dest, path.Clean("/"+hdr.Linkname)), "/")
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo, tar.TypeChar, tar.TypeBlock:
		return true
	}
	return false
}
