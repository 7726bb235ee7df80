package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Names BuildKit stores attestations under (docs/attestations/attestation-storage.md), so
// that docker, buildx imagetools and cosign read kiln's as theirs.
const (
	InTotoMediaType           types.MediaType = "application/vnd.in-toto+json"
	InTotoStatementV1                         = "https://in-toto.io/Statement/v1"
	AttestationArtifactType                   = "application/vnd.docker.attestation.manifest.v1+json"
	AnnotationReferenceType                   = "vnd.docker.reference.type"
	AnnotationReferenceDigest                 = "vnd.docker.reference.digest"
	AnnotationPredicateType                   = "in-toto.io/predicate-type"
	ReferenceTypeAttestation                  = "attestation-manifest"
	emptyJSONMediaType        types.MediaType = "application/vnd.oci.empty.v1+json"
)

// maxStatementSize bounds an attestation blob read back, as BuildKit bounds what it writes.
const maxStatementSize = 80 << 20

// Attestation is one predicate about an image (SLSA provenance, an SPDX SBOM, …); Attach
// wraps each in an in-toto statement whose subject is the image.
type Attestation struct {
	PredicateType string          // e.g. https://slsa.dev/provenance/v1
	Predicate     json.RawMessage // the predicate document
}

// Statement is an in-toto statement v1, the form an attestation is stored and pushed in.
type Statement struct {
	Type          string          `json:"_type"`
	Subject       []Subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// Subject names what a statement is about, by digest.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// attestationManifest is BuildKit's OCI-artifact attestation manifest: its subject makes it an
// OCI 1.1 referrer of the image as well.
type attestationManifest struct {
	SchemaVersion int64           `json:"schemaVersion"`
	MediaType     types.MediaType `json:"mediaType"`
	ArtifactType  string          `json:"artifactType"`
	Config        v1.Descriptor   `json:"config"`
	Layers        []v1.Descriptor `json:"layers"`
	Subject       *v1.Descriptor  `json:"subject,omitempty"`
}

// Attach stores atts as in-toto statements about the image manifest image (whose Platform
// must be set), named by subjects (package URLs; "_" when empty), in an attestation
// manifest, and an index holding both. It returns the index, untagged.
func (s *Store) Attach(ctx context.Context, image v1.Descriptor, subjects []string, atts []Attestation) (v1.Descriptor, error) {
	if image.Platform == nil || !image.MediaType.IsImage() {
		return v1.Descriptor{}, fmt.Errorf("attach attestations to %s: need an image manifest with its platform", image.Digest)
	}
	if len(subjects) == 0 {
		subjects = []string{"_"}
	}
	var layers []v1.Descriptor
	for _, a := range atts {
		st := Statement{Type: InTotoStatementV1, PredicateType: a.PredicateType, Predicate: a.Predicate}
		for _, n := range subjects {
			st.Subject = append(st.Subject, Subject{Name: n, Digest: map[string]string{image.Digest.Algorithm: image.Digest.Hex}})
		}
		desc, err := s.writeJSON(ctx, st, InTotoMediaType)
		if err != nil {
			return v1.Descriptor{}, fmt.Errorf("store %s attestation: %w", a.PredicateType, err)
		}
		desc.Annotations = map[string]string{AnnotationPredicateType: a.PredicateType}
		layers = append(layers, desc)
	}
	cfg, err := s.writeRaw(ctx, []byte("{}"), emptyJSONMediaType)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("store attestation config: %w", err)
	}
	cfg.Data = []byte("{}")
	m := attestationManifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: AttestationArtifactType,
		Config: cfg, Layers: layers, Subject: &v1.Descriptor{MediaType: image.MediaType, Digest: image.Digest, Size: image.Size}}
	am, err := s.writeJSON(ctx, m, types.OCIManifestSchema1)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("store attestation manifest: %w", err)
	}
	am.Platform = &v1.Platform{OS: "unknown", Architecture: "unknown"}
	am.Annotations = map[string]string{AnnotationReferenceType: ReferenceTypeAttestation, AnnotationReferenceDigest: image.Digest.String()}
	child := v1.Descriptor{MediaType: image.MediaType, Digest: image.Digest, Size: image.Size, Platform: image.Platform}
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{child, am}}
	desc, err := s.writeJSON(ctx, idx, types.OCIImageIndex)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("store attested index: %w", err)
	}
	return desc, nil
}

// Reattach attaches the attestations of the stored index idx to another manifest of the same
// image (e.g. re-encoded for a push), rewriting their subjects, and returns the new index.
// The manifest must be in the store.
func (s *Store) Reattach(ctx context.Context, idx, image v1.Descriptor) (v1.Descriptor, error) {
	child, sts, err := s.attestations(idx)
	if err != nil {
		return v1.Descriptor{}, err
	}
	if image.Platform == nil {
		image.Platform = child.Platform
	}
	var names []string
	atts := make([]Attestation, len(sts))
	for i, st := range sts {
		atts[i] = Attestation{PredicateType: st.PredicateType, Predicate: st.Predicate}
		if i == 0 {
			for _, sub := range st.Subject {
				names = append(names, sub.Name)
			}
		}
	}
	return s.Attach(ctx, image, names, atts)
}

// Attestations returns the in-toto statements attached to the stored manifest or index desc,
// in index order; none for a plain image.
func (s *Store) Attestations(desc v1.Descriptor) ([]Statement, error) {
	_, sts, err := s.attestations(desc)
	return sts, err
}

// attestations also returns the image the statements are about.
func (s *Store) attestations(desc v1.Descriptor) (v1.Descriptor, []Statement, error) {
	if !desc.MediaType.IsIndex() {
		return desc, nil, nil
	}
	raw, err := s.readBlob(desc.Digest)
	if err != nil {
		return v1.Descriptor{}, nil, fmt.Errorf("index %s: %w", desc.Digest, err)
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return v1.Descriptor{}, nil, fmt.Errorf("index %s: %w", desc.Digest, err)
	}
	image, _ := AttestedImage(im)
	var out []Statement
	for _, c := range im.Manifests {
		if !isAttestationManifest(c) {
			continue
		}
		sts, err := s.readStatements(c.Digest)
		if err != nil {
			return v1.Descriptor{}, nil, fmt.Errorf("attestations of %s: %w", c.Annotations[AnnotationReferenceDigest], err)
		}
		out = append(out, sts...)
	}
	return image, out, nil
}

func (s *Store) readStatements(manifest v1.Hash) ([]Statement, error) {
	raw, err := s.readBlob(manifest)
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", manifest, err)
	}
	var out []Statement
	for _, l := range m.Layers {
		if l.MediaType != InTotoMediaType {
			continue // unknown attestation kinds are to be ignored, says the format
		}
		size, err := s.BlobSize(l.Digest)
		if err != nil {
			return nil, err
		}
		if size > maxStatementSize {
			return nil, fmt.Errorf("statement %s has %d bytes, more than the %d kiln reads", l.Digest, size, maxStatementSize)
		}
		b, err := s.readBlob(l.Digest)
		if err != nil {
			return nil, err
		}
		var st Statement
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, fmt.Errorf("statement %s: %w", l.Digest, err)
		}
		out = append(out, st)
	}
	return out, nil
}

// isAttestationManifest follows BuildKit's rule: the reference type annotation says so.
func isAttestationManifest(d v1.Descriptor) bool {
	return d.Annotations[AnnotationReferenceType] == ReferenceTypeAttestation
}

// AttestedImage is the one runnable image of an index whose other children are all
// attestation manifests, as a single-platform build with provenance or an SBOM stores it.
func AttestedImage(im *v1.IndexManifest) (v1.Descriptor, bool) {
	var image *v1.Descriptor
	attested := false
	for i, c := range im.Manifests {
		switch {
		case isAttestationManifest(c):
			attested = true
		case c.MediaType.IsImage() && image == nil:
			image = &im.Manifests[i]
		default:
			return v1.Descriptor{}, false
		}
	}
	if image == nil || !attested {
		return v1.Descriptor{}, false
	}
	return *image, true
}

// writeJSON stores v's JSON encoding as a blob of media type mt.
func (s *Store) writeJSON(ctx context.Context, v any, mt types.MediaType) (v1.Descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return s.writeRaw(ctx, b, mt)
}

func (s *Store) writeRaw(ctx context.Context, b []byte, mt types.MediaType) (v1.Descriptor, error) {
	d, n, err := s.WriteBlob(ctx, bytes.NewReader(b), v1.Hash{})
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Digest: d, Size: n}, nil
}

// errNoImage reports an index kiln cannot treat as one image.
var errNoImage = errors.New("is an index (multi-platform image); pick a platform from it")

// Descriptor describes the stored manifest or index h: its media type and size.
func (s *Store) Descriptor(h v1.Hash) (v1.Descriptor, error) {
	raw, err := s.readBlob(h)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("manifest %s: %w", h, err)
	}
	return v1.Descriptor{MediaType: sniffMediaType(raw), Digest: h, Size: int64(len(raw))}, nil
}
