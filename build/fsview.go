package build

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/kiln-build/kiln/cache/layer"
)

// viewEntry is what a COPY needs to know about an existing path of the parent filesystem.
type viewEntry struct {
	typ  byte // tar type flag
	mode int64
	uid  int
	gid  int
	link string
}

// fsView is the merged metadata of a layer chain, read from the tars' headers without
// unpacking anything; it also keeps the account files for --chown and USER lookups.
type fsView struct {
	entries map[string]viewEntry // clean relative paths ("etc/passwd")
	files   map[string][]byte
}

// viewFiles are the small files whose contents a view keeps.
var viewFiles = map[string]bool{"etc/passwd": true, "etc/group": true}

// maxViewFile bounds how much of an account file is kept.
const maxViewFile = 4 << 20

func newView(ctx context.Context, layers []layerRef) (*fsView, error) {
	v := &fsView{entries: map[string]viewEntry{}, files: map[string][]byte{}}
	for _, l := range layers {
		if err := v.apply(ctx, l); err != nil {
			return nil, fmt.Errorf("read layer %s: %w", l.desc.Digest, err)
		}
	}
	return v, nil
}

func (v *fsView) apply(ctx context.Context, l layerRef) error {
	r, err := layer.OpenUncompressed(l.open)
	if err != nil {
		return err
	}
	defer r.Close()
	return eachEntry(ctx, r, v.add)
}

func (v *fsView) add(hdr *tar.Header, r io.Reader) error {
	name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	switch {
	case base == ".wh..wh..opq":
		v.removeUnder(dir, false)
		return nil
	case strings.HasPrefix(base, ".wh."):
		v.removeUnder(path.Join(dir, strings.TrimPrefix(base, ".wh.")), true)
		return nil
	case name == "":
		return nil
	}
	v.entries[name] = viewEntry{typ: hdr.Typeflag, mode: hdr.Mode, uid: hdr.Uid, gid: hdr.Gid, link: hdr.Linkname}
	// Tars may omit parent directories; extractors create them, so the view does too.
	for d := path.Dir(name); d != "." && d != "/"; d = path.Dir(d) {
		if _, ok := v.entries[d]; ok {
			break
		}
		v.entries[d] = viewEntry{typ: tar.TypeDir, mode: 0o755}
	}
	if viewFiles[name] && hdr.Typeflag == tar.TypeReg {
		data, err := io.ReadAll(io.LimitReader(r, maxViewFile))
		if err != nil {
			return err
		}
		v.files[name] = data
	}
	return nil
}

// removeUnder deletes p's children (and p itself when self is set).
func (v *fsView) removeUnder(p string, self bool) {
	if self {
		delete(v.entries, p)
		delete(v.files, p)
	}
	prefix := p + "/"
	if p == "" {
		prefix = ""
	}
	for k := range v.entries {
		if strings.HasPrefix(k, prefix) && k != p {
			delete(v.entries, k)
			delete(v.files, k)
		}
	}
}

// resolve follows symlinks in p (absolute, inside the view's root, never above it) and returns
// the resolved path and its entry; ok is false when the resolved path does not exist.
func (v *fsView) resolve(p string) (string, viewEntry, bool) {
	parts := strings.Split(strings.Trim(path.Clean(p), "/"), "/")
	cur, hops := "", 0
	for i := 0; i < len(parts); i++ {
		if parts[i] == "" || parts[i] == "." {
			continue
		}
		next := path.Join(cur, parts[i])
		e, ok := v.entries[next]
		if ok && e.typ == tar.TypeSymlink && hops < maxLinkHops {
			hops++
			target := e.link
			if !path.IsAbs(target) {
				target = path.Join("/", cur, target)
			}
			rest := append(strings.Split(strings.Trim(path.Clean(target), "/"), "/"), parts[i+1:]...)
			parts, i, cur = rest, -1, ""
			continue
		}
		cur = next
	}
	if cur == "" {
		return "/", viewEntry{typ: tar.TypeDir, mode: 0o755}, true
	}
	e, ok := v.entries[cur]
	return "/" + cur, e, ok
}

// isDir reports whether p exists as a directory (after following symlinks).
func (v *fsView) isDir(p string) bool {
	_, e, ok := v.resolve(p)
	return ok && e.typ == tar.TypeDir
}
