package registry

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The fixtures under testdata/cosign were made once by cosign v2.6.5 (see README.md there):
// a key pair from `cosign generate-key-pair` and its signature of fixtureImage.
const (
	fixturePassword = "kiln-fixture"
	fixtureDigest   = "sha256:acc9bb993dc6ca4ce1c1204ea426469a8da0a5cb203ee15321ea5c14323ee7cc"
)

// fixtureImage is the image cosign signed for the fixtures: built the same way every
// time, so its digest is the one in cosign's payload.
func fixtureImage(t testing.TB) v1.Image {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	body := []byte("signed by cosign, verified by kiln\n")
	if err := tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: int64(len(body)), Format: tar.FormatPAX}); err != nil {
		t.Fatal(err)
	}
	tw.Write(body)
	tw.Close()
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{Layer: static.NewLayer(b.Bytes(), types.OCIUncompressedLayer)})
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{OS: "linux", Architecture: "amd64", RootFS: v1.RootFS{Type: "layers", DiffIDs: mustDiffIDs(t, img)}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func mustDiffIDs(t testing.TB, img v1.Image) []v1.Hash {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf.RootFS.DiffIDs
}

// pushFixtureSignature puts a manifest cosign wrote, with its blobs, into repo: at tag
// when given, else by digest (a referrer, which updates the referrers index).
func pushFixtureSignature(t *testing.T, repo name.Repository, manifest, tag string, blobs map[string]types.MediaType) {
	t.Helper()
	for file, mt := range blobs {
		if err := remote.WriteLayer(repo, static.NewLayer(readFixture(t, file), mt)); err != nil {
			t.Fatal(err)
		}
	}
	raw := readFixture(t, manifest)
	var r name.Reference = repo.Tag(tag)
	if tag == "" {
		h, _, err := v1.SHA256(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		r = repo.Digest(h.String())
	}
	if err := remote.Put(r, rawManifest{raw: raw, mediaType: types.OCIManifestSchema1}); err != nil {
		t.Fatal(err)
	}
}

func readFixture(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "cosign", file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVerifyCosignSignature: kiln verifies what cosign signed, in both of cosign's forms.
func TestVerifyCosignSignature(t *testing.T) {
	pub, err := ParsePublicKey(readFixture(t, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	for _, referrersAPI := range []bool{false, true} {
		srv := httptest.NewServer(ggcr.New(ggcr.Logger(nilLogger()), ggcr.WithReferrersSupport(referrersAPI)))
		t.Cleanup(srv.Close)
		repo, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://") + "/fixture/app")
		if err != nil {
			t.Fatal(err)
		}
		img := fixtureImage(t)
		if err := remote.Write(repo.Tag("v1"), img); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		if d.String() != fixtureDigest {
			t.Fatalf("fixture image is %s, cosign signed %s: fixtureImage changed", d, fixtureDigest)
		}
		pushFixtureSignature(t, repo, "sig-manifest.json", "sha256-"+d.Hex+".sig",
			map[string]types.MediaType{"sig-config.json": types.OCIConfigJSON, "payload.json": SimpleSigningMediaType})
		pushFixtureSignature(t, repo, "referrer-manifest.json", "",
			map[string]types.MediaType{"sig-config.json": SignatureArtifactType, "payload.json": SimpleSigningMediaType})

		v, err := Verify(context.Background(), repo.Tag("v1").String(), VerifyOptions{Key: pub, Annotations: map[string]string{"from": "cosign"}}, WithConfig(nil))
		if err != nil {
			t.Fatalf("referrers API %v: %v", referrersAPI, err)
		}
		var sources []string
		for _, s := range v.Signatures {
			sources = append(sources, s.Source)
		}
		if len(v.Signatures) != 2 || !strings.HasSuffix(sources[0], ".sig") || !strings.HasPrefix(sources[1], "referrer ") {
			t.Errorf("referrers API %v: verified %v, want the tag's and the referrer's signature", referrersAPI, sources)
		}
		_, other := testKey(t)
		if _, err := Verify(context.Background(), repo.Tag("v1").String(), VerifyOptions{Key: other}, WithConfig(nil)); !errors.Is(err, ErrNoSignature) {
			t.Errorf("cosign's signature verified with another key: %v", err)
		}
	}
}

// TestReadCosignKey: kiln signs with the private key cosign generate-key-pair wrote.
func TestReadCosignKey(t *testing.T) {
	priv, err := ParsePrivateKey(readFixture(t, "cosign.key"), []byte(fixturePassword))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublicKey(readFixture(t, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(&priv.PublicKey) {
		t.Error("cosign.key and cosign.pub do not match")
	}
	if _, err := ParsePrivateKey(readFixture(t, "cosign.key"), []byte("not it")); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("wrong password: %v", err)
	}
	srv := httptest.NewServer(ggcr.New(ggcr.Logger(nilLogger())))
	t.Cleanup(srv.Close)
	ref := strings.TrimPrefix(srv.URL, "http://") + "/fixture/app:v1"
	pushRandom(t, ref)
	if _, err := Sign(context.Background(), ref, SignOptions{Key: priv}, WithConfig(nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(context.Background(), ref, VerifyOptions{Key: pub}, WithConfig(nil)); err != nil {
		t.Fatal(err)
	}
}
