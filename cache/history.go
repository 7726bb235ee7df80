package cache

import (
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// HistoryEntry is one step of an image's history, as `kiln history` shows it.
type HistoryEntry struct {
	Created   time.Time
	CreatedBy string
	Comment   string
	Size      int64   // the step's layer blob size; 0 for a step without a layer
	Layer     v1.Hash // zero for a step without a layer
}

// ImageHistory pairs the config's history with the manifest's layers, newest step first.
// An image without history (e.g. imported) gets one entry per layer.
func ImageHistory(img v1.Image) ([]HistoryEntry, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	hist := cf.History
	if len(hist) == 0 {
		for range m.Layers {
			hist = append(hist, v1.History{Created: cf.Created})
		}
	}
	out := make([]HistoryEntry, 0, len(hist))
	next := 0
	for _, h := range hist {
		e := HistoryEntry{Created: h.Created.Time, CreatedBy: h.CreatedBy, Comment: h.Comment}
		if !h.EmptyLayer && next < len(m.Layers) {
			e.Size, e.Layer = m.Layers[next].Size, m.Layers[next].Digest
			next++
		}
		out = append(out, e)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}
