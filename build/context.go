package build

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"golang.org/x/sync/errgroup"
)

// StateStore keeps small build-side state between runs (the context's stat cache).
type StateStore interface {
	ReadState(name string) ([]byte, error) // os.ErrNotExist (wrapped) when absent
	WriteState(name string, data []byte) error
}

// Context is a build context directory with its ignore rules and a stat cache for hashing.
type Context struct {
	dir   string
	pm    *patternmatcher.PatternMatcher // nil when nothing is ignored
	sel   *selector                      // over the context, hiding ignored paths
	stats *statCache
	root  *os.Root // nil for an in-memory context

	pmMu  sync.Mutex      // a PatternMatcher compiles its patterns on first use: not safe for concurrent use
	holds map[string]bool // ignored directories: whether "!" patterns re-include something inside; under pmMu
}

// OpenContext opens dir as a build context. ignore holds .dockerignore patterns; state, when not
// nil, persists the stat cache so unchanged files are not read again on the next build.
func OpenContext(dir string, ignore []string, state StateStore) (*Context, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	if err := checkContextDir(dir); err != nil {
		return nil, err
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	c, err := newContext(root.FS().(tree), abs, ignore, state)
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	c.root = root
	return c, nil
}

// newContext is a context over any tree (an in-memory one in tests and fuzzing); dir is its
// host path.
func newContext(fsys tree, dir string, ignore []string, state StateStore) (*Context, error) {
	c := &Context{dir: dir, stats: loadStatCache(state, dir)}
	c.sel = &selector{fsys: fsys, host: dir, what: "build context"}
	if len(ignore) > 0 {
		pm, err := patternmatcher.New(ignore)
		if err != nil {
			return nil, fmt.Errorf(".dockerignore: %w", err)
		}
		c.pm, c.sel.hidden = pm, c.hidden
	}
	return c, nil
}

// ReadIgnoreFile returns the patterns of the ignore file that applies to a build: the
// Buildfile-specific "<Buildfile>.dockerignore" next to the Buildfile wins over the
// context's .dockerignore, as in BuildKit.
func ReadIgnoreFile(contextDir, buildfile string) ([]string, error) {
	candidates := []string{filepath.Join(contextDir, ".dockerignore")}
	if buildfile != "" && buildfile != "-" {
		candidates = append([]string{buildfile + ".dockerignore"}, candidates...)
	}
	for _, p := range candidates {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		defer f.Close()
		pats, err := ignorefile.ReadAll(f)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		return pats, nil
	}
	return nil, nil
}

// Dir is the absolute, symlink-free path of the context.
func (c *Context) Dir() string { return c.dir }

// Close releases the context directory; files selected from it cannot be read afterwards.
func (c *Context) Close() error {
	if c.root == nil {
		return nil
	}
	return c.root.Close()
}

// Save persists the stat cache; errors are not fatal to a build, so the caller may ignore them.
func (c *Context) Save() error { return c.stats.save() }

// hidden reports whether rel does not exist for the build: it is ignored, and, for a
// directory, nothing inside it is re-included by "!" patterns — as BuildKit sends an ignored
// directory only as the parent of something re-included.
func (c *Context) hidden(rel string, isDir bool) bool {
	c.pmMu.Lock()
	defer c.pmMu.Unlock()
	ig, err := c.pm.MatchesOrParentMatches(rel)
	if err != nil {
		return true // a pattern that cannot be matched hides rather than leaks
	}
	if !ig || !isDir || !c.pm.Exclusions() {
		return ig
	}
	return !c.holdsIncluded(rel)
}

// holdsIncluded reports whether the ignored directory rel holds anything that is not
// ignored, at any depth; memoized, since every directory on the way asks again. The caller
// holds pmMu.
func (c *Context) holdsIncluded(rel string) bool {
	v, ok := c.holds[rel]
	if ok {
		return v
	}
	des, _ := c.sel.fsys.ReadDir(rel) // unreadable: nothing to send from it
	for _, de := range des {
		child := path.Join(rel, de.Name())
		if ig, err := c.pm.MatchesOrParentMatches(child); err == nil && !ig || de.IsDir() && c.holdsIncluded(child) {
			v = true
			break
		}
	}
	if c.holds == nil {
		c.holds = map[string]bool{}
	}
	c.holds[rel] = v
	return v
}

// hashWorkers bounds parallel file reads while hashing: enough to overlap I/O on small files.
const hashWorkers = 8

// Select expands COPY sources against the context and hashes the selected files. Ignored
// paths do not exist for it, whichever link or pattern names them.
func (c *Context) Select(ctx context.Context, sources []string) (*selection, error) {
	sel, err := c.sel.selectSources(ctx, sources)
	if err != nil {
		return nil, err
	}
	if err := c.hashAll(ctx, sel); err != nil {
		return nil, err
	}
	return sel, nil
}

// hashAll fills the digests of regular files, reading in parallel those the stat cache does
// not answer, then the selection's digest.
func (c *Context) hashAll(ctx context.Context, sel *selection) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(hashWorkers)
	sel.files = 0
	for ri := range sel.roots {
		for ei := range sel.roots[ri].entries {
			e := &sel.roots[ri].entries[ei]
			if !e.mode.IsRegular() {
				continue
			}
			sel.files++
			// A file whose stat data is unchanged is answered in line: a goroutine per
			// file was most of a no-op rebuild's hashing time (profiled).
			if d, ok := c.stats.cached(e.src, e.info); ok {
				e.digest = d
				continue
			}
			g.Go(func() error {
				if err := gctx.Err(); err != nil {
					return err
				}
				d, err := c.stats.hash(e.src, e.info, e.open)
				e.digest = d
				return err
			})
		}
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("hash build context: %w", err)
	}
	sel.digest = sel.sum()
	return nil
}

// hiddenUnder lists the top-most hidden paths below the context directory dir, relative to
// it: what a view of dir must leave out. Only directory entries are read, no file.
func (c *Context) hiddenUnder(ctx context.Context, dir string) ([]string, error) {
	if c.pm == nil {
		return nil, nil
	}
	var out []string
	var walk func(d string) error
	walk = func(d string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		des, err := c.sel.fsys.ReadDir(d)
		if err != nil {
			return fmt.Errorf("read %s: %w", filepath.Join(c.dir, d), err)
		}
		for _, de := range des {
			p := path.Join(d, de.Name())
			if c.hidden(p, de.IsDir()) {
				rel, _ := filepath.Rel(dir, p)
				out = append(out, filepath.ToSlash(rel))
				continue
			}
			if de.IsDir() {
				if err := walk(p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return out, walk(dir)
}
