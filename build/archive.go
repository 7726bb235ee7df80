package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"fmt"
	"io"
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
	return isTar(f)
}

// isTar reports whether r starts a tar archive, plain or in a compression decompressAny knows.
func isTar(r io.Reader) bool {
	dr, err := decompressAny(bufio.NewReader(r))
	if err != nil {
		return false
	}
	defer dr.Close()
	_, err = tar.NewReader(dr).Next()
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

// extractArchive writes an archive's entries under dest, as docker does: extracted as if
// dest were the root, so a link in the archive to ".." or to an absolute path stays a link
// and later entries through it land inside dest, never outside it. The entries stream
// straight into the layer; a view of what the archive made so far resolves each name with
// fsView's resolver (links followed inside the root). Hard links are rewritten to the same
// place; an entry that check refuses fails the ADD. Ownership is kept unless --chown was
// given.
func extractArchive(ctx context.Context, e *fileEntry, dest string, chown bool, uid, gid int, check *layer.Checker, w *layer.Writer) error {
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
	made := &fsView{entries: map[string]viewEntry{}}
	err = layer.EachEntry(ctx, r, func(hdr *tar.Header, content io.Reader) error {
		if !extractable(hdr.Typeflag) || !made.place(hdr) || !rebaseEntry(hdr, dest) {
			return nil
		}
		if chown {
			hdr.Uid, hdr.Gid = uid, gid
		}
		hdr.Uname, hdr.Gname = "", ""
		if hdr.Typeflag == tar.TypeSymlink {
			hdr.Mode = 0o777 // what extracting it on Linux gives, whatever the archive says
		}
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
	if err != nil {
		return fmt.Errorf("read archive: %w", err)
	}
	return nil
}

// place resolves an archive entry's name (and a hard link's target) against what the archive
// made so far, as an extraction chrooted into the destination would: "../x" is "x", links
// in the parent path are followed inside the root, the last element is the entry itself.
// It records the entry and reports false for the root, which is not extracted.
func (v *fsView) place(hdr *tar.Header) bool {
	name, ok := v.placeName(hdr.Name)
	if !ok {
		return false
	}
	if hdr.Typeflag == tar.TypeLink {
		if target, ok := v.placeName(hdr.Linkname); ok {
			hdr.Linkname = target
		}
	}
	hdr.Name = name
	if old, ok := v.entries[name]; ok && old.typ == tar.TypeDir && hdr.Typeflag != tar.TypeDir {
		v.removeUnder(name, false) // replaced: what was below it is gone
	}
	v.entries[name] = viewEntry{typ: hdr.Typeflag, link: hdr.Linkname}
	return true
}

// placeName is the symlink-free place of an archive path, relative to the root.
func (v *fsView) placeName(p string) (string, bool) {
	clean := path.Clean("/" + p)
	if clean == "/" {
		return "", false
	}
	dir, _, _ := v.resolve(path.Dir(clean))
	return strings.TrimPrefix(path.Join(dir, path.Base(clean)), "/"), true
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
	return extractable(hdr.Typeflag)
}

// extractable reports whether ADD extracts entries of this type; others are skipped.
func extractable(typ byte) bool {
	switch typ {
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo, tar.TypeChar, tar.TypeBlock:
		return true
	}
	return false
}
