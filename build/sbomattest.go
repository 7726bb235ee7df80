package build

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kiln-build/kiln/build/sbom"
	"github.com/kiln-build/kiln/cache"
)

// SBOM is the Attestor of `kiln build --sbom`: an SPDX 2.3 document of the packages in the
// built image's files, attached as BuildKit attaches its SBOM (predicate https://spdx.dev/Document),
// so buildx's `.SBOM` readers find it. An image with no package database gets a document
// that says so, not a failure.
type SBOM struct {
	Name    string     // what the document describes, e.g. the first -t name
	Epoch   *time.Time // SOURCE_DATE_EPOCH: the document's creation time, so it stays reproducible
	Version string     // kiln's version, for the creator tool
}

// Attest scans img's layers as stored (a lazily imported layer comes down to be read).
func (a SBOM) Attest(ctx context.Context, s *cache.Store, img *Image) (cache.Attestation, error) {
	if err := s.FetchImage(ctx, img.Manifest.Digest); err != nil {
		return cache.Attestation{}, fmt.Errorf("sbom: %w", err)
	}
	im, err := s.Image(img.Manifest.Digest)
	if err != nil {
		return cache.Attestation{}, fmt.Errorf("sbom: %w", err)
	}
	tool := "kiln"
	if a.Version != "" {
		tool = "kiln-" + strings.TrimPrefix(a.Version, "kiln-")
	}
	doc, err := sbom.ScanImage(ctx, im, sbom.Options{Name: a.Name, ImageDigest: img.Manifest.Digest.String(), Created: a.Epoch, Tool: tool})
	if err != nil {
		return cache.Attestation{}, err
	}
	data, err := doc.MarshalSPDX()
	if err != nil {
		return cache.Attestation{}, fmt.Errorf("sbom: %w", err)
	}
	return cache.Attestation{PredicateType: sbom.PredicateType, Predicate: data}, nil
}
