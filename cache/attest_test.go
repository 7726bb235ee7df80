package cache

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func attachTest(t *testing.T, s *Store, image v1.Descriptor, preds ...string) v1.Descriptor {
	t.Helper()
	image.Platform = &v1.Platform{OS: "linux", Architecture: "amd64"}
	var atts []Attestation
	for _, p := range preds {
		atts = append(atts, Attestation{PredicateType: p, Predicate: json.RawMessage(`{"of":"` + p + `"}`)})
	}
	idx, err := s.Attach(context.Background(), image, []string{"pkg:docker/app@1"}, atts)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// TestAttachLayout pins BuildKit's storage: the index holds the image with its platform and
// an attestation manifest (unknown/unknown, reference annotations, in-toto layers annotated
// with their predicate type, an empty config and the image as subject).
func TestAttachLayout(t *testing.T) {
	s := openStore(t)
	_, image := storeRandomImage(t, s, 1)
	idxDesc := attachTest(t, s, image, "https://slsa.dev/provenance/v1", "https://spdx.dev/Document")
	idx, err := s.Index(idxDesc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	// The index as a whole names a platform the random image's config lacks: validate the
	// attestation manifest, which go-containerregistry must read as an image.
	attImg, err := idx.Image(im.Manifests[1].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(attImg, validate.Fast); err != nil {
		t.Fatalf("attestation manifest is invalid: %v", err)
	}
	if len(im.Manifests) != 2 || im.Manifests[0].Digest != image.Digest || im.Manifests[0].Platform.OS != "linux" {
		t.Fatalf("index manifests %+v", im.Manifests)
	}
	att := im.Manifests[1]
	if att.Platform.OS != "unknown" || att.Platform.Architecture != "unknown" ||
		att.Annotations[AnnotationReferenceType] != "attestation-manifest" || att.Annotations[AnnotationReferenceDigest] != image.Digest.String() {
		t.Errorf("attestation descriptor %+v", att)
	}
	raw, err := s.readBlob(att.Digest)
	if err != nil {
		t.Fatal(err)
	}
	var m attestationManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m.ArtifactType != AttestationArtifactType || m.Config.MediaType != "application/vnd.oci.empty.v1+json" || m.Config.Size != 2 ||
		m.Subject == nil || m.Subject.Digest != image.Digest || len(m.Layers) != 2 ||
		m.Layers[1].MediaType != InTotoMediaType || m.Layers[1].Annotations[AnnotationPredicateType] != "https://spdx.dev/Document" {
		t.Errorf("attestation manifest %s", raw)
	}
	sts, err := s.Attestations(idxDesc)
	if err != nil || len(sts) != 2 {
		t.Fatalf("Attestations = %v, %v", sts, err)
	}
	if sts[0].Type != InTotoStatementV1 || sts[0].Subject[0].Name != "pkg:docker/app@1" || sts[0].Subject[0].Digest["sha256"] != image.Digest.Hex ||
		string(sts[1].Predicate) != `{"of":"https://spdx.dev/Document"}` {
		t.Errorf("statements %+v", sts)
	}
	if plain, err := s.Attestations(image); err != nil || plain != nil {
		t.Errorf("a plain image has attestations %v, %v", plain, err)
	}
}

// TestAttestedImageReadsAsImage: everything that opens an image (run, save, history, FROM)
// gets the image of an attested index, with the build's image ID; a real multi-platform
// index still asks for a platform.
func TestAttestedImageReadsAsImage(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	_, image := storeRandomImage(t, s, 2)
	idx := attachTest(t, s, image, "https://slsa.dev/provenance/v1")
	if err := s.Tag(ctx, mustName(t, "app:1"), idx); err != nil {
		t.Fatal(err)
	}
	img, err := s.Image(idx.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := img.Digest(); d != image.Digest {
		t.Errorf("attested index opens as %s, want %s", d, image.Digest)
	}
	cfg, _ := img.ConfigName()
	desc, _, err := s.Lookup(cfg.Hex[:12])
	if err != nil || desc.Digest != idx.Digest {
		t.Errorf("lookup by the image ID: %v %v, want the index", desc.Digest, err)
	}
	if id, err := s.ImageID(idx); err != nil || id != cfg {
		t.Errorf("ImageID = %s %v, want the config digest %s", id, err, cfg)
	}
	if d, err := s.Descriptor(idx.Digest); err != nil || d.MediaType != types.OCIImageIndex || d.Size != idx.Size {
		t.Errorf("Descriptor = %+v %v", d, err)
	}

	_, other := storeRandomImage(t, s, 1)
	multi, err := s.writeJSON(ctx, v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{image, other}}, types.OCIImageIndex)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Image(multi.Digest); err == nil || !strings.Contains(err.Error(), "pick a platform") {
		t.Errorf("a two-image index opened as one image: %v", err)
	}
}

// TestGCKeepsAttestations: GC keeps every blob of a tagged attested image.
func TestGCKeepsAttestations(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	_, image := storeRandomImage(t, s, 1)
	idx := attachTest(t, s, image, "https://slsa.dev/provenance/v1")
	if err := s.Tag(ctx, mustName(t, "app:1"), idx); err != nil {
		t.Fatal(err)
	}
	x := reopenExclusive(t, s)
	if st, err := x.GC(ctx, GCOptions{All: true}); err != nil || st.Blobs != 0 {
		t.Fatalf("GC of a store holding only a tagged attested image = %+v, %v", st, err)
	}
	if sts, err := x.Attestations(idx); err != nil || len(sts) != 1 {
		t.Fatalf("attestations after GC: %v, %v", sts, err)
	}
}

// TestReattach moves the statements to another manifest of the image, rewriting subjects.
func TestReattach(t *testing.T) {
	s := openStore(t)
	_, image := storeRandomImage(t, s, 1)
	_, other := storeRandomImage(t, s, 1)
	idx := attachTest(t, s, image, "https://slsa.dev/provenance/v1")
	moved, err := s.Reattach(context.Background(), idx, other)
	if err != nil {
		t.Fatal(err)
	}
	sts, err := s.Attestations(moved)
	if err != nil || len(sts) != 1 || sts[0].Subject[0].Digest["sha256"] != other.Digest.Hex || sts[0].Subject[0].Name != "pkg:docker/app@1" {
		t.Fatalf("reattached statements %+v, %v", sts, err)
	}
	if img, err := s.Image(moved.Digest); err != nil {
		t.Fatal(err)
	} else if d, _ := img.Digest(); d != other.Digest {
		t.Errorf("reattached index opens as %s, want %s", d, other.Digest)
	}
}

func TestAttachNeedsPlatform(t *testing.T) {
	s := openStore(t)
	_, image := storeRandomImage(t, s, 1)
	if _, err := s.Attach(context.Background(), image, nil, nil); err == nil || !strings.Contains(err.Error(), "platform") {
		t.Errorf("Attach without a platform: %v", err)
	}
}
