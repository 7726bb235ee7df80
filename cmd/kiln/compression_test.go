package main

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/internal/testregistry"
)

// TestBuildZstdPushKeepsZstd: kiln build --compression zstd --push pushes zstd layers, kiln
// push of that image keeps them unless --compression asks otherwise, and --output
// type=oci writes them as stored.
func TestBuildZstdPushKeepsZstd(t *testing.T) {
	addr := testregistry.Start(t)
	root, ctxDir, out := t.TempDir(), t.TempDir(), t.TempDir()
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM scratch\nCOPY a /a\n", "a": "a"})
	ref := addr + "/team/z:1"
	ok(t, root, "build", "-q", "--compression", "zstd", "--push", "-t", ref, "--output", "type=oci,dest="+filepath.Join(out, "oci.tar"), ctxDir)
	ok(t, root, "push", ref, addr+"/team/z:again")
	ok(t, root, "push", "--compression", "gzip", ref, addr+"/team/z:gzip")
	for tag, want := range map[string]string{"1": "zstd", "again": "zstd", "gzip": "gzip"} {
		r, err := name.ParseReference(addr+"/team/z:"+tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		img, err := remote.Image(r)
		if err != nil {
			t.Fatalf("%s: %v", tag, err)
		}
		if got := layerTypes(t, img); !strings.HasSuffix(got, want) {
			t.Errorf("z:%s pushed %s layers, want %s", tag, got, want)
		}
	}
	blobs := map[string][]byte{}
	f, err := os.Open(filepath.Join(out, "oci.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		blobs[hdr.Name], _ = io.ReadAll(tr)
	}
	var index v1.IndexManifest
	var m v1.Manifest
	if err := json.Unmarshal(blobs["index.json"], &index); err != nil || len(index.Manifests) == 0 {
		t.Fatalf("oci output index.json: %v %s", err, blobs["index.json"])
	}
	top := index.Manifests[0]
	if top.MediaType.IsIndex() { // the image with its provenance (--push and --output default to mode=min)
		var attested v1.IndexManifest
		if err := json.Unmarshal(blobs["blobs/sha256/"+top.Digest.Hex], &attested); err != nil || len(attested.Manifests) != 2 {
			t.Fatalf("oci output index %s: %v", top.Digest, err)
		}
		top = attested.Manifests[0]
	}
	if err := json.Unmarshal(blobs["blobs/sha256/"+top.Digest.Hex], &m); err != nil || len(m.Layers) == 0 {
		t.Fatalf("oci output manifest: %v", err)
	}
	if got := m.Layers[0].MediaType; !strings.HasSuffix(string(got), "zstd") {
		t.Errorf("--output type=oci wrote %s layers, want zstd", got)
	}
}

func layerTypes(t *testing.T, img v1.Image) string {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, l := range m.Layers {
		types = append(types, string(l.MediaType))
	}
	return strings.Join(types, ",")
}
