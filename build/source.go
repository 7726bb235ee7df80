package build

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// sourceOp provides a base image's layers (FROM, COPY --from=image).
type sourceOp struct {
	ref    string
	digest string // the image's manifest digest: its key
	image  v1.Image
}

func (src *sourceOp) cacheKey(context.Context, []string) opKey {
	return opKey{kind: SourceOp, inputs: []KeyInput{{Name: "image", Value: src.digest}}, uncached: true}
}

// exec lists the base image's layers as a chain; nothing is read until an op needs them.
func (src *sourceOp) exec(context.Context, *env, inputs) (*vresult, error) {
	ls, err := src.image.Layers()
	if err != nil {
		return nil, fmt.Errorf("layers of %s: %w", src.ref, err)
	}
	res := &vresult{}
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			return nil, fmt.Errorf("layer of %s: %w", src.ref, err)
		}
		diffID, err := l.DiffID()
		if err != nil {
			return nil, fmt.Errorf("layer %s of %s: %w", d, src.ref, err)
		}
		size, err := l.Size()
		if err != nil {
			return nil, fmt.Errorf("layer %s of %s: %w", d, src.ref, err)
		}
		mt, err := l.MediaType()
		if err != nil {
			return nil, fmt.Errorf("layer %s of %s: %w", d, src.ref, err)
		}
		res.layers = append(res.layers, layerRef{desc: v1.Descriptor{MediaType: ociLayerType(mt), Digest: d, Size: size},
			diffID: diffID, open: l.Compressed})
	}
	return res, nil
}

// ociLayerType maps docker layer media types to their OCI equivalents (same bytes), so that
// kiln's OCI manifests never mix the two families.
func ociLayerType(mt types.MediaType) types.MediaType {
	switch mt {
	case types.DockerLayer:
		return types.OCILayer
	case types.DockerUncompressedLayer:
		return types.OCIUncompressedLayer
	case types.DockerForeignLayer:
		return types.OCIRestrictedLayer
	}
	return mt
}
