package build

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/cache"
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

// viewCache memoizes the views of a build's layer chains, so that each layer is read at
// most once per build however many COPY and WORKDIR steps sit on it. A view is shared: no
// one changes it once made.
type viewCache struct {
	store *cache.Store
	mu    sync.Mutex
	calls map[string]*viewCall // by chain: the layers' diff IDs, bottom first
}

type viewCall struct {
	done chan struct{}
	view *fsView
	err  error
}

func newViewCache(store *cache.Store) *viewCache {
	return &viewCache{store: store, calls: map[string]*viewCall{}}
}

// get returns the view of layers, making it from the view of all but the top layer.
func (c *viewCache) get(ctx context.Context, layers []layerRef) (*fsView, error) {
	var key strings.Builder
	for _, l := range layers {
		key.WriteString(l.diffID.Hex)
	}
	c.mu.Lock()
	call, ok := c.calls[key.String()]
	if !ok {
		call = &viewCall{done: make(chan struct{})}
		c.calls[key.String()] = call
	}
	c.mu.Unlock()
	if ok {
		select {
		case <-call.done:
			return call.view, call.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	call.view, call.err = c.make(ctx, layers)
	if call.err != nil {
		c.mu.Lock()
		delete(c.calls, key.String()) // a later step may retry (this one may have been cancelled)
		c.mu.Unlock()
	}
	close(call.done)
	return call.view, call.err
}

func (c *viewCache) make(ctx context.Context, layers []layerRef) (*fsView, error) {
	if len(layers) == 0 {
		return &fsView{entries: map[string]viewEntry{}, files: map[string][]byte{}}, nil
	}
	below, err := c.get(ctx, layers[:len(layers)-1])
	if err != nil {
		return nil, err
	}
	v := &fsView{entries: maps.Clone(below.entries), files: maps.Clone(below.files)}
	top := layers[len(layers)-1]
	// An unpacked snapshot is read by its directory entries, far cheaper than decompressing
	// the blob; only root's snapshots hold whiteouts, so only then do they say everything.
	if os.Geteuid() == 0 && c.store != nil && c.store.HasSnapshot(top.diffID) {
		if dir, err := c.store.Snapshot(ctx, top.diffID, top.open); err == nil {
			if err := v.applySnapshot(ctx, dir); err != nil {
				return nil, fmt.Errorf("read snapshot %s: %w", top.diffID, err)
			}
			return v, nil
		}
	}
	if err := v.apply(ctx, top); err != nil {
		return nil, fmt.Errorf("read layer %s: %w", top.desc.Digest, err)
	}
	return v, nil
}

func (v *fsView) apply(ctx context.Context, l layerRef) error {
	r, err := layer.OpenUncompressed(l.open)
	if err != nil {
		return err
	}
	defer r.Close()
	return layer.EachEntry(ctx, r, v.add)
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

// applySnapshot adds an unpacked layer (overlay whiteouts: 0/0 character devices and
// opaque directories) to the view.
func (v *fsView) applySnapshot(ctx context.Context, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		name := filepath.ToSlash(rel)
		if name == "." {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		if st == nil {
			return fmt.Errorf("%s: no stat data", p)
		}
		e := viewEntry{mode: int64(fileModeBits(fi.Mode())), uid: int(st.Uid), gid: int(st.Gid)}
		switch m := fi.Mode(); {
		case m&fs.ModeCharDevice != 0 && st.Rdev == 0:
			v.removeUnder(name, true)
			return nil
		case m.IsDir():
			e.typ = tar.TypeDir
			if val := make([]byte, 1); getOpaque(p, val) && val[0] == 'y' {
				v.removeUnder(name, false)
			}
		case m&fs.ModeSymlink != 0:
			e.typ = tar.TypeSymlink
			if e.link, err = os.Readlink(p); err != nil {
				return err
			}
		case m.IsRegular():
			e.typ = tar.TypeReg
		case m&fs.ModeCharDevice != 0:
			e.typ = tar.TypeChar
		case m&fs.ModeDevice != 0:
			e.typ = tar.TypeBlock
		default:
			e.typ = tar.TypeFifo
		}
		v.entries[name] = e
		if viewFiles[name] && e.typ == tar.TypeReg {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			if v.files[name], err = io.ReadAll(io.LimitReader(f, maxViewFile)); err != nil {
				return err
			}
		}
		return nil
	})
}

func getOpaque(p string, val []byte) bool {
	n, err := unix.Lgetxattr(p, "trusted.overlay.opaque", val)
	if err != nil { // snapshots unpacked rootless carry overlay's user.* xattrs
		n, err = unix.Lgetxattr(p, "user.overlay.opaque", val)
	}
	return err == nil && n == 1
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
