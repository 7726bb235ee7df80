package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"

	"github.com/moby/patternmatcher"
	"golang.org/x/sync/errgroup"
)

// fileEntry is one file, dir or symlink selected for a COPY.
type fileEntry struct {
	rel    string // slash path below the copy root; "" is the root itself
	abs    string
	mode   fs.FileMode
	size   int64
	mtime  time.Time
	link   string // symlink target
	digest string // content digest of regular files; "" when not hashed (COPY --from)
	uid    int    // owner, kept when owned (COPY --from without --chown)
	gid    int
	owned  bool
	info   fs.FileInfo // from the walk, so hashing does not stat every file again
}

// copyRoot is one matched source: a file (copied as itself) or a directory (its contents).
type copyRoot struct {
	name     string // base name of the source, the file name inside a destination directory
	path     string // the matched source path (relative to the context or source root), for --parents and --exclude
	isDir    bool
	entries  []fileEntry
	noUnpack bool // an ADD URL download: copied as a file even when it is an archive
}

// selection is everything one COPY takes from the context, and its content digest.
type selection struct {
	roots  []copyRoot
	digest string
	files  int
}

// hashWorkers bounds parallel file reads while hashing: enough to overlap I/O on small files.
const hashWorkers = 8

// Select expands COPY sources against the context and hashes the selected files.
func (c *Context) Select(ctx context.Context, sources []string) (*selection, error) {
	sel := &selection{}
	for _, src := range sources {
		pattern, err := cleanSource(src)
		if err != nil {
			return nil, err
		}
		matches, err := c.glob(ctx, pattern)
		if err != nil {
			return nil, err
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("source %q not found in build context", src)
		}
		for _, m := range matches {
			root, err := c.selectRoot(ctx, m)
			if err != nil {
				return nil, err
			}
			sel.roots = append(sel.roots, root)
		}
	}
	if err := c.hashAll(ctx, sel); err != nil {
		return nil, err
	}
	return sel, nil
}

// selectRoot follows a top-level symlink (as docker does) and lists a directory's contents.
func (c *Context) selectRoot(ctx context.Context, rel string) (copyRoot, error) {
	real, err := c.resolveInContext(rel)
	if err != nil {
		return copyRoot{}, err
	}
	abs := filepath.Join(c.dir, filepath.FromSlash(real))
	fi, err := os.Stat(abs)
	if err != nil {
		return copyRoot{}, fmt.Errorf("source %q: %w", rel, err)
	}
	root := copyRoot{name: path.Base(rel), path: rel, isDir: fi.IsDir()}
	if !fi.IsDir() {
		e, err := entryOf("", abs, fi)
		if err != nil {
			return copyRoot{}, err
		}
		root.entries = []fileEntry{e}
		return root, nil
	}
	err = c.walk(ctx, real, abs, "", &root.entries)
	return root, err
}

// walk lists dir's contents in sorted order, skipping ignored paths.
func (c *Context) walk(ctx context.Context, ctxRel, abs, rel string, out *[]fileEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	des, err := os.ReadDir(abs)
	if err != nil {
		return fmt.Errorf("read %s: %w", abs, err)
	}
	for _, de := range des {
		childCtx := path.Join(ctxRel, de.Name())
		ig, err := c.ignored(childCtx)
		if err != nil {
			return err
		}
		// An ignored dir is still walked when "!" patterns may re-include something inside it.
		if ig && !(de.IsDir() && c.pm.Exclusions()) {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		childAbs, childRel := filepath.Join(abs, de.Name()), path.Join(rel, de.Name())
		if !ig {
			e, err := entryOf(childRel, childAbs, fi)
			if err != nil {
				return err
			}
			*out = append(*out, e)
		}
		if de.IsDir() {
			if err := c.walk(ctx, childCtx, childAbs, childRel, out); err != nil {
				return err
			}
		}
	}
	return nil
}

func entryOf(rel, abs string, fi fs.FileInfo) (fileEntry, error) {
	e := fileEntry{rel: rel, abs: abs, mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime(), info: fi}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(abs)
		if err != nil {
			return e, err
		}
		e.link, e.size = target, 0
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() && fi.Mode()&fs.ModeSymlink == 0 {
		return e, fmt.Errorf("%s: cannot copy special file (%s)", abs, fi.Mode().Type())
	}
	return e, nil
}

// hashAll fills the digests of regular files in parallel, then the selection's digest.
func (c *Context) hashAll(ctx context.Context, sel *selection) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(hashWorkers)
	for ri := range sel.roots {
		for ei := range sel.roots[ri].entries {
			e := &sel.roots[ri].entries[ei]
			if !e.mode.IsRegular() {
				continue
			}
			sel.files++
			g.Go(func() error {
				if err := gctx.Err(); err != nil {
					return err
				}
				fi := e.info
				if fi == nil {
					var err error
					if fi, err = os.Lstat(e.abs); err != nil {
						return err
					}
				}
				rel, _ := filepath.Rel(c.dir, e.abs)
				d, err := c.stats.digest(filepath.ToSlash(rel), e.abs, fi)
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

// sum is the selection's content digest: names, types, permissions, link targets and file
// contents, never mtimes or the context's ownership (COPY sets ownership itself).
func (sel *selection) sum() string {
	h := sha256.New()
	for _, r := range sel.roots {
		fmt.Fprintf(h, "root\x00%s\x00%t\x00", r.name, r.isDir)
		for _, e := range r.entries {
			fmt.Fprintf(h, "%s\x00%o\x00%s\x00%s\x00", e.rel, uint32(e.mode), e.link, e.digest)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// names lists the selected paths (root name joined with entry path), sorted.
func (sel *selection) names() []string {
	var out []string
	for _, r := range sel.roots {
		for _, e := range r.entries {
			out = append(out, path.Join(r.name, e.rel))
		}
	}
	sort.Strings(out)
	return out
}

// exclude drops the entries (and whole sources) matching COPY --exclude patterns, which
// match paths relative to the context or source root like .dockerignore lines.
func (sel *selection) exclude(patterns []string) error {
	if len(patterns) == 0 {
		return nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return fmt.Errorf("--exclude: %w", err)
	}
	roots := sel.roots[:0]
	for _, r := range sel.roots {
		if skip, err := pm.MatchesOrParentMatches(r.path); err != nil {
			return err
		} else if skip {
			continue
		}
		entries := r.entries[:0]
		for _, e := range r.entries {
			skip, err := pm.MatchesOrParentMatches(path.Join(r.path, e.rel))
			if err != nil {
				return err
			}
			if !skip {
				entries = append(entries, e)
			}
		}
		r.entries = entries
		roots = append(roots, r)
	}
	sel.roots = roots
	return nil
}
