package corpus

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"strings"
)

// Format is how a case is packed: the two archive kinds `kiln load` reads.
type Format string

// The archive formats.
const (
	DockerArchive Format = "docker"
	OCIArchive    Format = "oci"
)

// file is one member of an image archive.
type file struct {
	name string
	data []byte
}

// blobPath is where both archive kinds keep a blob (docker save writes the OCI layout since 25.0).
func blobPath(digest string) string {
	return "blobs/sha256/" + strings.TrimPrefix(digest, "sha256:")
}

// archive packs the image as f, tagged ref.
func (img *Image) archive(f Format, ref string) ([]byte, error) {
	var files []file
	seen := map[string]bool{}
	blob := func(b Blob) {
		p := blobPath(b.Digest)
		if !seen[p] { // a layer listed twice is stored once, as docker and skopeo do
			seen[p] = true
			files = append(files, file{p, b.Data})
		}
	}
	blob(img.Config)
	for _, l := range img.Layers {
		blob(l)
	}
	switch f {
	case DockerArchive:
		entry := struct {
			Config   string
			RepoTags []string
			Layers   []string
		}{Config: blobPath(img.Config.Digest), RepoTags: []string{ref}, Layers: []string{}}
		for _, l := range img.Layers {
			entry.Layers = append(entry.Layers, blobPath(l.Digest))
		}
		raw, err := json.Marshal([]any{entry})
		if err != nil {
			return nil, err
		}
		files = append(files, file{"manifest.json", raw})
	case OCIArchive:
		m := Blob{MediaType: mediaManifest, Digest: digestOf(img.Manifest), Size: int64(len(img.Manifest)), Data: img.Manifest}
		blob(m)
		d := m.descriptor()
		d.Annotations = map[string]string{"org.opencontainers.image.ref.name": ref}
		raw, err := json.Marshal(struct {
			SchemaVersion int          `json:"schemaVersion"`
			MediaType     string       `json:"mediaType"`
			Manifests     []descriptor `json:"manifests"`
		}{2, "application/vnd.oci.image.index.v1+json", []descriptor{d}})
		if err != nil {
			return nil, err
		}
		files = append(files, file{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)}, file{"index.json", raw})
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: epoch, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Members returns an archive's regular files by name, as stored (nothing is verified), so
// tests can serve or lay out a case's pieces without kiln's own readers.
func Members(archive []byte) (map[string][]byte, error) {
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if out[hdr.Name], err = io.ReadAll(tr); err != nil {
			return nil, err
		}
	}
}
