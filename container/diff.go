package container

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ChangeKind is docker's kind of filesystem change; its values are docker's JSON ones.
type ChangeKind int

// Docker's change kinds.
const (
	Modified ChangeKind = iota
	Added
	Deleted
)

func (k ChangeKind) String() string { return [...]string{"C", "A", "D"}[k] }

// Change is one line of `kiln diff`.
type Change struct {
	Kind ChangeKind
	Path string // absolute in the container, "/etc/passwd"
}

// Diff lists what the container changed in its image's filesystem, from its overlay upper dir:
// an overlay whiteout is D, a path the image has is C, any other A; parents come before children.
func (c *Container) Diff() ([]Change, error) {
	var lowers []*os.Root
	defer func() {
		for _, r := range lowers {
			r.Close()
		}
	}()
	for _, l := range c.Spec.Lower {
		r, err := os.OpenRoot(l)
		if err != nil {
			return nil, fmt.Errorf("diff %s: image layer: %w", c.Name, err)
		}
		lowers = append(lowers, r)
	}
	inImage := func(rel string) bool {
		for _, r := range lowers {
			// os.Root stays inside the layer: a symlinked parent never reaches the host.
			if _, err := r.Lstat(rel); err == nil {
				return true
			}
		}
		return false
	}
	var out []Change
	err := filepath.WalkDir(c.Spec.Upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(c.Spec.Upper, p)
		if rel == "." {
			return nil
		}
		ch := Change{Kind: Added, Path: "/" + filepath.ToSlash(rel)}
		if d.Type()&fs.ModeCharDevice != 0 {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Rdev == 0 {
				ch.Kind = Deleted
			}
		}
		if ch.Kind == Added && inImage(rel) {
			ch.Kind = Modified
		}
		out = append(out, ch)
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("diff %s: the container has no filesystem changes dir: %w", c.Name, err)
	}
	return out, err
}
