package build

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
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
	stats *statCache
}

// OpenContext opens dir as a build context. ignore holds .dockerignore patterns; state, when not
// nil, persists the stat cache so unchanged files are not read again on the next build.
func OpenContext(dir string, ignore []string, state StateStore) (*Context, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("build context %s: not a directory", dir)
	}
	c := &Context{dir: abs, stats: loadStatCache(state, abs)}
	if len(ignore) > 0 {
		if c.pm, err = patternmatcher.New(ignore); err != nil {
			return nil, fmt.Errorf("build context %s: .dockerignore: %w", dir, err)
		}
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

// Save persists the stat cache; errors are not fatal to a build, so the caller may ignore them.
func (c *Context) Save() error { return c.stats.save() }

// ignored reports whether rel (slash path relative to the context) is excluded by .dockerignore.
func (c *Context) ignored(rel string) (bool, error) {
	if c.pm == nil || rel == "." || rel == "" {
		return false, nil
	}
	return c.pm.MatchesOrParentMatches(rel)
}

// cleanSource turns a COPY source into a slash path relative to the context, refusing escapes.
func cleanSource(src string) (string, error) {
	p := path.Clean("/" + filepath.ToSlash(src))
	if strings.HasPrefix(path.Clean(filepath.ToSlash(src)), "../") || path.Clean(filepath.ToSlash(src)) == ".." {
		return "", fmt.Errorf("source %q is outside the build context", src)
	}
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		p = "."
	}
	return p, nil
}

// resolveInContext follows symlinks in rel (relative to the context) and returns the
// resolved relative path, failing when the link leads outside the context.
func (c *Context) resolveInContext(rel string) (string, error) {
	abs := filepath.Join(c.dir, filepath.FromSlash(rel))
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		// A dangling link: say whether it points out of the context or just at nothing.
		if target, lerr := os.Readlink(abs); lerr == nil && !c.contains(filepath.Join(filepath.Dir(abs), target)) {
			return "", fmt.Errorf("source %q leads outside the build context", rel)
		}
		return "", fmt.Errorf("source %q: %w", rel, err)
	}
	if !c.contains(real) {
		return "", fmt.Errorf("source %q leads outside the build context", rel)
	}
	r, _ := filepath.Rel(c.dir, real)
	return filepath.ToSlash(r), nil
}

// contains reports whether the absolute path p is the context dir or inside it.
func (c *Context) contains(p string) bool {
	if !filepath.IsAbs(p) {
		return true
	}
	r, err := filepath.Rel(c.dir, filepath.Clean(p))
	return err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator))
}

// skipRoot reports whether an ignored source must be skipped: an ignored directory still
// counts when "!" patterns may re-include something inside it.
func (c *Context) skipRoot(rel string) (bool, error) {
	ig, err := c.ignored(rel)
	if err != nil || !ig {
		return false, err
	}
	if c.pm.Exclusions() {
		if fi, err := os.Stat(filepath.Join(c.dir, filepath.FromSlash(rel))); err == nil && fi.IsDir() {
			return false, nil
		}
	}
	return true, nil
}

// glob expands a source pattern against the context, skipping ignored paths. Matches are sorted.
func (c *Context) glob(ctx context.Context, pattern string) ([]string, error) {
	if !hasMeta(pattern) {
		if skip, err := c.skipRoot(pattern); err != nil || skip {
			return nil, err
		}
		if _, err := os.Lstat(filepath.Join(c.dir, filepath.FromSlash(pattern))); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, nil
			}
			return nil, err
		}
		return []string{pattern}, nil
	}
	matches, err := fs.Glob(os.DirFS(c.dir), pattern)
	if err != nil {
		return nil, fmt.Errorf("source pattern %q: %w", pattern, err)
	}
	out := matches[:0]
	for _, m := range matches {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if skip, err := c.skipRoot(m); err != nil {
			return nil, err
		} else if !skip {
			out = append(out, m)
		}
	}
	return out, nil
}

func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }
