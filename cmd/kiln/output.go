package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-build/kiln/build"
	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/registry"
)

// output is a parsed --output flag.
type output struct {
	typ  string // image, local, tar, oci or docker
	dest string // directory (local) or file; "-" is standard output for archives
}

// parseOutput reads docker's --output syntax: type=local,dest=DIR, type=tar|oci|docker,dest=FILE,
// type=image, or a bare path meaning type=local.
func parseOutput(v string) (output, error) {
	if v == "" {
		return output{typ: "image"}, nil
	}
	if !strings.Contains(v, "=") {
		return output{typ: "local", dest: v}, nil
	}
	var o output
	for _, kv := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(kv, "=")
		switch k {
		case "type":
			o.typ = val
		case "dest":
			o.dest = val
		case "name":
			// type=image,name=... is accepted as a synonym for -t by BuildKit; kiln wants -t.
			return o, fmt.Errorf("--output name=: use -t %s", val)
		default:
			return o, fmt.Errorf("--output %q: unknown key %q", v, k)
		}
	}
	switch o.typ {
	case "image":
		return o, nil
	case "local", "tar", "oci", "docker":
		if o.dest == "" {
			return o, fmt.Errorf("--output type=%s needs dest=", o.typ)
		}
		return o, nil
	case "":
		return o, fmt.Errorf("--output %q: missing type=", v)
	}
	return o, fmt.Errorf("--output type=%s is unknown: use image, local, tar, oci or docker", o.typ)
}

// write exports the built image as the output asks; type=image needs nothing more.
func (o output) write(ctx context.Context, s *cache.Store, img *build.Image, tags []cache.Name) error {
	m := img.Manifest.Digest
	switch o.typ {
	case "local":
		return registry.ExportDir(ctx, s, m, o.dest)
	case "tar":
		return writeDest(o.dest, func(f *os.File) error { return registry.ExportTar(ctx, s, m, f) })
	case "oci", "docker":
		format := registry.OCIArchive
		if o.typ == "docker" {
			format = registry.DockerArchive
		}
		if img.Index != nil && format == registry.OCIArchive {
			m = img.Index.Digest // with its attestations, as BuildKit's oci exporter
		}
		return writeDest(o.dest, func(f *os.File) error { return registry.SaveImage(ctx, s, m, tags, format, f) })
	}
	return nil
}

// writeDest writes a file through fill: to stdout for "-", else to a temp file renamed into
// place, so a failed export never leaves a half-written archive under the final name.
func writeDest(dest string, fill func(*os.File) error) error {
	if dest == "-" {
		return fill(os.Stdout)
	}
	f, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+"-*")
	if err != nil {
		return fmt.Errorf("output %s: %w", dest, err)
	}
	defer os.Remove(f.Name())
	if err := fill(f); err != nil {
		f.Close()
		return fmt.Errorf("output %s: %w", dest, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), dest)
}

// buildMetadata is --metadata-file, with the keys docker buildx writes.
type buildMetadata struct {
	Digest       string `json:"containerimage.digest"`
	ConfigDigest string `json:"containerimage.config.digest"`
	Names        string `json:"image.name,omitempty"`
}

func writeMetadata(path string, img *build.Image, tags []cache.Name) error {
	var names []string
	for _, t := range tags {
		names = append(names, t.String())
	}
	md := buildMetadata{Digest: img.Manifest.Digest.String(), ConfigDigest: img.ID.String(), Names: strings.Join(names, ",")}
	if img.Index != nil { // as buildx: the digest the tags name, the index with the attestations
		md.Digest = img.Index.Digest.String()
	}
	data, err := json.MarshalIndent(md, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(data, '\n'), atomicfile.Options{Perm: 0o600})
}
