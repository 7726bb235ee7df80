package sbom

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"maps"
	"path"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/kiln-build/kiln/cache/layer"
	"github.com/kiln-build/kiln/internal/rootfile"
)

// kind is what a file of the image is to the scanners.
type kind int

const (
	kindNone kind = iota
	kindDpkgStatus
	kindDpkgStatusD // distroless: one status paragraph per file
	kindDebCopyright
	kindDocLink // /usr/share/doc/PKG as a symlink to another package's directory
	kindApk
	kindOSRelease
	kindPython
	kindNpm
	kindExec // may be a Go binary
)

// Size caps per kind: a package database can be large, a package's own metadata is small, and
// a Go binary is read whole (its build info can sit anywhere in it).
const (
	maxDatabase = 64 << 20
	maxMetadata = rootfile.DefaultLimit
	maxBinary   = 256 << 20
)

func (k kind) limit() int64 {
	switch k {
	case kindDpkgStatus, kindApk:
		return maxDatabase
	case kindExec:
		return maxBinary
	}
	return maxMetadata
}

// classify says which scanner wants the file name (clean, relative, slash-separated).
func classify(name string, mode fs.FileMode) kind {
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	switch {
	case name == "var/lib/dpkg/status":
		return kindDpkgStatus
	case dir == "var/lib/dpkg/status.d" && !strings.HasSuffix(base, ".md5sums"):
		return kindDpkgStatusD
	case base == "copyright" && path.Dir(dir) == "usr/share/doc":
		return kindDebCopyright
	case dir == "usr/share/doc" && mode&fs.ModeSymlink != 0:
		return kindDocLink
	case name == "lib/apk/db/installed", name == "usr/lib/apk/db/installed":
		return kindApk
	case name == "etc/os-release", name == "usr/lib/os-release":
		return kindOSRelease
	case base == "METADATA" && strings.HasSuffix(dir, ".dist-info"),
		base == "PKG-INFO" && strings.HasSuffix(dir, ".egg-info"),
		strings.HasSuffix(base, ".egg-info") && mode.IsRegular():
		return kindPython
	case base == "package.json" && inNodeModules(dir):
		return kindNpm
	case mode.IsRegular() && mode&0o111 != 0:
		return kindExec
	}
	return kindNone
}

// inNodeModules reports whether dir is a package directory: node_modules/NAME or
// node_modules/@SCOPE/NAME.
func inNodeModules(dir string) bool {
	parent, _ := path.Split(dir)
	parent = strings.TrimSuffix(parent, "/")
	if path.Base(parent) == "node_modules" {
		return true
	}
	return strings.HasPrefix(path.Base(parent), "@") && path.Base(path.Dir(parent)) == "node_modules"
}

// found is a file a scanner wants, read and hashed.
type found struct {
	kind         kind
	data         []byte           // the content, but for binaries
	build        *debug.BuildInfo // a Go binary's build info
	link         string           // a kindDocLink's target package
	sha1, sha256 string
}

// collector gathers the wanted files of an image tree, by clean relative path.
type collector struct {
	files map[string]*found
	notes []string
}

func newCollector() *collector { return &collector{files: map[string]*found{}} }

// walk collects from a file tree without following symlinks.
func (c *collector) walk(ctx context.Context, fsys fs.FS) error {
	return fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("sbom: walk %s: %w", name, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			if classify(name, d.Type()) == kindDocLink {
				target, err := fs.ReadLink(fsys, name)
				switch {
				case errors.Is(err, fs.ErrInvalid): // an fs.FS that cannot read links: no alias
				case err != nil:
					return fmt.Errorf("sbom: read link /%s: %w", name, err)
				default:
					c.addDocLink(name, target)
				}
			}
			return nil
		}
		mode := d.Type()
		if mode.IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return fmt.Errorf("sbom: stat /%s: %w", name, err)
			}
			mode = fi.Mode()
		}
		k := classify(name, mode)
		if k == kindNone {
			return nil
		}
		if !mode.IsRegular() {
			return c.notRegular(name, mode)
		}
		f, err := fsys.Open(name)
		if err != nil {
			return fmt.Errorf("sbom: open /%s: %w", name, err)
		}
		defer f.Close()
		fi, err := f.Stat() // the opened file itself, not the walk's earlier look
		if err != nil {
			return fmt.Errorf("sbom: stat /%s: %w", name, err)
		}
		if !fi.Mode().IsRegular() {
			return c.notRegular(name, fi.Mode())
		}
		return c.add(name, k, f, fi.Size())
	})
}

// addDocLink records /usr/share/doc/PKG -> OTHER, which Debian uses for packages built from one
// source (libfoo-dev -> libfoo1): PKG's copyright is OTHER's. Only a sibling counts: the link
// is read as a name, never followed.
func (c *collector) addDocLink(name, target string) {
	if !path.IsAbs(target) {
		target = path.Join("/usr/share/doc", target)
	}
	if dir, pkg := path.Split(path.Clean(target)); dir == "/usr/share/doc/" && pkg != "" {
		c.files[name] = &found{kind: kindDocLink, link: pkg}
	}
}

// notRegular fails for a database path that is a device or FIFO: the image is broken or
// hostile. An executable cannot be one, so only databases get here.
func (c *collector) notRegular(name string, mode fs.FileMode) error {
	return &rootfile.NotRegularError{Path: "/" + name, Mode: mode.Type().String()}
}

// add reads one wanted file of size bytes from r.
func (c *collector) add(name string, k kind, r io.Reader, size int64) error {
	if size > k.limit() {
		if k == kindExec {
			c.notes = append(c.notes, fmt.Sprintf("/%s not read for Go build info: %d bytes, more than %d", name, size, int64(maxBinary)))
			return nil
		}
		return &rootfile.TooLargeError{Path: "/" + name, Size: size, Limit: k.limit()}
	}
	if k == kindExec {
		return c.addBinary(name, r, size)
	}
	data, err := io.ReadAll(io.LimitReader(r, k.limit()+1))
	if err != nil {
		return fmt.Errorf("sbom: read /%s: %w", name, err)
	}
	if int64(len(data)) > k.limit() { // it grew after the stat
		return &rootfile.TooLargeError{Path: "/" + name, Size: int64(len(data)), Limit: k.limit()}
	}
	f := &found{kind: k, data: data}
	f.sha1, f.sha256, _ = hashes(bytes.NewReader(data)) // memory: no read error
	c.files[name] = f
	return nil
}

// addBinary reads an executable's Go build info, in place when r can be read at offsets (a
// file of a directory) and from memory when it streams (a layer's tar); only a Go binary is
// read whole, for its checksums.
func (c *collector) addBinary(name string, r io.Reader, size int64) error {
	ra, ok := r.(io.ReaderAt)
	if !ok {
		// Most executables are not Go's: the magic number spares reading the rest of those.
		var magic [4]byte
		n, err := io.ReadFull(r, magic[:])
		if err != nil || !isExecutable(magic[:n]) {
			return nil
		}
		data, err := io.ReadAll(io.LimitReader(io.MultiReader(bytes.NewReader(magic[:n]), r), maxBinary+1))
		if err != nil {
			return fmt.Errorf("sbom: read /%s: %w", name, err)
		}
		ra, size = bytes.NewReader(data), min(int64(len(data)), maxBinary)
	} else {
		var magic [4]byte
		if n, _ := ra.ReadAt(magic[:], 0); !isExecutable(magic[:n]) {
			return nil
		}
	}
	bi, err := buildinfo.Read(io.NewSectionReader(ra, 0, size))
	if err != nil {
		return nil // not a Go binary, or one built without module info
	}
	f := &found{kind: kindExec, build: bi}
	if f.sha1, f.sha256, err = hashes(io.NewSectionReader(ra, 0, size)); err != nil {
		return fmt.Errorf("sbom: read /%s: %w", name, err)
	}
	c.files[name] = f
	return nil
}

// hashes are r's SHA-1 (which SPDX 2.3 requires of a file) and SHA-256, in hex.
func hashes(r io.Reader) (string, string, error) {
	h1, h256 := sha1.New(), sha256.New()
	_, err := io.Copy(io.MultiWriter(h1, h256), r)
	return hexSum(h1), hexSum(h256), err
}

func isExecutable(magic []byte) bool {
	return bytes.HasPrefix(magic, []byte("\x7fELF")) || bytes.HasPrefix(magic, []byte("MZ")) ||
		bytes.Equal(magic, []byte{0xcf, 0xfa, 0xed, 0xfe}) || bytes.Equal(magic, []byte{0xce, 0xfa, 0xed, 0xfe})
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// applyLayer adds one layer's wanted files to the tree the layers below made: its whiteouts
// remove what lower layers had, then its files replace theirs.
func (c *collector) applyLayer(ctx context.Context, open func() (io.ReadCloser, error)) error {
	r, err := layer.OpenUncompressed(open)
	if err != nil {
		return err
	}
	defer r.Close()
	top := &collector{files: map[string]*found{}}
	var whiteouts, opaques []string
	err = layer.EachEntry(ctx, r, func(hdr *tar.Header, content io.Reader) error {
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		dir, base := path.Split(name)
		switch {
		case name == "":
			return nil
		case base == ".wh..wh..opq":
			opaques = append(opaques, strings.TrimSuffix(dir, "/"))
			return nil
		case strings.HasPrefix(base, ".wh."):
			whiteouts = append(whiteouts, path.Join(dir, strings.TrimPrefix(base, ".wh.")))
			return nil
		}
		// A path the layer rewrites is no longer what the layers below had there.
		delete(c.files, name)
		delete(top.files, name)
		switch hdr.Typeflag {
		case tar.TypeSymlink:
			if classify(name, fs.ModeSymlink) == kindDocLink {
				top.addDocLink(name, hdr.Linkname)
			}
			return nil
		case tar.TypeLink:
			// The same content, but what it is depends on the link's own path.
			target := strings.TrimPrefix(path.Clean("/"+hdr.Linkname), "/")
			f, ok := top.files[target]
			if !ok {
				f, ok = c.files[target]
			}
			k := classify(name, hdr.FileInfo().Mode()|0o444)
			if ok && k != kindNone && k != kindDocLink && (k == kindExec) == (f.kind == kindExec) {
				same := *f
				same.kind = k
				top.files[name] = &same
			}
			return nil
		case tar.TypeReg:
		default:
			if k := classify(name, hdr.FileInfo().Mode()); k != kindNone && hdr.Typeflag != tar.TypeSymlink && hdr.Typeflag != tar.TypeDir {
				return c.notRegular(name, hdr.FileInfo().Mode())
			}
			return nil
		}
		k := classify(name, hdr.FileInfo().Mode())
		if k == kindNone {
			return nil
		}
		return top.add(name, k, content, hdr.Size)
	})
	if err != nil {
		return err
	}
	for _, dir := range opaques {
		c.removeUnder(dir, false)
	}
	for _, p := range whiteouts {
		c.removeUnder(p, true)
	}
	for name, f := range top.files {
		c.files[name] = f
	}
	c.notes = append(c.notes, top.notes...)
	return nil
}

// removeUnder drops what lies below p, and p itself when self.
func (c *collector) removeUnder(p string, self bool) {
	prefix := p + "/"
	if p == "" {
		prefix = ""
	}
	for name := range c.files {
		if strings.HasPrefix(name, prefix) || (self && name == p) {
			delete(c.files, name)
		}
	}
}

// packages runs the ecosystems' parsers over the collected files.
func (c *collector) packages() ([]Package, error) {
	distro := parseOSRelease(c.osRelease())
	var pkgs []Package
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(c.files)) {
		f := c.files[name]
		loc := "/" + name
		var got []Package
		var err error
		switch f.kind {
		case kindDpkgStatus, kindDpkgStatusD:
			got, err = dpkgPackages(f.data, f.kind == kindDpkgStatusD, distro)
			for i := range got {
				got[i].Locations = []string{loc}
				c.debLicense(&got[i])
			}
		case kindApk:
			got, err = apkPackages(f.data, distro)
			for i := range got {
				got[i].Locations = []string{loc}
			}
		case kindPython:
			var p *Package
			if p, err = pythonPackage(f.data); p != nil {
				p.Locations = []string{loc}
				got = []Package{*p}
			}
		case kindNpm:
			var p *Package
			if p, err = npmPackage(f.data); p != nil {
				p.Locations = []string{loc}
				got = []Package{*p}
			}
		case kindExec:
			got = goPackages(f.build)
			for i := range got {
				got[i].Locations = []string{loc}
			}
		}
		switch {
		case err != nil && (f.kind == kindDpkgStatus || f.kind == kindApk):
			// The whole image's inventory: a broken one is a broken image.
			errs = append(errs, fmt.Errorf("sbom: %s: %w", loc, err))
		case err != nil:
			// One package's own metadata: skipping it must not cost the rest.
			c.notes = append(c.notes, fmt.Sprintf("%s skipped: %v", loc, err))
		}
		pkgs = append(pkgs, got...)
	}
	return pkgs, errors.Join(errs...)
}

// osRelease is the image's os-release, /etc's copy first as systemd reads it.
func (c *collector) osRelease() []byte {
	for _, name := range []string{"etc/os-release", "usr/lib/os-release"} {
		if f, ok := c.files[name]; ok {
			return f.data
		}
	}
	return nil
}

// debLicense fills a Debian package's license from its machine-readable copyright file.
func (c *collector) debLicense(p *Package) {
	doc := p.Name
	if l, ok := c.files["usr/share/doc/"+doc]; ok && l.kind == kindDocLink {
		doc = l.link
	}
	name := "usr/share/doc/" + doc + "/copyright"
	f, ok := c.files[name]
	if !ok {
		return
	}
	if lic := debCopyrightLicense(f.data); lic != "" {
		p.License = lic
		p.Locations = append(p.Locations, "/"+name)
	}
}
