package sbom

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"
)

// Options say what the document describes; only the scanned files say what is in it.
type Options struct {
	Name        string     // what the document describes, e.g. the image's reference; default "image"
	ImageDigest string     // the image's digest ("sha256:…"): the document namespace derives from it
	Created     *time.Time // SOURCE_DATE_EPOCH; nil: the time of the scan
	Tool        string     // the creator tool, e.g. "kiln-v1.4.0"; default "kiln"
}

// Package is one package found in the image.
type Package struct {
	Type      string   // PURL type: deb, apk, golang, pypi, npm
	Name      string   // as the ecosystem spells it
	Version   string   // as the ecosystem spells it; "" when the package states none
	License   string   // an SPDX license expression; "" when the package states none
	Supplier  string   // SPDX supplier ("Person: …" or "Organization: …"); "" when unstated
	PURL      string   // package URL
	Locations []string // absolute paths in the image of the files that say the package is there
	// Main marks a Go binary's main module, which DEPENDS_ON the other modules read from
	// the same binary (its first Location).
	Main bool
}

// File is a file of the image that a package's presence was read from.
type File struct {
	Path   string // absolute path in the image
	SHA1   string // hex; SPDX 2.3 requires SHA1 for every file
	SHA256 string // hex
}

// Document is an SBOM of one image's file tree, ready to marshal.
type Document struct {
	Name      string
	Namespace string
	Created   time.Time
	Tool      string
	Packages  []Package // sorted by PURL, then location
	Files     []File    // sorted by path
	Notes     []string  // what the scan could not read, and an empty scan's reason; sorted
}

// Scan reads the package databases and binaries of the image tree fsys. fsys must confine
// its paths to the tree (os.Root's FS, an in-memory FS); symlinks are never followed, which
// is harmless because the walk visits every real file once anyway.
func Scan(ctx context.Context, fsys fs.FS, opts Options) (*Document, error) {
	c := newCollector()
	if err := c.walk(ctx, fsys); err != nil {
		return nil, err
	}
	return c.document(opts)
}

// ScanDir scans a materialized root filesystem (a snapshot, an unpacked image) at dir.
func ScanDir(ctx context.Context, dir string, opts Options) (*Document, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("sbom: open %s: %w", dir, err)
	}
	defer root.Close()
	return Scan(ctx, root.FS(), opts)
}

// ScanLayers scans the merged file tree of an image's layers, bottom first, each given as a
// function opening its blob (compressed or not), the way the store hands layers out. Only the
// files the scanners need are kept in memory, so the image is never unpacked.
func ScanLayers(ctx context.Context, layers []func() (io.ReadCloser, error), opts Options) (*Document, error) {
	c := newCollector()
	for i, open := range layers {
		if err := c.applyLayer(ctx, open); err != nil {
			return nil, fmt.Errorf("sbom: layer %d: %w", i, err)
		}
	}
	return c.document(opts)
}

// document turns the collected files into packages.
func (c *collector) document(opts Options) (*Document, error) {
	d := &Document{Name: opts.Name, Tool: opts.Tool}
	if d.Name == "" {
		d.Name = "image"
	}
	if d.Tool == "" {
		d.Tool = "kiln"
	}
	if opts.Created != nil {
		d.Created = opts.Created.UTC().Truncate(time.Second)
	} else {
		d.Created = time.Now().UTC().Truncate(time.Second)
	}
	pkgs, err := c.packages()
	if err != nil {
		return nil, err
	}
	slices.SortFunc(pkgs, comparePackages)
	d.Packages = pkgs
	used := map[string]bool{}
	for _, p := range pkgs {
		for _, l := range p.Locations {
			used[l] = true
		}
	}
	for name, f := range c.files {
		if used["/"+name] {
			d.Files = append(d.Files, File{Path: "/" + name, SHA1: f.sha1, SHA256: f.sha256})
		}
	}
	slices.SortFunc(d.Files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	d.Notes = append(d.Notes, c.notes...)
	if len(pkgs) == 0 {
		d.Notes = append(d.Notes, "no packages found: the image has no dpkg or apk database, no Go binaries with build info, and no Python or npm package metadata")
	}
	slices.Sort(d.Notes)
	d.Namespace = namespace(d.Name, opts.ImageDigest, pkgs)
	return d, nil
}

// namespace is unique per image: by its digest, or, without one, by what was found in it.
func namespace(name, digest string, pkgs []Package) string {
	id := strings.ReplaceAll(digest, ":", "-")
	if id == "" {
		h := sha256.New()
		for _, p := range pkgs {
			fmt.Fprintf(h, "%s\x00%s\x00", p.PURL, strings.Join(p.Locations, "\x00"))
		}
		id = "content-sha256-" + hex.EncodeToString(h.Sum(nil))
	}
	return "https://github.com/kiln-build/kiln/spdx/" + idSafe(name) + "/" + id
}

func comparePackages(a, b Package) int {
	if c := strings.Compare(a.PURL, b.PURL); c != 0 {
		return c
	}
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	if c := strings.Compare(a.Version, b.Version); c != 0 {
		return c
	}
	return slices.Compare(a.Locations, b.Locations)
}
