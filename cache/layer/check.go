package layer

import (
	"archive/tar"
	"fmt"
	"path"
)

// Checker refuses, entry by entry and without writing anything, what Apply would refuse
// when it unpacks the layer into a snapshot of its own, so a layer can be rejected before it
// is stored. The zero value is ready to use.
type Checker struct {
	files map[string]byte // type flags of the non-directories so far: what a hard link may name
}

// Check validates the next entry of the layer.
func (c *Checker) Check(hdr *tar.Header) error {
	name, err := checkHeader(hdr)
	if err != nil || name == "" {
		return err
	}
	if c.files == nil {
		c.files = map[string]byte{}
	}
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		// A symlink may lead to a directory (Apply follows it inside the root); a file may not.
		if t, ok := c.files[d]; ok && t != tar.TypeSymlink {
			return fmt.Errorf("%s: parent %s is not a directory", hdr.Name, d)
		}
	}
	if hdr.Typeflag == tar.TypeLink {
		target, err := cleanName(hdr.Linkname)
		// A snapshot holds only its own layer: the target must be a file this layer made.
		if _, ok := c.files[target]; err != nil || !ok {
			return fmt.Errorf("%s: hard link to %q, which is not a file earlier in the layer", hdr.Name, hdr.Linkname)
		}
	}
	if hdr.Typeflag == tar.TypeDir {
		delete(c.files, name)
	} else {
		c.files[name] = hdr.Typeflag
	}
	return nil
}
