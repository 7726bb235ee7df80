package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/gofrs/flock"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/runtime"
)

// preparedMounts holds what a RUN's mounts need while it runs, and releases it after.
type preparedMounts struct {
	mounts   []RunMount
	releases []func()
	secrets  [][]byte // values to keep out of the step's log
}

func (pm *preparedMounts) release() {
	for i := len(pm.releases) - 1; i >= 0; i-- {
		pm.releases[i]()
	}
}

// prepareMounts makes each --mount's source: context paths, other stages' filesystems,
// persistent cache dirs, secret files. tmp is the step's private staging dir.
func (s *env) prepareMounts(ctx context.Context, op *execOp, deps []*vresult, tmp string) (*preparedMounts, error) {
	pm := &preparedMounts{}
	for i, m := range op.mounts {
		rm := RunMount{Target: m.target, ReadOnly: m.readOnly}
		var err error
		switch m.typ {
		case instructions.MountTypeBind:
			rm.Source, err = s.bindSource(ctx, m, deps, pm)
		case instructions.MountTypeCache:
			rm.Source, rm.ReadOnly, err = s.cacheDir(m, pm)
		case instructions.MountTypeTmpfs:
			rm.Tmpfs = true
			if m.size > 0 {
				rm.Options = []string{fmt.Sprintf("size=%d", m.size)}
			}
		case instructions.MountTypeSecret:
			var skip bool
			rm.Source, skip, err = s.secretFile(m, filepath.Join(tmp, fmt.Sprintf("secret-%d", i)), pm)
			if skip {
				continue
			}
			rm.ReadOnly = true
		}
		if err != nil {
			pm.release()
			return nil, fmt.Errorf("--mount target=%s: %w", m.target, err)
		}
		pm.mounts = append(pm.mounts, rm)
	}
	return pm, nil
}

// bindSource resolves a bind's source inside the context or the --from filesystem; the
// path resolves as if that tree were "/", so no symlink leads out of it.
func (s *env) bindSource(ctx context.Context, m runMount, deps []*vresult, pm *preparedMounts) (string, error) {
	if m.sel != nil {
		return s.contextBind(ctx, m, pm)
	}
	rootfs, release, err := s.stageRootfs(ctx, deps[m.dep].layers)
	if err != nil {
		return "", err
	}
	pm.releases = append(pm.releases, release)
	src, err := securejoin.SecureJoin(rootfs, m.source)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(src); err != nil {
		return "", fmt.Errorf("source %s: %w", m.source, err)
	}
	if m.readOnly {
		return src, nil
	}
	return s.writableCopy(src, "", pm)
}

// contextBind gives a bind of a context directory a view without the ignored paths: an
// overlay of the directory under a small layer of whiteouts for the top-most ignored paths,
// so nothing is copied however large the context is. Without ignored paths below the
// source, a read-only bind is the directory itself.
func (s *env) contextBind(ctx context.Context, m runMount, pm *preparedMounts) (string, error) {
	c := s.opts.Context
	if c == nil {
		return "", errors.New("no build context to bind from")
	}
	pattern, err := c.sel.cleanPattern(m.source)
	if err != nil {
		return "", err
	}
	real, fi, err := c.sel.resolve(pattern, true)
	if err != nil {
		return "", fmt.Errorf("source %s: %w", m.source, err)
	}
	src := filepath.Join(c.dir, filepath.FromSlash(real))
	hide := ""
	if fi.IsDir() {
		if hide, err = s.hides.layer(ctx, c, real); err != nil {
			return "", err
		}
	}
	if m.readOnly && hide == "" {
		return src, nil
	}
	return s.writableCopy(src, hide, pm)
}

// hideCache makes the whiteout layer of each context directory that RUN steps bind once
// per build: listing a large context and creating its whiteouts is the costly part.
type hideCache struct {
	store *cache.Store
	mu    sync.Mutex
	dir   string            // holds the layers; made on first use, removed by close
	made  map[string]string // context directory → its whiteout layer; "" when it hides nothing
}

func newHideCache(store *cache.Store) *hideCache {
	return &hideCache{store: store, made: map[string]string{}}
}

// layer returns the whiteout layer hiding what is ignored below the context directory real.
func (h *hideCache) layer(ctx context.Context, c *Context, real string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if l, ok := h.made[real]; ok {
		return l, nil
	}
	hidden, err := c.hiddenUnder(ctx, real)
	if err != nil || len(hidden) == 0 {
		h.made[real] = ""
		return "", err
	}
	if h.dir == "" {
		if h.dir, err = h.store.TempDir("hide-"); err != nil {
			return "", err
		}
	}
	l := filepath.Join(h.dir, strconv.Itoa(len(h.made)))
	if err := whiteoutLayer(filepath.Join(c.dir, filepath.FromSlash(real)), l, hidden); err != nil {
		return "", fmt.Errorf("hide .dockerignore'd paths from the bind mount (needs root): %w", err)
	}
	h.made[real] = l
	return l, nil
}

func (h *hideCache) close() {
	if h.dir != "" {
		_ = os.RemoveAll(h.dir)
	}
}

// writableCopy gives a bind its own copy-on-write view of src, under the whiteout layer
// hide when there is one: writes are thrown away after the step, as BuildKit does, and
// never reach the context or the source stage.
func (s *env) writableCopy(src, hide string, pm *preparedMounts) (string, error) {
	tmp, err := s.opts.Store.TempDir("bind-")
	if err != nil {
		return "", err
	}
	pm.releases = append(pm.releases, func() { _ = os.RemoveAll(tmp) })
	fi, err := os.Stat(src)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		dst := filepath.Join(tmp, "file")
		data, err := os.ReadFile(src)
		if err != nil {
			return "", err
		}
		return dst, os.WriteFile(dst, data, fi.Mode().Perm())
	}
	lower := []string{src}
	if hide != "" {
		lower = append(lower, hide)
	}
	merged, release, err := runtime.MountLayers(tmp, lower)
	if err != nil {
		return "", fmt.Errorf("a read-write bind mount, or a bind of a context with ignored files, needs overlayfs (root): %w", err)
	}
	pm.releases = append(pm.releases, func() { _ = release() })
	return merged, nil
}

// cacheDir returns the persistent directory of a cache mount, creating it with the
// requested owner and mode. sharing=locked holds a lock for the step's duration; private
// falls back to a throwaway dir while another step uses the cache.
func (s *env) cacheDir(m runMount, pm *preparedMounts) (string, bool, error) {
	sum := sha256.Sum256([]byte(m.cacheID))
	base := filepath.Join(s.opts.Store.Root(), "cache", "mounts")
	dir := filepath.Join(base, hex.EncodeToString(sum[:16]))
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", false, err
	}
	if m.sharing == instructions.MountSharingLocked || m.sharing == instructions.MountSharingPrivate {
		l := flock.New(dir + ".lock")
		ok, err := l.TryLock()
		if err != nil {
			return "", false, err
		}
		switch {
		case !ok && m.sharing == instructions.MountSharingPrivate:
			dir, err = os.MkdirTemp(base, "private-")
			if err != nil {
				return "", false, err
			}
			pm.releases = append(pm.releases, func() { _ = os.RemoveAll(dir) })
		case !ok:
			if err := l.Lock(); err != nil {
				return "", false, err
			}
			fallthrough
		default:
			pm.releases = append(pm.releases, func() { _ = l.Unlock() })
		}
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(dir, fs.FileMode(m.mode)); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", false, err
		}
		if err := os.Chmod(dir, fs.FileMode(m.mode)); err != nil {
			return "", false, err
		}
		if err := os.Lchown(dir, m.uid, m.gid); err != nil && os.Geteuid() == 0 {
			return "", false, err
		}
	}
	return dir, m.readOnly, nil
}

// secretFile writes a secret given with `kiln build --secret` into the step's staging dir.
func (s *env) secretFile(m runMount, file string, pm *preparedMounts) (string, bool, error) {
	val, ok := s.opts.Secrets[m.secretID]
	if !ok {
		if m.required {
			return "", false, fmt.Errorf("secret %q is required: pass it with --secret id=%s,src=FILE", m.secretID, m.secretID)
		}
		return "", true, nil
	}
	if err := os.WriteFile(file, val, fs.FileMode(m.mode)); err != nil {
		return "", false, err
	}
	if err := os.Chmod(file, fs.FileMode(m.mode)); err != nil {
		return "", false, err
	}
	if err := os.Lchown(file, m.uid, m.gid); err != nil && os.Geteuid() == 0 {
		return "", false, err
	}
	pm.secrets = append(pm.secrets, val)
	return file, false, nil
}

// whiteoutLayer makes dir an overlay layer that deletes each path of hidden (relative to
// src) from the layer below: overlay whiteouts (0/0 character devices), inside directories
// that carry src's own modes and owners so the merged view keeps them.
func whiteoutLayer(src, dir string, hidden []string) error {
	dirs := map[string]bool{}
	for _, h := range hidden {
		for d := path.Dir(h); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
		p := filepath.Join(dir, filepath.FromSlash(h))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := unix.Mknod(p, unix.S_IFCHR, 0); err != nil {
			return err
		}
	}
	dirs["."] = true
	for d := range dirs {
		fi, err := os.Lstat(filepath.Join(src, filepath.FromSlash(d)))
		if err != nil {
			return err
		}
		p := filepath.Join(dir, filepath.FromSlash(d))
		st, _ := fi.Sys().(*syscall.Stat_t)
		if st != nil {
			if err := os.Lchown(p, int(st.Uid), int(st.Gid)); err != nil {
				return err
			}
		}
		if err := os.Chmod(p, fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return err
		}
		if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
			return err
		}
	}
	return nil
}
