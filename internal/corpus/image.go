package corpus

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Entry is one tar entry of a layer. Zeros, when set, is the size of a body of zero bytes,
// streamed so a big file costs no memory.
type Entry struct {
	Name     string
	Type     byte // tar.TypeReg when zero
	Body     string
	Zeros    int64
	Link     string
	Mode     int64
	UID, GID int
	Major    int64
	Minor    int64
	Format   tar.Format // PAX when zero
}

// Layer is one layer: its entries, gzipped unless Plain.
type Layer struct {
	Entries []Entry
	Plain   bool
}

// Blob is a piece of content as an archive or a registry holds it: Data is stored under
// Digest, which a hostile image may let disagree with Data.
type Blob struct {
	MediaType string
	Digest    string
	Size      int64
	Data      []byte
}

// Image is a case's image as raw pieces, before they are put in an archive or a registry.
type Image struct {
	Config   Blob
	Layers   []Blob
	Manifest []byte // OCI image manifest naming Config and Layers
}

const (
	mediaManifest  = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig    = "application/vnd.oci.image.config.v1+json"
	mediaLayer     = "application/vnd.oci.image.layer.v1.tar"
	mediaLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// epoch is every entry's mtime, so the archives are byte-for-byte reproducible.
var epoch = time.Unix(1700000000, 0).UTC()

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// writeTar writes the entries as an uncompressed tar to w.
func writeTar(w io.Writer, entries []Entry) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		typ := e.Type
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.Mode
		if mode == 0 {
			mode = map[byte]int64{tar.TypeDir: 0o755, tar.TypeSymlink: 0o777}[typ]
			if mode == 0 {
				mode = 0o644
			}
		}
		format := e.Format
		if format == tar.FormatUnknown {
			format = tar.FormatPAX
		}
		hdr := &tar.Header{Typeflag: typ, Name: e.Name, Linkname: e.Link, Mode: mode, Uid: e.UID, Gid: e.GID,
			Devmajor: e.Major, Devminor: e.Minor, ModTime: epoch, Format: format}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.Body)) + e.Zeros
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("entry %q: %w", e.Name, err)
		}
		if typ != tar.TypeReg {
			continue
		}
		if _, err := io.WriteString(tw, e.Body); err != nil {
			return err
		}
		if _, err := io.CopyN(tw, zeroReader{}, e.Zeros); err != nil {
			return err
		}
	}
	return tw.Close()
}

// layerTar returns the entries as an uncompressed tar.
func layerTar(entries []Entry) ([]byte, error) {
	var buf bytes.Buffer
	err := writeTar(&buf, entries)
	return buf.Bytes(), err
}

// gzipTar returns the entries as a gzipped tar and the tar's digest (the diff ID), streaming
// so a bomb's inflated size is never held in memory.
func gzipTar(entries []Entry) ([]byte, string, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, "", err
	}
	h := sha256.New()
	if err := writeTar(io.MultiWriter(h, zw), entries); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// buildImage assembles layers into a consistent image; a case's Tamper then breaks it.
func buildImage(layers []Layer) (*Image, []string, error) {
	img := &Image{}
	var diffIDs []string
	for i, l := range layers {
		b := Blob{MediaType: mediaLayerGzip}
		var diffID string
		var err error
		if l.Plain {
			b.MediaType = mediaLayer
			b.Data, err = layerTar(l.Entries)
			diffID = digestOf(b.Data)
		} else {
			b.Data, diffID, err = gzipTar(l.Entries)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("layer %d: %w", i, err)
		}
		diffIDs = append(diffIDs, diffID)
		b.Digest, b.Size = digestOf(b.Data), int64(len(b.Data))
		img.Layers = append(img.Layers, b)
	}
	return img, diffIDs, nil
}

// RunConfig is the part of an image config a case may make hostile.
type RunConfig struct {
	Env        []string            `json:"Env"`
	Cmd        []string            `json:"Cmd"`
	User       string              `json:"User,omitempty"`
	WorkingDir string              `json:"WorkingDir,omitempty"`
	Volumes    map[string]struct{} `json:"Volumes,omitempty"`
}

// config is the image config: the fields a runnable image needs, nothing more.
type config struct {
	Architecture string    `json:"architecture"`
	OS           string    `json:"os"`
	Config       RunConfig `json:"config"`
	RootFS       struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

// setConfig writes the config with these diff IDs, changed by edit when it is set.
func (img *Image) setConfig(diffIDs []string, edit func(*RunConfig)) error {
	var c config
	c.Architecture, c.OS = "amd64", "linux"
	c.Config.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	c.Config.Cmd = []string{"/bin/sh"}
	if edit != nil {
		edit(&c.Config)
	}
	c.RootFS.Type, c.RootFS.DiffIDs = "layers", diffIDs
	raw, err := json.Marshal(c)
	if err != nil {
		return err
	}
	img.Config = Blob{MediaType: mediaConfig, Digest: digestOf(raw), Size: int64(len(raw)), Data: raw}
	return nil
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func (b Blob) descriptor() descriptor {
	return descriptor{MediaType: b.MediaType, Digest: b.Digest, Size: b.Size}
}

// setManifest writes the OCI manifest from the (possibly tampered) descriptors.
func (img *Image) setManifest() error {
	m := struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Config        descriptor   `json:"config"`
		Layers        []descriptor `json:"layers"`
	}{SchemaVersion: 2, MediaType: mediaManifest, Config: img.Config.descriptor(), Layers: []descriptor{}}
	for _, l := range img.Layers {
		m.Layers = append(m.Layers, l.descriptor())
	}
	raw, err := json.Marshal(m)
	img.Manifest = raw
	return err
}
