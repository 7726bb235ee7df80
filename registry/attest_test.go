package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/testregistry"
)

const testPredicate = "https://slsa.dev/provenance/v1"

// storeAttested stores busybox with one provenance attestation, as a build does, under tag.
func storeAttested(t *testing.T, s *cache.Store, tag string) (image, index v1.Descriptor) {
	t.Helper()
	image = storeBusybox(t, s, tag)
	image.Platform = &v1.Platform{OS: "linux", Architecture: "amd64"}
	index, err := s.Attach(context.Background(), image, []string{"pkg:docker/busybox@latest?platform=linux%2Famd64"},
		[]cache.Attestation{{PredicateType: testPredicate, Predicate: json.RawMessage(`{"buildDefinition":{"buildType":"x"}}`)}})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := cache.ParseName(tag)
	if err := s.Tag(context.Background(), n, index); err != nil {
		t.Fatal(err)
	}
	return image, index
}

// remoteAttestation reads an attested image back through go-containerregistry as
// `docker buildx imagetools inspect` does: the index, the attestation manifest its annotations
// point at the image with, and the in-toto statement layer.
func remoteAttestation(t *testing.T, ref string) (image v1.Descriptor, att v1.Descriptor, st cache.Statement) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx, validate.Fast); err != nil {
		t.Fatalf("the pushed index is invalid: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 {
		t.Fatalf("pushed index has %d manifests, want the image and its attestations", len(im.Manifests))
	}
	image, att = im.Manifests[0], im.Manifests[1]
	if image.Platform == nil || image.Platform.OS != "linux" || att.Platform == nil || att.Platform.OS != "unknown" || att.Platform.Architecture != "unknown" {
		t.Errorf("platforms %+v and %+v, want linux and unknown/unknown", image.Platform, att.Platform)
	}
	if att.Annotations[cache.AnnotationReferenceType] != "attestation-manifest" || att.Annotations[cache.AnnotationReferenceDigest] != image.Digest.String() {
		t.Errorf("attestation descriptor annotations %v, want it to point at %s", att.Annotations, image.Digest)
	}
	ai, err := idx.Image(att.Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ai.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != cache.InTotoMediaType || m.Layers[0].Annotations[cache.AnnotationPredicateType] != testPredicate {
		t.Fatalf("attestation layers %+v", m.Layers)
	}
	if m.Subject == nil || m.Subject.Digest != image.Digest {
		t.Errorf("attestation manifest subject %v, want the image %s", m.Subject, image.Digest)
	}
	l, err := ai.LayerByDigest(m.Layers[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	if st.PredicateType != testPredicate || len(st.Subject) != 1 || st.Subject[0].Digest["sha256"] != image.Digest.Hex {
		t.Errorf("statement %+v is not about the pushed image %s", st, image.Digest)
	}
	return image, att, st
}

// TestPushAttestationsToDockerRegistry: an attested image pushed to Debian's docker-registry
// (distribution 2.8, no referrers API) reads back as BuildKit's layout, its attestation
// manifest is listed as a referrer through the fallback tag, and a pull gets the image.
func TestPushAttestationsToDockerRegistry(t *testing.T) {
	host := testregistry.Start(t)
	s := openStore(t)
	image, index := storeAttested(t, s, "busybox")
	ref := host + "/kiln/attested:v1"
	pushed, err := Push(context.Background(), s, "busybox", ref)
	if err != nil {
		t.Fatal(err)
	}
	if pushed.Digest != index.Digest {
		t.Errorf("pushed %s, want the stored index %s", pushed.Digest, index.Digest)
	}
	got, att, _ := remoteAttestation(t, ref)
	if got.Digest != image.Digest {
		t.Errorf("the pushed index names image %s, want %s", got.Digest, image.Digest)
	}

	sub, err := name.NewDigest(host+"/kiln/attested@"+image.Digest.String(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	refs, err := remote.Referrers(sub)
	if err != nil {
		t.Fatal(err)
	}
	rm, err := refs.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(rm.Manifests) != 1 || rm.Manifests[0].Digest != att.Digest || rm.Manifests[0].ArtifactType != cache.AttestationArtifactType {
		t.Errorf("referrers of the image: %+v, want the attestation manifest %s", rm.Manifests, att.Digest)
	}
	fallback, err := name.NewTag(host+"/kiln/attested:sha256-"+image.Digest.Hex, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(fallback); err != nil {
		t.Errorf("no referrers fallback tag on a registry without the referrers API: %v", err)
	}

	dst := openStore(t)
	desc, err := Pull(context.Background(), dst, ref)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != image.Digest {
		t.Errorf("pull got %s, want the platform image %s (never the attestation manifest)", desc.Digest, image.Digest)
	}
}

// TestPushAttestationsReencoded: a push that re-encodes the layers (zstd here) moves the
// attestations onto the manifest the registry gets, subjects and all.
func TestPushAttestationsReencoded(t *testing.T) {
	host := testregistry.Start(t)
	s := openStore(t)
	image, index := storeAttested(t, s, "busybox")
	ref := host + "/kiln/zstd:v1"
	pushed, err := Push(context.Background(), s, "busybox", ref, WithCompression(Zstd))
	if err != nil {
		t.Fatal(err)
	}
	if pushed.Digest == index.Digest {
		t.Fatal("a zstd push of a gzip image pushed the stored index unchanged")
	}
	got, _, st := remoteAttestation(t, ref)
	if got.Digest == image.Digest {
		t.Errorf("the pushed index names the gzip manifest %s", image.Digest)
	}
	if st.Subject[0].Name != "pkg:docker/busybox@latest?platform=linux%2Famd64" {
		t.Errorf("subject name %q was not kept", st.Subject[0].Name)
	}
	r, _ := name.ParseReference(host+"/kiln/zstd@"+got.Digest.String(), name.Insecure)
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if mt := m.Layers[0].MediaType; mt != "application/vnd.oci.image.layer.v1.tar+zstd" {
		t.Errorf("pushed layer is %s, want zstd", mt)
	}
}

// TestSaveLoadAttested: an oci-archive keeps the index and the attestations, a docker-archive
// the image; a loaded attested image is that image to readers.
func TestSaveLoadAttested(t *testing.T) {
	src := openStore(t)
	image, index := storeAttested(t, src, "busybox")
	want, err := src.Attestations(index)
	if err != nil || len(want) != 1 {
		t.Fatalf("stored attestations %v %v", want, err)
	}
	for _, format := range []ArchiveFormat{OCIArchive, DockerArchive} {
		t.Run(format.String(), func(t *testing.T) {
			var buf bytes.Buffer
			if err := Save(context.Background(), src, []string{"busybox"}, format, &buf); err != nil {
				t.Fatal(err)
			}
			dst := openStore(t)
			if _, err := Load(context.Background(), dst, bytes.NewReader(buf.Bytes())); err != nil {
				t.Fatal(err)
			}
			desc, img := loadedImage(t, dst, "busybox")
			orig, err := src.Image(image.Digest)
			if err != nil {
				t.Fatal(err)
			}
			if configName(t, img) != configName(t, orig) {
				t.Errorf("loaded image %s, want %s", configName(t, img), configName(t, orig))
			}
			got, err := dst.Attestations(desc)
			if err != nil {
				t.Fatal(err)
			}
			if format == DockerArchive {
				if len(got) != 0 {
					t.Errorf("a docker-archive carried attestations: %v", got)
				}
				return
			}
			if desc.Digest != index.Digest || len(got) != 1 || string(got[0].Predicate) != string(want[0].Predicate) {
				t.Errorf("oci-archive round trip: %s with %v, want %s with the stored attestation", desc.Digest, got, index.Digest)
			}
		})
	}
}
