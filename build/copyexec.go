package build

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/kiln-build/kiln/cache/layer"
)

// outEntry is one entry of a COPY layer before it is written.
type outEntry struct {
	hdr  tar.Header
	src  *fileEntry // content source for regular files from the context
	data []byte     // content of heredoc files
}

func (op *copyOp) exec(ctx context.Context, e *env, in inputs) (*vresult, error) {
	sel, release, err := op.sources(ctx, e, in)
	if err != nil {
		return nil, err
	}
	defer release()
	base := in.parent.layers
	if op.link {
		base = nil // the layer must not depend on what is below it
	}
	view, err := e.view(ctx, base)
	if err != nil {
		return nil, err
	}
	return e.packLayer(ctx, in.parent, func(w *layer.Writer) error { return op.write(ctx, sel, view, w) })
}

// sources is everything the COPY/ADD copies: the context files selected while planning, or
// the files of the --from filesystem (kept readable until release), then downloads and git
// checkouts.
func (op *copyOp) sources(ctx context.Context, e *env, in inputs) (*selection, func(), error) {
	sel, release := op.sel, func() {}
	if op.from != nil {
		var layers []layerRef
		if op.from.vertex != nil {
			layers = in.deps[0].layers
		}
		rootfs, rel, err := e.stageRootfs(ctx, layers)
		if err != nil {
			return nil, nil, err
		}
		var closeFrom func()
		sel, closeFrom, err = selectFrom(ctx, rootfs, op.from.what, op.from.sources)
		if err != nil {
			rel()
			return nil, nil, err
		}
		release = func() { closeFrom(); rel() }
		if err := sel.exclude(op.exclude); err != nil {
			release()
			return nil, nil, err
		}
	}
	if len(op.urls) == 0 && len(op.git) == 0 {
		return sel, release, nil
	}
	all := &selection{}
	if sel != nil {
		all.roots = append(all.roots, sel.roots...)
	}
	for _, u := range op.urls {
		d, err := u.fetch(ctx, e.downloadDir())
		if err != nil {
			release()
			return nil, nil, err
		}
		all.roots = append(all.roots, u.root(d))
	}
	for _, g := range op.git {
		gs, closeGit, err := g.selection(ctx)
		if err != nil {
			release()
			return nil, nil, err
		}
		prev := release
		release = func() { closeGit(); prev() }
		all.roots = append(all.roots, gs.roots...)
	}
	return all, release, nil
}

// write writes the layer of a COPY/ADD over view: missing parent directories, the selected
// files, heredoc files, then the contents of local archives for ADD.
func (op *copyOp) write(ctx context.Context, sel *selection, view *fsView, w *layer.Writer) error {
	uid, gid, err := view.resolveOwner(op.chown, false)
	if err != nil {
		return err
	}
	dest, _, _ := view.resolve(op.dest)
	destIsDir := op.destDir || op.parents || len(op.contents)+rootCount(sel) > 1 || hasDirSource(sel) || view.isDir(dest)
	out := map[string]*outEntry{}
	mtime := time.Now()
	dirOf := dest
	if !destIsDir {
		dirOf = path.Dir(dest)
	}
	addMissingDirs(view, dirOf, uid, gid, mtime, out)
	var archives []*fileEntry
	if sel != nil {
		for ri := range sel.roots {
			archives = append(archives, op.addRoot(&sel.roots[ri], dest, destIsDir, uid, gid, out)...)
		}
	}
	for _, c := range op.contents {
		target := dest
		if destIsDir {
			target = path.Join(dest, c.Path)
		}
		out[target] = &outEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: target, Mode: op.mode(0o644, false),
			Uid: uid, Gid: gid, Size: int64(len(c.Data)), ModTime: mtime}, data: []byte(c.Data)}
	}
	if op.parents {
		names := make([]string, 0, len(out))
		for name := range out {
			names = append(names, name)
		}
		for _, name := range names {
			addMissingDirs(view, path.Dir(name), uid, gid, mtime, out)
		}
	}
	if err := writeEntries(ctx, out, w); err != nil {
		return err
	}
	// An archive's entries must pass the rules every snapshot is unpacked with, or the
	// image would store fine and never unpack.
	var check layer.Checker
	if len(archives) > 0 {
		for _, name := range sortedKeys(out) {
			if err := check.Check(&out[name].hdr); err != nil {
				return err
			}
		}
	}
	for _, a := range archives {
		if err := extractArchive(ctx, a, dest, op.chown != "", uid, gid, &check, w); err != nil {
			return fmt.Errorf("ADD %s: %w", a.abs, err)
		}
	}
	return nil
}

// rootCount counts the matched sources.
func rootCount(sel *selection) int {
	if sel == nil {
		return 0
	}
	return len(sel.roots)
}

// hasDirSource reports whether a source is a directory, whose contents go into dest.
func hasDirSource(sel *selection) bool {
	if sel == nil {
		return false
	}
	for _, r := range sel.roots {
		if r.isDir {
			return true
		}
	}
	return false
}

// addMissingDirs adds entries for the directories of dir that the parent filesystem lacks.
func addMissingDirs(view *fsView, dir string, uid, gid int, mtime time.Time, out map[string]*outEntry) {
	for d := dir; d != "/" && d != "."; d = path.Dir(d) {
		if _, _, ok := view.resolve(d); ok {
			return
		}
		if _, ok := out[d]; ok {
			continue // copied itself, with its own metadata
		}
		out[d] = &outEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, Uid: uid, Gid: gid, ModTime: mtime}}
	}
}

// addRoot adds one copied source; local archives given to ADD are returned for extraction.
func (op *copyOp) addRoot(r *copyRoot, dest string, destIsDir bool, uid, gid int, out map[string]*outEntry) []*fileEntry {
	var archives []*fileEntry
	if op.parents {
		dest = path.Join(dest, r.path) // the source's own path, parents included
	}
	for i := range r.entries {
		e := &r.entries[i]
		target := path.Join(dest, e.rel)
		if !r.isDir {
			target = dest
			if destIsDir && !op.parents {
				target = path.Join(dest, r.name)
			}
			if op.add && op.unpack && !r.noUnpack && e.mode.IsRegular() && isArchive(e) {
				archives = append(archives, e)
				continue
			}
		}
		hdr := tar.Header{Name: target, Uid: uid, Gid: gid, ModTime: e.mtime}
		if e.owned && op.chown == "" {
			hdr.Uid, hdr.Gid = e.uid, e.gid
		}
		switch {
		case e.mode.IsDir():
			hdr.Typeflag, hdr.Mode = tar.TypeDir, op.mode(e.mode, true)
		case e.mode&fs.ModeSymlink != 0:
			hdr.Typeflag, hdr.Mode, hdr.Linkname = tar.TypeSymlink, 0o777, e.link
		default:
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, op.mode(e.mode, false), e.size
		}
		out[target] = &outEntry{hdr: hdr, src: e}
	}
	return archives
}

// mode applies --chmod, keeping the setuid/setgid/sticky bits of the source otherwise.
func (op *copyOp) mode(m fs.FileMode, isDir bool) int64 {
	v := fileModeBits(m)
	if op.chmod != nil {
		v = op.chmod.apply(v, isDir)
	}
	return int64(v)
}

// writeEntries writes out in path order, streaming file contents and checking that each file
// still has the content its cache key was computed from.
func writeEntries(ctx context.Context, out map[string]*outEntry, w *layer.Writer) error {
	names := make([]string, 0, len(out))
	var largest int64
	for n, e := range out {
		names = append(names, n)
		if e.src != nil {
			largest = max(largest, e.src.size)
		}
	}
	sort.Strings(names)
	// Up to 1 MiB, but no bigger than the largest file: a fresh 1 MiB buffer costs a
	// one-small-file COPY more (page faults, clearing) than copying the file does.
	buf := make([]byte, min(max(largest, 512), 1<<20))
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := out[n]
		e.hdr.Name = strings.TrimPrefix(n, "/")
		if e.hdr.Typeflag == tar.TypeDir {
			e.hdr.Name += "/"
		}
		if err := w.WriteHeader(&e.hdr); err != nil {
			return err
		}
		switch {
		case e.data != nil:
			if _, err := w.Write(e.data); err != nil {
				return err
			}
		case e.src != nil && e.hdr.Typeflag == tar.TypeReg:
			if err := copyChecked(w, e.src, buf); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyChecked streams a context file into the layer and fails if it changed since it was hashed.
func copyChecked(w io.Writer, e *fileEntry, buf []byte) error {
	f, err := e.open()
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(w, h), io.LimitReader(f, e.size), buf)
	if err != nil {
		return fmt.Errorf("copy %s: %w", e.abs, err)
	}
	if n != e.size || (e.digest != "" && "sha256:"+hex.EncodeToString(h.Sum(nil)) != e.digest) {
		return fmt.Errorf("%s changed during the build; run the build again", e.abs)
	}
	return nil
}
