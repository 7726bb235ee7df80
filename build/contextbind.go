package build

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/cache"
)

// contextBind gives a bind of a context directory a view without the ignored paths: an
// overlay of the directory under a small layer of whiteouts for the top-most ignored paths,
// so nothing is copied however large the context is. Without ignored paths below the
// source, a read-only bind is the directory itself.
func (s *env) contextBind(ctx context.Context, m runMount, pm *preparedMounts) (string, error) {
	c := s.opts.Context
	if m.ctx != nil {
		c = m.ctx // a --build-context directory
	}
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
	key := filepath.Join(c.dir, filepath.FromSlash(real)) // named contexts are other directories
	if l, ok := h.made[key]; ok {
		return l, nil
	}
	hidden, err := c.hiddenUnder(ctx, real)
	if err != nil || len(hidden) == 0 {
		h.made[key] = ""
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
	h.made[key] = l
	return l, nil
}

func (h *hideCache) close() {
	if h.dir != "" {
		_ = os.RemoveAll(h.dir)
	}
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
