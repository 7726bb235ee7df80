package registry

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/testimage"
)

func openStore(t testing.TB) *cache.Store {
	t.Helper()
	s, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// storeBusybox puts the in-process busybox image into s under tag.
func storeBusybox(t *testing.T, s *cache.Store, tag string) v1.Descriptor {
	t.Helper()
	desc, err := s.WriteImage(context.Background(), testimage.Busybox(t))
	if err != nil {
		t.Fatal(err)
	}
	n, err := cache.ParseName(tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(context.Background(), n, desc); err != nil {
		t.Fatal(err)
	}
	return desc
}

// loadedImage checks that tag resolves to a valid image and returns it.
func loadedImage(t *testing.T, s *cache.Store, tag string) (v1.Descriptor, v1.Image) {
	t.Helper()
	desc, _, err := s.Lookup(tag)
	if err != nil {
		t.Fatalf("lookup %s after load: %v", tag, err)
	}
	img, err := s.Image(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("loaded image is invalid: %v", err)
	}
	return desc, img
}

func configName(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestSaveLoadRoundTrip(t *testing.T) {
	src := openStore(t)
	desc := storeBusybox(t, src, "busybox")
	_, orig := loadedImage(t, src, "busybox")
	n, _ := cache.ParseName("example.com/team/bb:v1")
	if err := src.Tag(context.Background(), n, desc); err != nil {
		t.Fatal(err)
	}
	for _, format := range []ArchiveFormat{DockerArchive, OCIArchive} {
		t.Run(format.String(), func(t *testing.T) {
			var buf bytes.Buffer
			if err := Save(context.Background(), src, []string{"busybox", "example.com/team/bb:v1"}, format, &buf); err != nil {
				t.Fatal(err)
			}
			dst := openStore(t)
			loaded, err := Load(context.Background(), dst, bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if len(loaded) != 2 {
				t.Fatalf("loaded %+v, want 2 tags", loaded)
			}
			got, img := loadedImage(t, dst, "example.com/team/bb:v1")
			if configName(t, img) != configName(t, orig) {
				t.Errorf("image ID changed: %s → %s", configName(t, orig), configName(t, img))
			}
			if format == OCIArchive && got.Digest != desc.Digest {
				t.Errorf("oci-archive round trip changed the manifest digest: %s → %s", desc.Digest, got.Digest)
			}
			loadedImage(t, dst, "busybox:latest")
		})
	}
}

func TestDockerArchiveLayout(t *testing.T) {
	s := openStore(t)
	storeBusybox(t, s, "busybox")
	var buf bytes.Buffer
	if err := Save(context.Background(), s, []string{"busybox"}, DockerArchive, &buf); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[hdr.Name] = b
	}
	var manifest []struct {
		Config           string
		RepoTags, Layers []string
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(manifest) != 1 || len(manifest[0].RepoTags) != 1 || manifest[0].RepoTags[0] != "busybox:latest" {
		t.Errorf("manifest.json = %+v, want RepoTags [busybox:latest] as docker writes them", manifest)
	}
	if _, ok := files["repositories"]; !ok {
		t.Error("docker-archive lacks the repositories file")
	}
	for _, l := range manifest[0].Layers {
		dir := filepath.Dir(l)
		for _, f := range []string{l, dir + "/json", dir + "/VERSION"} {
			if _, ok := files[f]; !ok {
				t.Errorf("missing %s", f)
			}
		}
	}
}

func TestLoadSkopeoDockerArchive(t *testing.T) {
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("needs skopeo (make test installs it)")
	}
	src := openStore(t)
	storeBusybox(t, src, "busybox")
	out := filepath.Join(t.TempDir(), "bb.tar")
	cmd := exec.Command("skopeo", "copy", "oci:"+src.Root()+":docker.io/library/busybox:latest", "docker-archive:"+out+":busybox:skopeo")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dst := openStore(t)
	loaded, err := Load(context.Background(), dst, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 1 || loaded[0].Name.Short() != "busybox:skopeo" {
		t.Fatalf("loaded %+v", loaded)
	}
	loadedImage(t, dst, "busybox:skopeo")
}

func TestLoadBadArchivesLeaveNoImage(t *testing.T) {
	src := openStore(t)
	storeBusybox(t, src, "busybox")
	var good bytes.Buffer
	if err := Save(context.Background(), src, []string{"busybox"}, OCIArchive, &good); err != nil {
		t.Fatal(err)
	}
	var docker bytes.Buffer
	if err := Save(context.Background(), src, []string{"busybox"}, DockerArchive, &docker); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"not a tar":           []byte(strings.Repeat("garbage ", 100)),
		"empty":               nil,
		"truncated oci":       good.Bytes()[:good.Len()/2],
		"truncated docker":    docker.Bytes()[:docker.Len()/2],
		"corrupt oci blob":    flipLastBlobByte(t, good.Bytes()),
		"plain tar, no index": makeTar(t, map[string]string{"hello.txt": "hi"}),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			dst := openStore(t)
			if _, err := Load(context.Background(), dst, bytes.NewReader(data)); err == nil {
				t.Fatal("Load accepted a bad archive")
			}
			if tags, err := dst.List(); err != nil || len(tags) != 0 {
				t.Errorf("bad archive left tags %v (%v)", tags, err)
			}
		})
	}
}

// flipLastBlobByte corrupts one byte inside the largest blob of an uncompressed archive.
func flipLastBlobByte(t *testing.T, archive []byte) []byte {
	t.Helper()
	out := append([]byte(nil), archive...)
	tr := tar.NewReader(bytes.NewReader(archive))
	var off int64
	var best int64
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(hdr.Name, "blobs/") && hdr.Size > best {
			best = hdr.Size
			b, _ := io.ReadAll(tr)
			off = int64(bytes.Index(archive, b))
		}
	}
	out[off+best/2] ^= 0xff
	return out
}

func makeTar(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for n, c := range files {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func FuzzLoad(f *testing.F) {
	f.Add(makeTar(f, map[string]string{"manifest.json": `[{"Config":"c.json","RepoTags":["a:b"],"Layers":["l.tar"]}]`, "c.json": "{}", "l.tar": ""}))
	f.Add(makeTar(f, map[string]string{"oci-layout": `{"imageLayoutVersion":"1.0.0"}`, "index.json": `{"schemaVersion":2,"manifests":[]}`}))
	f.Add(makeTar(f, map[string]string{"oci-layout": `{"imageLayoutVersion":"1.0.0"}`, "index.json": `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2}]}`}))
	s, err := cache.Open(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	f.Fuzz(func(t *testing.T, data []byte) {
		before, err := s.List()
		if err != nil {
			t.Fatal(err)
		}
		loaded, err := Load(context.Background(), s, bytes.NewReader(data))
		if err != nil {
			after, lerr := s.List()
			if lerr != nil || len(after) != len(before) {
				t.Fatalf("a failed load changed the tags: %d → %d (%v)", len(before), len(after), lerr)
			}
			return
		}
		for _, l := range loaded {
			if _, err := s.Image(l.Desc.Digest); err != nil && !l.Desc.MediaType.IsIndex() {
				t.Fatalf("Load reported %s but the store cannot read it: %v", l.Desc.Digest, err)
			}
		}
	})
}
