package build

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// selectFrom expands COPY --from sources inside rootfs, another stage's or an image's
// filesystem. Paths resolve as if rootfs were "/" (securejoin), so a symlink in the source
// can never reach the host; ownership is kept, as BuildKit does for --from.
func selectFrom(ctx context.Context, rootfs, what string, sources []string) (*selection, error) {
	sel := &selection{}
	for _, src := range sources {
		pattern := strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(src)), "/")
		if pattern == "" {
			pattern = "."
		}
		matches, err := globIn(ctx, rootfs, pattern)
		if err != nil {
			return nil, err
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("source %q not found in %s", src, what)
		}
		for _, m := range matches {
			root, err := selectFromRoot(ctx, rootfs, m)
			if err != nil {
				return nil, err
			}
			sel.roots = append(sel.roots, root)
		}
	}
	return sel, nil
}

// globIn matches a slash pattern one element at a time, resolving each directory inside rootfs.
func globIn(ctx context.Context, rootfs, pattern string) ([]string, error) {
	if pattern == "." {
		return []string{"."}, nil
	}
	paths := []string{""}
	for _, el := range strings.Split(pattern, "/") {
		var next []string
		for _, dir := range paths {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			found, err := matchIn(rootfs, dir, el)
			if err != nil {
				return nil, err
			}
			next = append(next, found...)
		}
		paths = next
	}
	sort.Strings(paths)
	return paths, nil
}

// matchIn lists the names in rootfs/dir matching el (a literal or a glob element).
func matchIn(rootfs, dir, el string) ([]string, error) {
	real, err := securejoin.SecureJoin(rootfs, dir)
	if err != nil {
		return nil, err
	}
	if !hasMeta(el) {
		if _, err := os.Lstat(filepath.Join(real, el)); err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				return nil, nil
			}
			return nil, err
		}
		return []string{path.Join(dir, el)}, nil
	}
	des, err := os.ReadDir(real)
	if err != nil {
		return nil, nil // not a directory, or gone: nothing matches below it
	}
	var out []string
	for _, de := range des {
		ok, err := path.Match(el, de.Name())
		if err != nil {
			return nil, fmt.Errorf("source pattern element %q: %w", el, err)
		}
		if ok {
			out = append(out, path.Join(dir, de.Name()))
		}
	}
	return out, nil
}

// selectFromRoot follows the source's own symlinks inside rootfs and lists a directory's contents.
func selectFromRoot(ctx context.Context, rootfs, rel string) (copyRoot, error) {
	real, err := securejoin.SecureJoin(rootfs, rel)
	if err != nil {
		return copyRoot{}, err
	}
	fi, err := os.Lstat(real)
	if err != nil {
		return copyRoot{}, fmt.Errorf("source %q: %w", rel, err)
	}
	root := copyRoot{name: path.Base(rel), path: rel, isDir: fi.IsDir()}
	if rel == "." {
		root.name = "."
	}
	if !fi.IsDir() {
		e, err := ownedEntry("", real, fi)
		if err != nil {
			return copyRoot{}, err
		}
		root.entries = []fileEntry{e}
		return root, nil
	}
	err = filepath.WalkDir(real, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == real {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(real, p)
		e, err := ownedEntry(filepath.ToSlash(r), p, info)
		if errors.Is(err, errSkipEntry) {
			return nil
		}
		if err != nil {
			return err
		}
		root.entries = append(root.entries, e)
		return nil
	})
	return root, err
}

// errSkipEntry marks overlay whiteouts left in a single-layer view: they hide nothing.
var errSkipEntry = errors.New("skip")

// ownedEntry is entryOf plus the file's owner.
func ownedEntry(rel, abs string, fi fs.FileInfo) (fileEntry, error) {
	st, _ := fi.Sys().(*syscall.Stat_t)
	if fi.Mode()&fs.ModeCharDevice != 0 && st != nil && st.Rdev == 0 {
		return fileEntry{}, errSkipEntry
	}
	e, err := entryOf(rel, abs, fi)
	if err != nil {
		return e, err
	}
	if st != nil {
		e.uid, e.gid, e.owned = int(st.Uid), int(st.Gid), true
	}
	return e, nil
}
