package registry

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
)

// mountsState is the store state file remembering which remote repositories hold which
// blobs, so a push can mount a layer from a sibling repository instead of uploading it.
// It is a hint: a lost or stale record only costs an upload.
const mountsState = "registry-mounts.json"

// Limits keep the record small: the newest repositories per blob, the newest blobs.
const (
	maxReposPerBlob = 4
	maxBlobs        = 20000
)

// mountRecord maps a blob digest to repositories ("host/path") that hold it, newest first.
type mountRecord struct {
	Blobs map[string][]string `json:"blobs"`
	Order []string            `json:"order"` // digests, oldest first, for trimming
}

func readMounts(s *cache.Store) mountRecord {
	data, _ := s.ReadState(mountsState)
	return decodeMounts(data)
}

// decodeMounts reads the record; a damaged or missing one is empty.
func decodeMounts(data []byte) mountRecord {
	rec := mountRecord{Blobs: map[string][]string{}}
	if json.Unmarshal(data, &rec) != nil || rec.Blobs == nil {
		return mountRecord{Blobs: map[string][]string{}}
	}
	return rec
}

// recordSources notes that repo holds every layer of img. Failures are ignored: hints only.
func recordSources(s *cache.Store, img v1.Image, repo string) {
	layers, err := img.Layers()
	if err != nil {
		return
	}
	var digests []v1.Hash
	for _, l := range layers {
		if d, err := l.Digest(); err == nil {
			digests = append(digests, d)
		}
	}
	recordBlobs(s, digests, repo)
}

func recordBlobs(s *cache.Store, digests []v1.Hash, repo string) {
	_ = s.UpdateState(context.Background(), mountsState, func(old []byte) ([]byte, error) {
		rec := decodeMounts(old)
		for _, d := range digests {
			k := d.String()
			repos := slices.DeleteFunc(rec.Blobs[k], func(r string) bool { return r == repo })
			rec.Blobs[k] = append([]string{repo}, repos[:min(len(repos), maxReposPerBlob-1)]...)
			rec.Order = append(slices.DeleteFunc(rec.Order, func(o string) bool { return o == k }), k)
		}
		for len(rec.Order) > maxBlobs {
			delete(rec.Blobs, rec.Order[0])
			rec.Order = rec.Order[1:]
		}
		return json.Marshal(rec)
	})
}

// mountSource finds another repository on the same registry known to hold d.
func mountSource(rec mountRecord, d v1.Hash, target string) (string, bool) {
	host, _, _ := strings.Cut(target, "/")
	for _, r := range rec.Blobs[d.String()] {
		if r != target && strings.HasPrefix(r, host+"/") {
			return r, true
		}
	}
	return "", false
}
