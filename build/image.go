package build

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Image is the result of a build: the manifest written to the store and the image ID.
type Image struct {
	Manifest v1.Descriptor
	ID       v1.Hash // the config digest, docker's image ID
	Config   *v1.ConfigFile
	Keys     []string // cache keys of every step solved for it (all stages), for --cache-to
	// FinalKeys are the keys of the steps whose layers the image holds, for mode=min.
	FinalKeys []string
	Cache     CacheSummary // what the cache did for this build
	// Index is the stored index of the image and its attestations, when it has any; the
	// tags point at it.
	Index  *v1.Descriptor
	record *buildRecord // what the build saw, for provenance
}

// assemble writes the target stage's config and manifest (and any base layer blob the store
// lacks) and returns the manifest's descriptor.
func (s *solver) assemble(ctx context.Context, ps *PlannedStage) (*Image, error) {
	res := s.result(ps.Tip)
	cfg := ps.Config.DeepCopy()
	cfg.History = s.history(ps)
	cfg.RootFS = v1.RootFS{Type: "layers"}
	for _, l := range res.layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
	}
	cfg.Created = v1.Time{Time: latest(cfg.History)}
	if s.opts.Epoch != nil {
		cfg.Created = v1.Time{Time: s.opts.Epoch.UTC()}
	}
	if err := s.ensureLayers(ctx, res.layers); err != nil {
		return nil, err
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode image config: %w", err)
	}
	cfgDigest, cfgSize, err := s.opts.Store.WriteBlob(ctx, bytes.NewReader(cfgJSON), v1.Hash{})
	if err != nil {
		return nil, fmt.Errorf("store image config: %w", err)
	}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		Config:      v1.Descriptor{MediaType: types.OCIConfigJSON, Digest: cfgDigest, Size: cfgSize},
		Annotations: s.opts.Annotations}
	for _, l := range res.layers {
		m.Layers = append(m.Layers, l.desc)
	}
	mJSON, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	mDigest, mSize, err := s.opts.Store.WriteBlob(ctx, bytes.NewReader(mJSON), v1.Hash{})
	if err != nil {
		return nil, fmt.Errorf("store manifest: %w", err)
	}
	return &Image{Manifest: v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: mDigest, Size: mSize},
		ID: cfgDigest, Config: cfg}, nil
}

// history is the base image's history followed by one entry per step of this stage and of
// the stages it is built FROM.
func (s *solver) history(ps *PlannedStage) []v1.History {
	hist := append([]v1.History(nil), ps.Config.History...)
	if ps.Base != nil {
		hist = s.history(ps.Base)
	}
	last := time.Unix(0, 0).UTC()
	if n := len(hist); n > 0 {
		last = hist[n-1].Created.Time
	}
	for _, st := range ps.Steps {
		h := v1.History{CreatedBy: st.CreatedBy, Comment: "kiln", Created: v1.Time{Time: last}, EmptyLayer: true}
		if st.Vertex != nil {
			if r := s.result(st.Vertex); r != nil && r.added {
				h.EmptyLayer = false
				h.Created = v1.Time{Time: r.created}
				last = r.created
			}
		}
		if s.opts.Epoch != nil {
			h.Created = v1.Time{Time: s.opts.Epoch.UTC()}
		}
		hist = append(hist, h)
	}
	return hist
}

func latest(h []v1.History) time.Time {
	t := time.Unix(0, 0).UTC()
	for _, e := range h {
		if e.Created.After(t) {
			t = e.Created.Time
		}
	}
	return t
}

// ensureLayers copies into the store any layer blob it lacks (e.g. of a base image that the
// resolver served from elsewhere), verifying each against its digest. A layer that a lazily
// imported cache names remotely stays there until something reads it.
func (s *solver) ensureLayers(ctx context.Context, layers []layerRef) error {
	for _, l := range layers {
		if s.opts.Store.HasContent(l.desc.Digest) {
			continue
		}
		rc, err := l.open()
		if err != nil {
			return fmt.Errorf("read layer %s: %w", l.desc.Digest, err)
		}
		_, _, err = s.opts.Store.WriteBlob(ctx, rc, l.desc.Digest)
		rc.Close()
		if err != nil {
			return fmt.Errorf("store layer %s: %w", l.desc.Digest, err)
		}
	}
	return nil
}
